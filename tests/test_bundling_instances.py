"""Two instances sharing one store page one person through a flood (SPEC §5): each incident is
named once across both, both send at once, and together they never send to her chat faster
than its per-chat limit (PostgreSQL: the slot is shared through the store)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from oncall.channels.base import Delivery, PageMessage
from oncall.core.models import Event, Ticket
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store.connection import Connection
from oncall.store.database import Database
from tests.fakes.providers import VirtualTime
from tests.recording import RecordingChannel, event, madrid, shop_config

T = TypeVar("T")
NOW = madrid("2026-11-28 23:10")


class CountedDatabase(Database):
    """The real store; while one of its transactions runs, virtual time stands still (as it
    does for a provider call), so every send happens at the second it was given."""

    def __init__(self, url: str, vt: VirtualTime) -> None:
        super().__init__(url)
        self.vt = vt

    async def transaction(
        self, fn: Callable[[Connection], T], *, savepoint: bool = True, urgent: bool = False
    ) -> T:
        self.vt.in_flight += 1
        try:
            return await super().transaction(fn, savepoint=savepoint, urgent=urgent)
        finally:
            self.vt.in_flight -= 1


@dataclass
class TimedRecording(RecordingChannel):
    vt: VirtualTime = field(default_factory=VirtualTime)
    times: list[float] = field(default_factory=list)

    async def send(self, message: PageMessage) -> Delivery:
        self.times.append(self.vt.t)
        return await super().send(message)


def urgent_ticket(number: int) -> Event:
    t = event("ticket_created", NOW, source="zendesk", amount=None)
    return replace(t, ticket=Ticket(str(number), "urgent", "open", "Cobro doble"))


async def test_two_instances_name_each_incident_once_and_share_the_chats_limit(db_url: str) -> None:
    vt = VirtualTime()
    config = shop_config()
    settings = Settings(public_url="https://oncall.example", _env_file=None)  # type: ignore[call-arg]
    dbs = [CountedDatabase(db_url, vt) for _ in range(2)]
    await asyncio.to_thread(dbs[0].migrate)
    channels = [{n: TimedRecording(n, vt=vt) for n in ("telegram", "slack")} for _ in dbs]
    a, b = (
        Service(db, lambda: config, chans, settings, send_clock=vt.clock, send_sleep=vt.sleep)
        for db, chans in zip(dbs, channels, strict=True)
    )

    async def flood() -> None:
        # Instance A routes the first 20 tickets and pages Ana; B, a moment later, the next 20,
        # while A's pages are still going out.
        for first, service in ((0, a), (20, b)):
            for n in range(first, first + 20):
                await dbs[0].store_event(urgent_ticket(700 + n), b"{}")
            await Scheduler(service, clock=lambda: NOW).run_once()
        await asyncio.gather(a.drain(), b.drain())

    start = vt.t
    try:
        await vt.run(flood())
    finally:
        for service in (a, b):
            await service.aclose()
        for db in dbs:
            await db.aclose()
    for name in ("telegram", "slack"):
        sent = [m for c in channels for m in c[name].sent]
        named = sorted(i for m in sent for i in m.incident_ids)
        assert named == list(range(1, 41)), name  # each once, across both instances
        assert all(c[name].sent for c in channels)  # both instances sent some: a real split
        times = sorted(t for c in channels for t in c[name].times)
        assert times[0] == start and times[-1] - start <= 2.0  # nothing waits for the other
        if db_url.startswith("postgresql"):
            assert all(round(y - x, 6) >= 1 for x, y in itertools.pairwise(times)), times
