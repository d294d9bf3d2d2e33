"""The distinct colours of a PNG, with the standard library only: enough to tell a rendered
page from a blank one (a blank or all-error screenshot has one to three colours, a page with
text, buttons and a chart hundreds, from anti-aliasing alone).

Reads what Chromium writes: 8-bit greyscale, grey + alpha, RGB or RGBA, not interlaced, with
the five PNG row filters undone."""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BYTES_PER_PIXEL = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> bytes per pixel at depth 8


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk."""
    if data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def png_colours(data: bytes, limit: int = 100_000) -> set[bytes]:
    """The set of pixel values (stops counting at `limit`)."""
    if data[:8] != SIGNATURE:
        raise ValueError("not a PNG")
    pos, idat, header = 8, list[bytes](), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("a PNG without IHDR")
    width, height, depth, colour_type, _, _, interlace = header
    bpp = _BYTES_PER_PIXEL.get(colour_type)
    if depth != 8 or bpp is None or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}, interlace {interlace}")
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    previous, i = bytearray(stride), 0
    colours: set[bytes] = set()
    for _ in range(height):
        row_filter, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up = previous[x]
            up_left = previous[x - bpp] if x >= bpp else 0
            if row_filter == 1:
                line[x] = (line[x] + left) & 0xFF
            elif row_filter == 2:
                line[x] = (line[x] + up) & 0xFF
            elif row_filter == 3:
                line[x] = (line[x] + ((left + up) >> 1)) & 0xFF
            elif row_filter == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        colours.update(bytes(line[x : x + bpp]) for x in range(0, stride, bpp))
        if len(colours) >= limit:
            break
        previous = line
    return colours


def png_of(rows: list[list[tuple[int, int, int]]]) -> bytes:
    """A small RGB PNG (filter 0) of `rows` of pixels, to test the reader with."""
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + b"".join(bytes(px) for px in row) for row in rows)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
