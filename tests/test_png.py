"""The stdlib PNG colour counter the browser test checks its screenshot with."""

from __future__ import annotations

import zlib

import pytest

from tests.png import SIGNATURE, png_colours, png_of, png_size

WHITE, RED, BLUE = (255, 255, 255), (200, 30, 30), (30, 30, 200)


def test_a_blank_image_has_one_colour_and_a_drawn_one_has_each_of_its_colours() -> None:
    assert png_colours(png_of([[WHITE] * 4] * 3)) == {bytes(WHITE)}
    drawn = png_of([[WHITE, RED], [BLUE, WHITE]])
    assert png_colours(drawn) == {bytes(WHITE), bytes(RED), bytes(BLUE)}
    assert png_size(drawn) == (2, 2)


def test_the_row_filters_are_undone() -> None:
    # Row 2 stored with filter 2 ("up"): each byte is the difference from the row above.
    header = b"\x00\x00\x00\x02\x00\x00\x00\x02\x08\x02\x00\x00\x00"
    rows = b"\x00" + bytes(WHITE) + bytes(RED) + b"\x02" + bytes((0, 0, 0)) + bytes((0, 0, 0))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    data = SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    assert png_colours(data) == {bytes(WHITE), bytes(RED)}


def test_not_a_png_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        png_colours(b"GIF89a")
