"""uvicorn's `Server`, without its ten wake-ups a second while nobody is connected.

uvicorn's main loop sleeps 0.1 s at a time, to refresh the `Date` header once a second and to
notice that it should stop: an idle oncall woke up 300 times per 30 s for nothing (most of its
idle CPU). Here the loop keeps that tick only while connections are open; with none it sleeps
until a connection arrives (the `Date` header is refreshed right then, before its request is
read) or the server is told to stop: setting `should_exit`, from a signal handler or from any
thread, wakes it at once. Only a supervisor's `callback_notify` still bounds that sleep (to its
`timeout_notify`); otherwise the bound is an hour, a guard rather than a tick.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import Any

import uvicorn

IDLE_BOUND = 3600.0  # seconds: the longest idle sleep, a guard only (see the module's doc)


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
    # Class-level, because uvicorn's __init__ sets `should_exit` before ours runs.
    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _should_exit = False

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.server_state.connections = _Connections(self._connected)
        self.idle_sleeps = 0  # times the loop slept with nobody connected (tests)

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        """uvicorn sets it on a signal (`handle_exit`) or a failed lifespan, others by hand: an
        idle loop must see it now, not when its sleep ends."""
        self._should_exit = value
        if value and self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _connected(self) -> None:
        """The first connection after an idle spell: a fresh Date, and the tick again."""
        if self.config.date_header:
            date = formatdate(time.time(), usegmt=True).encode()
            self.server_state.default_headers = [(b"date", date), *self.config.encoded_headers]
        if self._wake is not None:
            self._wake.set()

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
                    bound = IDLE_BOUND
                    if self.config.callback_notify is not None:
                        bound = min(bound, max(float(self.config.timeout_notify), 0.1))
                    try:
                        async with asyncio.timeout(bound):
                            await wake.wait()
                    except TimeoutError:
                        pass
                counter = 0  # a tick that refreshes the Date header
            should_exit = await self.on_tick(counter)
