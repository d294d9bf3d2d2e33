"""The store goes away while a page is being sent (a database restart, a lock held elsewhere):
the page is still sent once and its outcome recorded once the store is back.

Real SQLite with a 0.2 s lock time-out; "the store goes away" is another connection holding
`BEGIN EXCLUSIVE` for half a second, taken by the channel itself at the worst moment:
- during the provider call, so recording `sent` fails at first: without waiting for the store,
  the page stayed `sending` for good (delivered, but never edited after an ack, and counted
  as possibly lost at the next start);
- just before the page is marked `sending`: the channel is never called then; without putting
  the page back, this process kept it claimed and skipped it (lost until a restart).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from oncall.channels.base import Delivery, PageMessage
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store.database import Database, StoreUnavailable, open_database
from tests.recording import RecordingChannel, event, madrid, shop_config

LOCKED_FOR = 0.5  # seconds: longer than the store's lock time-out (0.2 s)


@dataclass
class Locker:
    """Another process's connection to the same file, holding the write lock for a moment."""

    path: Path
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def lock(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        conn.execute("BEGIN EXCLUSIVE")

        async def release() -> None:
            await asyncio.sleep(LOCKED_FOR)
            conn.execute("ROLLBACK")
            conn.close()

        self.tasks.add(asyncio.ensure_future(release()))


@dataclass
class LockingChannel(RecordingChannel):
    """Takes the lock during the provider call (`during`) or just before the page is marked
    `sending` (`before`, through `prepare`), once."""

    locker: Locker | None = None
    when: str = "during"

    async def prepare(self, message: PageMessage) -> None:
        if self.when == "before" and self.locker is not None:
            self.locker.lock()
            self.locker = None

    async def send(self, message: PageMessage) -> Delivery:
        if self.when == "during" and self.locker is not None:
            self.locker.lock()
            self.locker = None
        return await super().send(message)


@dataclass
class Shop:
    db: Database
    service: Service
    telegram: LockingChannel
    locker: Locker

    async def at(self, when: str) -> None:
        """A scheduler round at `when`; one that met the lock is run again once it is gone, as
        the real scheduler does (5 s later)."""
        scheduler = Scheduler(self.service, clock=lambda: madrid(when))
        try:
            await scheduler.run_once()
        except StoreUnavailable:
            await asyncio.gather(*self.locker.tasks)
            await scheduler.run_once()
        await self.service.drain()
        await asyncio.gather(*self.locker.tasks)

    def pages(self) -> dict[str, tuple[str, str | None]]:
        conn = sqlite3.connect(self.locker.path)
        try:
            rows = conn.execute("SELECT key, state, ref FROM pages WHERE channel = 'telegram'").fetchall()
        finally:
            conn.close()
        return {k: (s, r) for k, s, r in rows}


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    path = tmp_path / "oncall.db"
    db = open_database(f"sqlite:///{path}?timeout=0.2")
    await asyncio.to_thread(db.migrate)
    locker = Locker(path)
    telegram = LockingChannel("telegram", locker=locker)
    channels = {"telegram": telegram, "slack": RecordingChannel("slack"), "sms": RecordingChannel("sms")}
    config = shop_config()
    service = Service(
        db,
        lambda: config,
        channels,
        Settings(public_url="https://oncall.example", _env_file=None),  # type: ignore[call-arg]
        bundle_window=0.0,
    )
    yield Shop(db, service, telegram, locker)
    await service.aclose()
    await db.aclose()


async def test_a_page_delivered_while_the_store_is_away_is_recorded_sent_once_it_is_back(shop: Shop) -> None:
    await shop.db.store_event(event(at=madrid("2026-11-28 23:10")), b"{}")
    await shop.at("2026-11-28 23:10")
    await shop.at("2026-11-28 23:15")  # the hold ends: Telegram and Slack
    assert len(shop.telegram.sent) == 1
    assert shop.pages() == {"1:1:1:ana:telegram": ("sent", "telegram-1")}
    await shop.at("2026-11-28 23:16")
    assert len(shop.telegram.sent) == 1


async def test_a_page_the_store_could_not_mark_sending_goes_out_when_it_is_back(shop: Shop) -> None:
    shop.telegram.when = "before"
    await shop.db.store_event(event(at=madrid("2026-11-28 23:10")), b"{}")
    await shop.at("2026-11-28 23:10")
    await shop.at("2026-11-28 23:15")
    await shop.at("2026-11-28 23:16")
    assert len(shop.telegram.sent) == 1
    assert shop.pages() == {"1:1:1:ana:telegram": ("sent", "telegram-1")}
