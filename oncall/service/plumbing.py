"""What every part of the escalation service shares, built once by `Service`: the store, the
configuration in force and its world, the clock, the channels, the background tasks and the
scheduler's wake-up, and timeline notes written outside a step of the core."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from oncall.channels.base import Channel
from oncall.clock import Clock
from oncall.core.incident import Entry, World, make_world
from oncall.core.models import Config
from oncall.settings import Settings
from oncall.store import incidents as store
from oncall.store.connection import Connection
from oncall.store.database import Database

log = logging.getLogger("oncall.escalation")

_UTC = ZoneInfo("UTC")


class Plumbing:
    def __init__(
        self,
        db: Database,
        config_provider: Callable[[], Config | None],
        channels: dict[str, Channel],
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.db = db
        self.config_provider = config_provider
        self.channels = channels  # read live: a test or a reload may change it
        self.settings = settings
        self.clock = clock
        self._worlds: dict[int, tuple[Config, World]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- configuration ---------------------------------------------------------------------

    def config(self) -> Config | None:
        return self.config_provider()

    def world(self, config: Config) -> World:
        cached = self._worlds.get(id(config))
        if cached is not None and cached[0] is config:
            return cached[1]
        w = make_world(config)
        self._worlds = {id(config): (config, w)}
        return w

    def current_world(self) -> World | None:
        """The world of the configuration in force; None while no valid one is loaded."""
        config = self.config()
        return self.world(config) if config is not None else None

    def tz(self) -> ZoneInfo:
        """The shop's timezone (UTC without a configuration)."""
        config = self.config()
        return config.rules.shop.timezone if config is not None else _UTC

    # -- waking the scheduler ----------------------------------------------------------------

    def wake_event(self) -> asyncio.Event:
        if self._wake is None:
            self._wake = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        return self._wake

    def wake(self) -> None:
        """Something changed (an event stored, an ack): the scheduler looks again now. Safe to
        call from any thread."""
        if self._wake is None or self._loop is None:
            return
        if self._wake.is_set():
            # Already pending (a flood stores many events per round): the scheduler clears the
            # flag before it looks, so this change is seen by that look anyway.
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- background work ---------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def drain(self, within: float | None = None) -> None:
        """Waits for background sends, posts and updates (tests; graceful shutdown)."""
        while self._tasks:
            done, _ = await asyncio.wait(set(self._tasks), timeout=within)
            if not done:
                break

    async def cancel_background(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- timeline notes ----------------------------------------------------------------------

    def append(self, conn: Connection, incident_id: int, entry: Entry) -> None:
        # Only the timeline: a note must not write back state read before (see append_timeline).
        store.append_timeline(conn, incident_id, (entry,))

    async def record_one(self, incident_id: int, text: str) -> None:
        await self.record((incident_id,), text)

    async def record(self, ids: Sequence[int], text: str) -> None:
        now = self.clock()

        def tx(conn: Connection) -> None:
            for i in ids:
                self.append(conn, i, Entry(now, text))

        await self.db.transaction(tx)
