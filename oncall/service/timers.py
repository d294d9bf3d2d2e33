"""Due timers → outcomes: every incident whose `wake_at` has come gets a `Tick` (a hold ends,
a step's `ack_within` runs out, a snooze ends), the morning digest goes out when business
hours open (`core.digest`, with the closed-hours report), and promises whose reminder,
escalation or deadline has come are handed to `service.promises`. Incidents due soon are read
ahead, so that when the time comes only the step itself is left to do."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from oncall.core.digest import DIGEST, plan_digest
from oncall.core.incident import Entry, Outcome, Tick, World, step
from oncall.core.report import closed_period, report
from oncall.metrics import METRICS
from oncall.service.effects import Batch, Effects
from oncall.service.plumbing import Plumbing
from oncall.service.promises import Promises
from oncall.store import incidents as store
from oncall.store import reports, timers
from oncall.store.connection import Connection

log = logging.getLogger("oncall.escalation")

RETRY_AFTER_ERROR = timedelta(minutes=1)


class Timers:
    def __init__(self, plumbing: Plumbing, effects: Effects, promises: Promises | None = None) -> None:
        self.plumbing = plumbing
        self.effects = effects
        self.promises = promises  # their reminders, escalations and deadlines are timers too
        self.fire_batch = 500  # timers per transaction
        self._read: store.Versioned = {}  # incidents read ahead of their due time

    async def fire_due(self, now: datetime, limit: int | None = None) -> int:
        """Runs every timer due at `now` (at most `limit`, default `fire_batch`, per call, for
        incidents and for promises)."""
        n = await self._fire_incidents(now, limit or self.fire_batch)
        if self.promises is not None:
            n += await self.promises.fire_due(now, limit or self.fire_batch)
        return n

    async def _fire_incidents(self, now: datetime, limit: int) -> int:
        world = self.plumbing.current_world()
        if world is None:
            return 0
        batch = Batch()

        def tx(conn: Connection) -> int:
            due = store.due_incidents(conn, now, limit, self._read)
            METRICS.timers_fired(now, due)
            outs: list[Outcome] = []
            for inc in due:
                try:
                    outs.append(step(inc, Tick(), now, world))
                except Exception as exc:  # a bug must not stop every other timer: retry later
                    log.exception("incident %s: timer failed", inc.id)
                    what = f"internal error ({type(exc).__name__}: {exc}); trying again in a minute"
                    retry = replace(
                        inc, wake_at=now + RETRY_AFTER_ERROR, timeline=(*inc.timeline, Entry(now, what))
                    )
                    outs.append(Outcome(retry, ok=False))
            self.effects.apply_many(conn, outs, now, batch)
            if timers.take_timer(conn, DIGEST, now) is not None:
                self._digest(conn, world, now, batch)
            elif not due:
                conn.no_flush_needed()  # nothing was due: nothing to put on disk first
            return len(due)

        n = await self.plumbing.db.transaction(tx)
        if n < limit:
            self._read = {}
        self.effects.after(batch)
        if n == limit:
            self.plumbing.wake()
        return n

    async def read_ahead(self, until: datetime) -> int:
        """Reads the incidents due by `until` ahead of time; `fire_due` uses each copy only if
        nothing wrote the incident since (its version)."""
        self._read = await self.plumbing.db.transaction(lambda conn: store.read_due(conn, until))
        return len(self._read)

    def _digest(self, conn: Connection, world: World, now: datetime, batch: Batch) -> None:
        rules = world.config.rules
        start, end = closed_period(rules.business_hours, rules.shop.timezone, now)
        figures = report(*reports.figures(conn, start, end), start, end)
        digest = plan_digest(store.deferred_incidents(conn), world, now, figures)
        if digest is None:
            return
        batch.effects.append(digest.post)
        for out in digest.released:
            self.effects.apply(conn, out, now, batch)

    async def next_due(self) -> datetime | None:
        def tx(conn: Connection) -> datetime | None:
            conn.no_flush_needed()  # a time to sleep until: nobody outside hears of it
            return timers.next_due(conn)

        return await self.plumbing.db.transaction(tx)
