"""Stored events → incidents: each event the webhooks stored is routed once (`core.dispatch`):
dropped, posted to the team channel, listed under a maintenance window, or escalated into the
incident of its group; a later event may close the loop on earlier incidents (a ticket update,
a `cancel_on` event)."""

from __future__ import annotations

import logging
from datetime import datetime

from oncall.core.digest import DIGEST, digest_due
from oncall.core.dispatch import (
    Drop,
    InMaintenance,
    PostToTeam,
    cancelling,
    escalate,
    plan,
    ticket_subject,
)
from oncall.core.incident import OPEN_STATES, Incident, TicketChanged, World, step, subject_keys
from oncall.core.models import Event
from oncall.core.report import first_acknowledgement
from oncall.metrics import METRICS
from oncall.service.effects import Batch, Effects
from oncall.service.plumbing import Plumbing
from oncall.service.promises import Promises
from oncall.store import incidents as store
from oncall.store import routes, timers
from oncall.store.connection import Connection

log = logging.getLogger("oncall.escalation")

_CHUNK = 8  # events claimed at a time: a routing transaction that yields decoded few for nothing


class Intake:
    def __init__(self, plumbing: Plumbing, effects: Effects, promises: Promises | None = None) -> None:
        self.plumbing = plumbing
        self.effects = effects
        self.promises = promises  # a ticket answered keeps its customer's promise

    async def route_events(self, now: datetime, limit: int = 200) -> int:
        world = self.plumbing.current_world()
        if world is None:
            return 0
        batch = Batch()
        db = self.plumbing.db

        Routed = tuple[Batch, list[routes.Route], int]

        def route(conn: Connection, events: list[Event], isolate: bool) -> Routed:
            """Routes events in order; (work, routing records, how many were routed). Stops
            early, after at least one, when webhooks wait for the writer: they are answered
            first, and the rest are routed in the next transaction."""
            done = Batch()
            records: list[routes.Route] = []  # written together, after the batch
            digests: set[datetime] = set()  # digest times already set in this transaction
            n = 0
            for ev in events:
                if n and db.others_waiting():
                    break
                n += 1
                one = Batch()
                mine: list[routes.Route] = []
                assert ev.id is not None
                if not isolate:
                    self._route_one(conn, ev, world, now, one, mine, digests)
                    done.add(one)
                    records += mine
                    continue
                # One event that cannot be routed (a bug) must not hold up the others: its work
                # is rolled back to a savepoint, it is marked routed and the error recorded.
                try:
                    with conn.savepoint("route_one"):
                        self._route_one(conn, ev, world, now, one, mine, digests)
                except Exception as exc:
                    log.exception("routing event %s failed", ev.id)
                    records.append((ev.id, "", "error", None, f"{type(exc).__name__}: {exc}", now))
                else:
                    done.add(one)
                    records += mine  # its routing records, unless it was rolled back
            return done, records, n

        def tx(conn: Connection) -> tuple[int, bool]:
            total = 0
            while total < limit:
                # A few at a time: a flood routed in the gaps between webhooks reads no more
                # events than it routes before it yields.
                events = routes.claim_unrouted(conn, min(_CHUNK, limit - total))
                if not events:
                    return total, False
                routed: Routed | None = None
                # Mostly no event fails: the whole chunk goes in one savepoint rather than one
                # per event (two statements each, two round trips on PostgreSQL). If any fails,
                # all of it is rolled back and routed again one savepoint per event. Ticket
                # updates always go one by one: routing them counts acknowledgements, which
                # must not count twice.
                if len(events) > 1 and all(ticket_subject(ev) is None for ev in events):
                    try:
                        with conn.savepoint("route_all"):
                            routed = route(conn, events, isolate=False)
                    except Exception:
                        routed = None
                if routed is None:
                    routed = route(conn, events, isolate=True)
                done, records, n = routed
                batch.add(done)
                routes.record_routes(conn, records)
                routes.mark_routed_many(conn, [ev.id for ev in events[:n] if ev.id is not None], now)
                total += n
                if n < len(events) or db.others_waiting():
                    return total, True
            return total, True

        n, more = await db.transaction(tx)
        self.effects.after(batch)
        if more:
            self.plumbing.wake()
        return n

    def _route_one(
        self,
        conn: Connection,
        ev: Event,
        world: World,
        now: datetime,
        batch: Batch,
        records: list[routes.Route],
        digests: set[datetime],
    ) -> None:
        at = ev.received_at
        assert ev.id is not None
        touched: dict[int, Incident] = {}  # incidents this event opened or joined, as saved
        for s in plan(ev, world, at):
            if isinstance(s, Drop):
                records.append((ev.id, s.rule.name, "drop", None, None, now))
            elif isinstance(s, PostToTeam):
                batch.effects.append(s.post)
                records.append((ev.id, s.rule.name, "post", None, s.target, now))
            elif isinstance(s, InMaintenance):
                records.append((ev.id, s.rule.name, "maintenance", None, s.note, now))
            else:
                rule, key = s.rule.name, s.group_key
                existing = store.find_open(conn, rule, key)
                iid = None if existing is not None else store.new_incident_id(conn, rule, key, now)
                if iid is None and existing is None:  # another instance opened it meanwhile
                    existing = store.find_open(conn, rule, key)
                done = escalate(s, existing, iid, ev, at, world)
                digest_at = done.digest_at
                if digest_at is None and iid is not None and not world.is_open(at):
                    # Opened while closed: the opening digest's report counts it.
                    digest_at = digest_due(world, at)
                if digest_at is not None and digest_at not in digests:
                    timers.set_timer(conn, DIGEST, digest_at)
                    digests.add(digest_at)  # setting it again in this transaction changes nothing
                self.effects.apply(conn, done.outcome, now, batch, index=True)
                touched[done.outcome.incident.id] = done.outcome.incident
                records.append((ev.id, rule, s.action, done.outcome.incident.id, None, now))
        # Later events that close the loop on earlier incidents.
        ticket = ticket_subject(ev)
        if ticket is not None:
            if self.promises is not None:
                # First, so the promise says the ticket kept it (its incident may resolve next).
                self.promises.ticket_updated(conn, ev, at, batch)
            for inc in store.open_incidents_about(conn, [ticket]):
                out = step(inc, TicketChanged(ev), at, world)
                self.effects.apply(conn, out, now, batch)
                METRICS.acknowledged(first_acknowledgement(inc, out.incident))
            touched = {}  # the ticket may have changed them: read them all again
        # The incidents just saved are as the store has them: not read back (a flood of new
        # orders made this read return each one's own new incident, decoded for nothing).
        keys = subject_keys(ev)
        about = store.open_incidents_about(conn, keys, but=touched, cancel_on=ev.kind) if keys else []
        about += [inc for inc in touched.values() if inc.state in OPEN_STATES]
        for inc in sorted(about, key=lambda i: i.id):
            cancel = cancelling(ev, inc)
            if cancel is not None:
                self.effects.apply(conn, step(inc, cancel, at, world), now, batch)
