"""uvicorn's `Server`, without its ten wake-ups a second while nobody is connected.

uvicorn's main loop sleeps 0.1 s at a time, to refresh the `Date` header once a second and to
notice that it should stop: an idle oncall woke up 300 times per 30 s for nothing (most of its
idle CPU). Here the loop keeps that tick only while connections are open; with none it sleeps
until a connection arrives (the `Date` header is refreshed right then, before its request is
read) or the server is told to stop (a signal: `handle_exit` wakes it at once). A long bound on
that sleep keeps anything that sets `should_exit` by hand working, only later.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from types import FrameType
from typing import Any

import uvicorn

IDLE_BOUND = 60.0  # seconds: the longest idle sleep (`should_exit` set without `handle_exit`)


class _Connections(set[Any]):
    """uvicorn's set of open connections, telling the server when one is added."""

    def __init__(self, on_add: Any) -> None:
        super().__init__()
        self._on_add = on_add

    def add(self, item: Any) -> None:
        was_empty = not self
        super().add(item)
        if was_empty:
            self._on_add()


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.server_state.connections = _Connections(self._connected)
        self.idle_sleeps = 0  # times the loop slept with nobody connected (tests)

    def _connected(self) -> None:
        """The first connection after an idle spell: a fresh Date, and the tick again."""
        if self.config.date_header:
            date = formatdate(time.time(), usegmt=True).encode()
            self.server_state.default_headers = [(b"date", date), *self.config.encoded_headers]
        if self._wake is not None:
            self._wake.set()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            if self.server_state.connections:
                counter = (counter + 1) % 864000
                await asyncio.sleep(0.1)  # uvicorn's own tick while serving
            else:
                self.idle_sleeps += 1
                wake.clear()
                if not self.server_state.connections and not self.should_exit:
                    try:
                        async with asyncio.timeout(IDLE_BOUND):
                            await wake.wait()
                    except TimeoutError:
                        pass
                counter = 0  # a tick that refreshes the Date header
            should_exit = await self.on_tick(counter)
