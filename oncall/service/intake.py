"""Stored events → incidents: each event the webhooks stored is routed once (`core.dispatch`):
dropped, posted to the team channel, listed under a maintenance window, or escalated into the
incident of its group; a later event may close the loop on earlier incidents (a ticket update,
a `cancel_on` event)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from oncall.core.digest import DIGEST, digest_due
from oncall.core.dispatch import (
    Drop,
    Escalate,
    InMaintenance,
    PostToTeam,
    RouteStep,
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


@dataclass(slots=True)
class _Routing:
    """What one routing transaction knows beyond the store, as it goes."""

    digests: set[datetime] = field(default_factory=set)  # digest times already set in it
    next_id: int | None = None  # SQLite: the id of its next new incident; None: not read yet
    batch: _Known | None = None  # SQLite, a batch in one savepoint: what the store holds for it


@dataclass(slots=True)
class _Known:
    """What the store holds for a batch's groups and subject keys, read for the whole batch at
    once and kept up to date as it is routed, instead of asked event by event (SQLite: this
    transaction is the only writer; a batch is all or nothing, a failure routes it again one
    savepoint per event, without this)."""

    plans: dict[int, list[RouteStep]]  # event id -> its `plan`, made to know its groups
    keys: dict[int, frozenset[str]]  # event id -> its `subject_keys`
    open_groups: set[str]  # open keys that may have an open incident (others surely have none)
    by_key: dict[str, set[int]]  # subject key -> incidents holding an event with it
    new_keys: list[tuple[str, int]] = field(default_factory=list)  # of new incidents, to write

    @classmethod
    def read(cls, conn: Connection, events: list[Event], world: World) -> _Known:
        plans = {ev.id: plan(ev, world, ev.received_at) for ev in events if ev.id is not None}
        keys = {ev.id: subject_keys(ev) for ev in events if ev.id is not None}
        groups = {
            store.open_key(s.rule.name, s.group_key)
            for steps in plans.values()
            for s in steps
            if isinstance(s, Escalate)
        }
        return cls(
            plans, keys, store.open_groups(conn, groups), store.key_index(conn, set().union(*keys.values()))
        )


@dataclass(frozen=True, slots=True)
class Ahead:
    """What waits after a routing round, read in its transaction (`store.timers.ahead`)."""

    due: datetime | None  # the earliest time any timer falls due
    pages: bool  # pages wait to be claimed


class Intake:
    def __init__(self, plumbing: Plumbing, effects: Effects, promises: Promises | None = None) -> None:
        self.plumbing = plumbing
        self.effects = effects
        self.promises = promises  # a ticket answered keeps its customer's promise

    async def route_events(self, now: datetime, limit: int = 200) -> int:
        return (await self.route_round(now, limit))[0]

    async def route_round(self, now: datetime, limit: int = 200) -> tuple[int, Ahead | None]:
        """Routes up to `limit` stored events in one transaction, which also reads what waits
        after them (None: no configuration, nothing was read)."""
        world = self.plumbing.current_world()
        if world is None:
            return 0, None
        batch = Batch()
        db = self.plumbing.db

        Routed = tuple[Batch, list[routes.Route], int]

        def route(conn: Connection, events: list[Event], isolate: bool) -> Routed:
            """Routes events in order; (work, routing records, how many were routed). Stops
            early, after at least one, when webhooks wait for the writer: they are answered
            first, and the rest are routed in the next transaction."""
            done = Batch()
            records: list[routes.Route] = []  # written together, after the batch
            known = _Routing()
            if not isolate and conn.dialect == "sqlite":
                known.batch = _Known.read(conn, events, world)
            n = 0
            for ev in events:
                if n and db.others_waiting():
                    break
                n += 1
                one = Batch()
                mine: list[routes.Route] = []
                assert ev.id is not None
                if not isolate:
                    self._route_one(conn, ev, world, now, one, mine, known)
                    done.add(one)
                    records += mine
                    continue
                # One event that cannot be routed (a bug) must not hold up the others: its work
                # is rolled back to a savepoint, it is marked routed and the error recorded.
                try:
                    with conn.savepoint("route_one"):
                        self._route_one(conn, ev, world, now, one, mine, known)
                except Exception as exc:
                    log.exception("routing event %s failed", ev.id)
                    known.next_id = None  # its incident, if any, was rolled back
                    records.append((ev.id, "", "error", None, f"{type(exc).__name__}: {exc}", now))
                else:
                    done.add(one)
                    records += mine  # its routing records, unless it was rolled back
            if known.batch is not None:
                store.index_keys(conn, known.batch.new_keys)
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

        def routed(conn: Connection) -> tuple[int, bool, Ahead]:
            n, more = tx(conn)
            if not batch.effects and not batch.later:
                # Nothing leaves the process from here (pages are sent from a later, flushed
                # claim): the events are on disk, and routing them is what a restart redoes.
                conn.no_flush_needed()
            return n, more, Ahead(*timers.ahead(conn, now))

        n, more, ahead = await db.transaction(routed)
        self.effects.after(batch)
        if more:
            self.plumbing.wake()
        return n, ahead

    def _route_one(
        self,
        conn: Connection,
        ev: Event,
        world: World,
        now: datetime,
        batch: Batch,
        records: list[routes.Route],
        known: _Routing,
    ) -> None:
        at = ev.received_at
        assert ev.id is not None
        b = known.batch
        touched: dict[int, Incident] = {}  # incidents this event opened or joined, as saved
        steps = b.plans[ev.id] if b is not None else plan(ev, world, at)
        keys = b.keys[ev.id] if b is not None else subject_keys(ev)
        for s in steps:
            if isinstance(s, Drop):
                records.append((ev.id, s.rule.name, "drop", None, None, now))
            elif isinstance(s, PostToTeam):
                batch.effects.append(s.post)
                records.append((ev.id, s.rule.name, "post", None, s.target, now))
            elif isinstance(s, InMaintenance):
                records.append((ev.id, s.rule.name, "maintenance", None, s.note, now))
            else:
                rule, key = s.rule.name, s.group_key
                group = store.open_key(rule, key)
                existing = (
                    None if b is not None and group not in b.open_groups else store.find_open(conn, rule, key)
                )
                saved = False
                if existing is None and conn.dialect == "sqlite":
                    # One statement: the new incident is opened with the id SQLite will give
                    # it, then written whole (not reserved first, then filled in).
                    if known.next_id is None:
                        known.next_id = store.next_incident_id(conn)
                    done = escalate(s, None, known.next_id, ev, at, world)
                    iid = store.insert_incident(conn, done.outcome.incident, now, index=b is None)
                    if iid is None:  # cannot happen with one writer; as on PostgreSQL, then
                        existing = store.find_open(conn, rule, key)
                        done = escalate(s, existing, None, ev, at, world)
                    else:
                        known.next_id = iid + 1
                        saved = iid == done.outcome.incident.id
                        if not saved:  # another id after all: opened again with it
                            done = escalate(s, None, iid, ev, at, world)
                else:
                    iid = None if existing is not None else store.new_incident_id(conn, rule, key, now)
                    if iid is None and existing is None:  # another instance opened it meanwhile
                        existing = store.find_open(conn, rule, key)
                    done = escalate(s, existing, iid, ev, at, world)
                digest_at = done.digest_at
                if digest_at is None and iid is not None and not world.is_open(at):
                    # Opened while closed: the opening digest's report counts it.
                    digest_at = digest_due(world, at)
                if digest_at is not None and digest_at not in known.digests:
                    timers.set_timer(conn, DIGEST, digest_at)
                    known.digests.add(digest_at)  # setting it again in this transaction changes nothing
                inc = done.outcome.incident
                self.effects.apply(conn, done.outcome, now, batch, index=True, saved=saved)
                touched[inc.id] = inc
                if b is not None and inc.is_open:  # as the store has it now
                    b.open_groups.add(group)
                    for k in keys:
                        b.by_key.setdefault(k, set()).add(inc.id)
                    if saved:  # written without its keys: they are written after the batch
                        b.new_keys += [(k, inc.id) for k in sorted(keys)]
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
        if b is not None:
            ids = {i for k in keys for i in b.by_key.get(k, ())} - touched.keys()
            about = store.open_incidents_in(conn, ids, cancel_on=ev.kind) if ids else []
        else:
            about = store.open_incidents_about(conn, keys, but=touched, cancel_on=ev.kind) if keys else []
        about += [inc for inc in touched.values() if inc.state in OPEN_STATES]
        for inc in sorted(about, key=lambda i: i.id):
            cancel = cancelling(ev, inc)
            if cancel is not None:
                self.effects.apply(conn, step(inc, cancel, at, world), now, batch)
