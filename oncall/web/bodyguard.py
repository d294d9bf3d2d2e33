"""Limits on every request body, applied once at the app's entry by wrapping `receive`: the
whole body must arrive within `ONCALL_BODY_TIMEOUT` seconds of the request's headers (else
408) and be at most `ONCALL_MAX_BODY_BYTES` (else 413), on every route, the webhook fast path
included.

Without a deadline a client sending a byte a second keeps its connection, its buffers and its
request task forever, and a few hundred of them hold the server's sockets and memory. A body
over the size limit is refused as it streams in, before it is all in memory.

When a limit is hit, `receive` raises `BodyRefused`; whatever the route was doing is dropped
(its own answer, e.g. a 500 from the error middleware, is not sent) and the entry answers
`{"error": …}` with `Connection: close`, so the connection ends instead of waiting for the
rest of a body nobody will read.

The deadline is kept by one watchdog per event loop rather than an `asyncio.timeout` around
each `receive`: arming and cancelling a timer costs more than the rest of a webhook's body
handling (a flood's bodies arrive whole, so the first `receive` returns at once). A guard is
on the watchdog's list only while its `receive` is under way; the watchdog's one timer fires
at the earliest deadline on the list, cancels the requests past theirs (their `receive`
raises the 408) and is not armed again while nobody waits.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any

from starlette.types import Message, Receive, Send


class BodyRefused(Exception):
    """The body broke a limit; raised by `BodyGuard.receive`, answered by `BodyGuard.refuse`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BodyGuard:
    """One request's `receive` and `send`, with the limits."""

    __slots__ = ("_deadline", "_expired", "_loop", "_max_bytes", "_receive", "_send", "_timeout", "complete",
                 "refused", "size", "started")  # fmt: skip

    def __init__(self, receive: Receive, send: Send, timeout: float, max_bytes: int) -> None:
        self._receive, self._send = receive, send
        self._timeout, self._max_bytes = timeout, max_bytes
        self._loop = loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout
        self._expired = False  # set by the watchdog, which cancelled the request's task
        self.size = 0
        self.complete = False  # the whole body is in: later receives only wait for a disconnect
        self.refused: BodyRefused | None = None
        self.started = False  # the response has started

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()
        if self.refused is not None:
            raise self.refused
        task = asyncio.current_task(self._loop)
        if task is None or self._expired:  # not in a task: nothing the watchdog could cancel
            message = await self._late_receive()
        else:
            watchdog = _watchdog(self._loop)
            watchdog.watch(self, task)
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                # Cancelled by the watchdog (and by nobody else as well): the deadline passed.
                if self._expired and task.uncancel() == 0:
                    raise self._timed_out() from None
                raise
            finally:
                watchdog.waiting.pop(self, None)
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self._max_bytes:
                self.refused = BodyRefused(413, f"body larger than {self._max_bytes} bytes")
                raise self.refused
            self.complete = not message.get("more_body", False)
        return message

    async def _late_receive(self) -> Message:
        """A receive outside the watchdog's reach: bounded by a timeout of its own."""
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self._receive()
        except TimeoutError:
            raise self._timed_out() from None

    def _timed_out(self) -> BodyRefused:
        self.refused = BodyRefused(
            408,
            f"the request body did not arrive within {self._timeout:g} seconds"
            " (ONCALL_BODY_TIMEOUT); nothing was done",
        )
        return self.refused

    async def send(self, message: Message) -> None:
        if self.refused is not None:
            return  # the route's answer to the refusal (e.g. a 500); `refuse` sends the real one
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def refuse(self, refused: BodyRefused) -> None:
        if self.started:
            return  # too late for another answer; the server closes the connection
        body = json.dumps({"error": refused.message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        self.started = True
        await self._send({"type": "http.response.start", "status": refused.status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})


class _Watchdog:
    """The guards of one event loop whose `receive` is under way, and one timer for them all."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: dict[BodyGuard, asyncio.Task[Any]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._at = 0.0  # when the timer fires

    def watch(self, guard: BodyGuard, task: asyncio.Task[Any]) -> None:
        self.waiting[guard] = task
        deadline = guard._deadline
        if self._timer is None or deadline < self._at:  # the latter: a shorter time-out (tests)
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._at = self.loop.call_at(deadline, self._sweep), deadline

    def _sweep(self) -> None:
        self._timer = None
        now = self.loop.time()
        earliest: float | None = None
        for guard, task in list(self.waiting.items()):
            if guard._deadline <= now:
                del self.waiting[guard]
                guard._expired = True
                task.cancel()
            elif earliest is None or guard._deadline < earliest:
                earliest = guard._deadline
        if earliest is not None:
            self._timer, self._at = self.loop.call_at(earliest, self._sweep), earliest


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = weakref.WeakKeyDictionary()


_last: _Watchdog | None = None  # a server has one loop: found without a weak reference each time


def _watchdog(loop: asyncio.AbstractEventLoop) -> _Watchdog:
    global _last
    watchdog = _last
    if watchdog is None or watchdog.loop is not loop:
        watchdog = _WATCHDOGS.get(loop)
        if watchdog is None:
            watchdog = _WATCHDOGS[loop] = _Watchdog(loop)
        _last = watchdog
    return watchdog
