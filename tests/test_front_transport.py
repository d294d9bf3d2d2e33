"""An intake worker's answers (`oncall.web.front._GatheredTransport`): the head and body of an
answer leave in one write, at once; a head alone still leaves at the end of the loop turn; a
close sends what was written first."""

from __future__ import annotations

import asyncio
from typing import Any

from oncall.web.front import _GatheredTransport


class Wire:
    """The real transport, as the gathered one uses it: what was written, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 4000) if name == "peername" else None


async def test_an_answer_head_and_body_leave_in_one_write_without_waiting_for_the_loop() -> None:
    wire = Wire()
    gathered = _GatheredTransport(wire)  # type: ignore[arg-type]
    gathered.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n")
    assert wire.writes == []
    gathered.write(b"{}")
    assert wire.writes == [b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)  # nothing left to send at the end of the turn
    assert len(wire.writes) == 1


async def test_a_head_written_alone_leaves_at_the_end_of_the_loop_turn() -> None:
    wire = Wire()
    gathered = _GatheredTransport(wire)  # type: ignore[arg-type]
    gathered.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    await asyncio.sleep(0)
    assert wire.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    gathered.write(b"5\r\nhello\r\n")  # a streamed chunk: a head again, alone until the turn ends
    gathered.write(b"0\r\n\r\n")
    assert wire.writes[-1] == b"5\r\nhello\r\n0\r\n\r\n"


async def test_a_close_sends_what_was_written_first_and_the_rest_is_the_real_transport() -> None:
    wire = Wire()
    gathered = _GatheredTransport(wire)  # type: ignore[arg-type]
    gathered.write(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
    gathered.close()
    assert wire.writes == [b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"] and wire.closed
    assert gathered.is_closing() and gathered.get_extra_info("peername") == ("127.0.0.1", 4000)
    await asyncio.sleep(0)  # the turn's flush finds nothing, and writes nothing on a closed wire
    assert len(wire.writes) == 1
