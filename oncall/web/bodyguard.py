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
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import Message, Receive, Send


class BodyRefused(Exception):
    """The body broke a limit; raised by `BodyGuard.receive`, answered by `BodyGuard.refuse`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BodyGuard:
    """One request's `receive` and `send`, with the limits."""

    __slots__ = ("_deadline", "_max_bytes", "_receive", "_send", "_timeout", "complete", "refused", "size",
                 "started")  # fmt: skip

    def __init__(self, receive: Receive, send: Send, timeout: float, max_bytes: int) -> None:
        self._receive, self._send = receive, send
        self._timeout, self._max_bytes = timeout, max_bytes
        self._deadline = asyncio.get_running_loop().time() + timeout
        self.size = 0
        self.complete = False  # the whole body is in: later receives only wait for a disconnect
        self.refused: BodyRefused | None = None
        self.started = False  # the response has started

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()
        if self.refused is not None:
            raise self.refused
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self.refused = BodyRefused(
                408,
                f"the request body did not arrive within {self._timeout:g} seconds"
                " (ONCALL_BODY_TIMEOUT); nothing was done",
            )
            raise self.refused from None
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self._max_bytes:
                self.refused = BodyRefused(413, f"body larger than {self._max_bytes} bytes")
                raise self.refused
            self.complete = not message.get("more_body", False)
        return message

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
