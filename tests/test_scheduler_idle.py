"""An idle `oncall serve` wakes only for due work: its scheduler sleeps until the next timer
falls due (or its long bound), the configuration is re-read when a file is saved rather than
on a timer, and only where file-change notification is unavailable does it re-check on a
timer as before.

The scheduler's sleeps are recorded instead of slept (each lasts until the scheduler is woken),
and the clock is injected: nothing here waits for time to pass."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import oncall.scheduler as scheduler_module
from oncall.config import ConfigWatcher
from oncall.config.notify import DirNotifier
from oncall.scheduler import MAX_SLEEP, READ_AHEAD, Scheduler
from oncall.service.intake import Ahead

NOW = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


class IdleService:
    """What the scheduler asks of the service, for a shop with incidents held: nothing to route,
    fire or send; the next timer at `due` (None: none)."""

    fire_batch = 100

    def __init__(self, shop_dir: Path, due: datetime | None) -> None:
        self.settings = SimpleNamespace(
            rules_file=shop_dir / "escalation_rules.toml", rotas_dir=shop_dir / "rotas"
        )
        self.due = due
        self.clock = lambda: NOW
        self.read_aheads: list[datetime] = []
        self._wake: asyncio.Event | None = None

    def wake_event(self) -> asyncio.Event:
        if self._wake is None:
            self._wake = asyncio.Event()
        return self._wake

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def config(self) -> object:
        return object()

    async def recover(self, now: datetime) -> None:
        return None

    async def route_round(self, now: datetime, limit: int = 200) -> tuple[int, Ahead]:
        return 0, Ahead(self.due, pages=False)

    async def fire_due(self, now: datetime) -> int:
        return 0

    async def send_pages(self, now: datetime) -> int:
        return 0

    async def next_due(self) -> datetime | None:
        return self.due

    async def read_ahead(self, until: datetime) -> int:
        self.read_aheads.append(until)
        return 0

    async def aclose(self) -> None:
        return None


class Sleeps:
    """Stands in for the scheduler's sleep: records how long it was asked to sleep, then waits
    until woken (a webhook, a saved file) as if the time never came."""

    def __init__(self) -> None:
        self.spans: list[float] = []
        self.changed = asyncio.Event()

    async def __call__(self, wake: asyncio.Event, seconds: float) -> bool:
        self.spans.append(seconds)
        self.changed.set()
        await wake.wait()
        return True

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(30):  # a guard against a hang, not a measurement
            while not done():
                self.changed.clear()
                await self.changed.wait()


async def running(scheduler: Scheduler, test: Callable[[], Awaitable[None]]) -> None:
    task = scheduler.start()
    try:
        await test()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def hook_for(shop_dir: Path, sleeps: Sleeps) -> tuple[ConfigWatcher, Callable[[], bool]]:
    """The config watcher's poll, as the app wires it; each run lets `sleeps.until` look again."""
    watcher = ConfigWatcher(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    watcher.poll()  # as the app does before the scheduler starts

    def hook() -> bool:
        sleeps.changed.set()
        return watcher.poll() is not None

    return watcher, hook


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    recorder = Sleeps()
    monkeypatch.setattr(scheduler_module, "_sleep_or_wake", recorder)
    return recorder


@linux_only
@pytest.mark.parametrize(
    ("due_in", "first_sleep"),
    [
        (None, MAX_SLEEP),  # nothing due: only the long bound
        (timedelta(hours=1), MAX_SLEEP),  # held for an hour: the bound comes first
        (timedelta(seconds=42), 42 - READ_AHEAD),  # due soon: until just before it
    ],
)
async def test_an_idle_scheduler_sleeps_until_due_work(
    shop_dir: Path, sleeps: Sleeps, due_in: timedelta | None, first_sleep: float
) -> None:
    service = IdleService(shop_dir, None if due_in is None else NOW + due_in)
    _, hook = hook_for(shop_dir, sleeps)
    scheduler = Scheduler(service, on_idle=hook, idle_every=2.0)  # type: ignore[arg-type]

    async def test() -> None:
        await sleeps.until(lambda: len(sleeps.spans) >= 1)
        assert scheduler.notified
        assert sleeps.spans == [pytest.approx(first_sleep)]
        assert scheduler.rounds == 1
        assert scheduler.idle_runs == 1  # once, as the watches were set; never on a timer

    await running(scheduler, test)


@linux_only
async def test_a_saved_file_is_in_force_without_waiting_for_a_timer(shop_dir: Path, sleeps: Sleeps) -> None:
    service = IdleService(shop_dir, NOW + timedelta(hours=1))
    watcher, hook = hook_for(shop_dir, sleeps)
    scheduler = Scheduler(service, on_idle=hook, idle_every=2.0)  # type: ignore[arg-type]
    scheduler.settle = 0.0

    async def test() -> None:
        await sleeps.until(lambda: len(sleeps.spans) >= 1)
        rules = shop_dir / "escalation_rules.toml"
        text = rules.read_text(encoding="utf-8")
        rules.write_text(
            text.replace('name = "Tienda Ejemplo"', 'name = "Tienda Nueva"', 1), encoding="utf-8"
        )
        await sleeps.until(lambda: len(sleeps.spans) >= 2)  # woken by the save: one more round
        assert watcher.config is not None and watcher.config.rules.shop.name == "Tienda Nueva"
        assert scheduler.rounds == 2 and scheduler.idle_runs == 2
        assert sleeps.spans == [pytest.approx(MAX_SLEEP)] * 2

        # A file that is not part of the configuration (the database beside it) wakes nothing.
        (shop_dir / "oncall.db-wal").write_bytes(b"x")
        # An editor's lock file in rotas/ makes it look, but changes nothing: no round.
        (shop_dir / "rotas" / ".#weekend.toml").write_text("ana@laptop", encoding="utf-8")
        await sleeps.until(lambda: scheduler.idle_runs == 3)
        assert scheduler.rounds == 2 and len(sleeps.spans) == 2

    await running(scheduler, test)


class FloodService(IdleService):
    """A flood: each routing round routes the next count of `batches`; a webhook stored during
    a round (`during`) wakes the scheduler. Counts the rounds and the sleeps' store reads."""

    def __init__(self, shop_dir: Path, batches: list[int], during: set[int]) -> None:
        super().__init__(shop_dir, NOW + timedelta(hours=1))
        self.batches, self.during = batches, during
        self.routing_rounds = 0
        self.due_reads = 0

    async def route_round(self, now: datetime, limit: int = 200) -> tuple[int, Ahead]:
        self.routing_rounds += 1
        if self.routing_rounds in self.during:
            self.wake()
        return (self.batches.pop(0) if self.batches else 0), Ahead(self.due, pages=False)

    async def next_due(self) -> datetime | None:
        self.due_reads += 1
        return self.due


async def test_a_flood_costs_one_routing_round_per_batch_and_no_idle_reads_between(
    shop_dir: Path, sleeps: Sleeps
) -> None:
    """Three batches of webhooks, each stored while the one before is routed: three routing
    transactions, then one read of the next due time to sleep on, not an empty routing round
    and a due-time read after each batch. A full round (200) looks again at once."""
    service = FloodService(shop_dir, [3, 200, 5, 2], during={1, 3})
    scheduler = Scheduler(service)  # type: ignore[arg-type]

    async def test() -> None:
        await sleeps.until(lambda: len(sleeps.spans) >= 1)
        assert service.routing_rounds == 4  # 3 | 200, then 5 without waiting | 2
        assert service.due_reads == 1
        assert sleeps.spans == [pytest.approx(MAX_SLEEP)]

    await running(scheduler, test)


async def test_without_notification_the_configuration_is_rechecked_on_a_timer(
    shop_dir: Path, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any) -> None:
        return None

    monkeypatch.setattr(DirNotifier, "open", unavailable)
    service = IdleService(shop_dir, NOW + timedelta(hours=1))
    _, hook = hook_for(shop_dir, sleeps)
    scheduler = Scheduler(service, on_idle=hook, idle_every=2.0)  # type: ignore[arg-type]

    async def test() -> None:
        await sleeps.until(lambda: len(sleeps.spans) >= 1)
        assert not scheduler.notified
        assert sleeps.spans == [2.0]  # the re-check interval, as before notification

    await running(scheduler, test)
