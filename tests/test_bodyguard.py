"""The body limits in-process: a body that stops arriving is refused with a 408 once its time
is up, while whole bodies arriving alongside it are read as usual; a request cancelled for
another reason (the client left, shutdown) is cancelled, not answered 408; an oversized body
is a 413. (`tests/test_body_timeout.py` drives a real server with slow sockets.)"""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from oncall.web.bodyguard import BodyGuard, BodyRefused


async def never() -> Message:
    await asyncio.Event().wait()  # a client that sent its headers and then nothing
    raise AssertionError("unreachable")


async def whole() -> Message:
    return {"type": "http.request", "body": b'{"kind": "test"}', "more_body": False}


async def nowhere(message: Message) -> None:
    pass


async def test_a_body_that_stops_arriving_is_refused_with_a_408_and_whole_bodies_still_read() -> None:
    slow = BodyGuard(never, nowhere, 0.05, 1000)
    waiting = asyncio.create_task(slow.receive())
    answers = [await BodyGuard(whole, nowhere, 0.05, 1000).receive() for _ in range(3)]
    assert [a["body"] for a in answers] == [b'{"kind": "test"}'] * 3
    with pytest.raises(BodyRefused) as refused:
        await asyncio.wait_for(waiting, 30)
    assert refused.value.status == 408
    assert refused.value.message == (
        "the request body did not arrive within 0.05 seconds (ONCALL_BODY_TIMEOUT); nothing was done"
    )
    with pytest.raises(BodyRefused):  # and any later read too
        await slow.receive()


async def test_slow_bodies_with_different_limits_are_each_refused() -> None:
    long, short = BodyGuard(never, nowhere, 600, 1000), BodyGuard(never, nowhere, 0.05, 1000)
    long_task, short_task = asyncio.create_task(long.receive()), asyncio.create_task(short.receive())
    with pytest.raises(BodyRefused):
        await asyncio.wait_for(short_task, 30)
    assert not long_task.done()
    long_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long_task


async def test_a_request_cancelled_for_another_reason_stays_cancelled() -> None:
    guard = BodyGuard(never, nowhere, 600, 1000)
    task = asyncio.create_task(guard.receive())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert guard.refused is None


async def test_a_body_over_the_limit_is_a_413() -> None:
    guard = BodyGuard(whole, nowhere, 600, 4)
    with pytest.raises(BodyRefused) as refused:
        await guard.receive()
    assert (refused.value.status, refused.value.message) == (413, "body larger than 4 bytes")
