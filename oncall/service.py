"""The escalation service: the one place where the pure core meets the store and the channels.

Each piece of work is one store transaction that loads state, calls the core
(`oncall.core.rules.route`, `oncall.core.incident.step`) and writes the new state, its timer
and its page records together; only after it committed are messages sent:

    route_events(now)   events with routed_at NULL ─► incidents (open / join / cancel / close),
                        in-hours posts, maintenance records
    fire_due(now)       incidents whose wake_at has come ─► Tick; the morning digest
    send_pages(now)     pages recorded `pending` ─► `sending` ─► channel ─► `sent` / `failed`
    act(...)            ack / resolve / snooze from any channel, the API or the terminal

Page idempotency: a page is a row keyed (incident, round, step, person, channel), inserted as
`pending` in the transaction that decided it — a second insert of the key does nothing, so no
replay or second instance pages twice. Sending takes it `queued` (claimed by this process; it
may wait in a bundle or for a rate limit), then `sending` in its own transaction right before
the provider is called, then `sent`/`failed`. After a crash, `pending` pages and `queued` ones
(whose claim lapses after `QUEUE_LEASE`) never reached a channel and are sent — nothing is
skipped; `sending` ones (the process died during the provider call, outcome unknown) are
marked `unknown` and not re-sent, with a timeline note: the escalation continues on schedule,
so the next step still reaches someone (docs/escalation.md). What a channel does before it
delivers (`channels.base.Prepares`: the Slack DM lookup, building a client) runs before the
page is marked `sending`, so that window is the delivering call alone. If the store fails
meanwhile (a database restart), a page's outcome is written once it is back, and a page the
store could not mark `sending` goes back to `pending`: none is left claimed and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from oncall.channels.base import Channel, Delivery, PageMessage, Prepares
from oncall.channels.console import ConsoleChannel
from oncall.channels.delivery import RateLimiter
from oncall.core import pagetext
from oncall.core.incident import (
    Acted,
    Cancelling,
    Entry,
    Incident,
    Joined,
    Outcome,
    Page,
    Post,
    Reassure,
    Released,
    Tick,
    TicketChanged,
    Update,
    World,
    make_world,
    open_incident,
    step,
)
from oncall.core.models import CHANNELS, Config, Event, Person
from oncall.core.rota import next_on_call, on_call
from oncall.core.rules import route
from oncall.metrics import METRICS
from oncall.settings import Settings
from oncall.store import incidents as store
from oncall.store.database import Connection, Database, StoreUnavailable

log = logging.getLogger("oncall.escalation")
T = TypeVar("T")

Verb = Literal["ack", "resolve", "snooze"]
AckLink = Callable[[Person, tuple[int, ...]], str]
DIGEST = "digest"
TAKEN_OVER = "taken over by another instance"
NOT_MARKED = "not sent: the store could not mark it sending"
EDITED = ("telegram", "slack")  # channels whose `update` rewrites the page (SMS sends a new one)
RETRY_AFTER_ERROR = timedelta(minutes=1)


class Reassurer(Protocol):
    async def reassure(
        self,
        incident_id: int,
        message: str,
        customers: list[Any],
        config: Config,
        now: datetime,
        record: Callable[[str], Any],
    ) -> None: ...

    def share_rate_limits(self, limiter: RateLimiter) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# What other parts see


@dataclass(frozen=True, slots=True)
class ActResult:
    ok: bool
    incident_id: int | None
    state: str | None
    text: str  # one line for the person who acted


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    state: str
    rule: str
    kind: str
    summary: str
    count: int
    created_at: datetime
    updated_at: datetime
    customers: list[str]
    paged: list[dict[str, str]]
    timeline: list[dict[str, str]]

    def to_json(self, *, with_timeline: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "rule": self.rule,
            "kind": self.kind,
            "summary": self.summary,
            "count": self.count,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "customers": self.customers,
            "paged": self.paged,
        }
        if with_timeline:
            out["timeline"] = self.timeline
        return out


@dataclass(frozen=True, slots=True)
class OnCallView:
    rota: str
    person: str | None  # display name; None = nobody on call
    person_id: str | None
    until: datetime | None
    next: str | None
    next_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rota": self.rota,
            "person": self.person,
            "until": self.until.isoformat() if self.until else None,
            "next": self.next,
            "next_at": self.next_at.isoformat() if self.next_at else None,
        }


def view(inc: Incident, shop_tz: Any = UTC) -> IncidentView:
    events = inc.live_events or inc.events
    return IncidentView(
        id=inc.id,
        state=inc.state,
        rule=inc.rule,
        kind=inc.kind,
        summary=pagetext.what_happened(events, shop_tz, inc.updated_at),
        count=len(inc.live_events),
        created_at=inc.created_at,
        updated_at=inc.updated_at,
        customers=pagetext.customer_names(events),
        paged=[{"person": p.person, "channel": p.channel, "at": p.at.isoformat()} for p in inc.paged],
        timeline=[{"at": e.at.isoformat(), "what": e.what, "actor": e.actor} for e in inc.timeline],
    )


# ---------------------------------------------------------------------------------------------
# Effects that wait for the commit


@dataclass(frozen=True, slots=True)
class _PostEffect:
    target: str | None
    text: str


@dataclass(frozen=True, slots=True)
class _ReassureEffect:
    incident: Incident
    message: str
    now: datetime
    events: tuple[Event, ...] | None = None  # None: every live event of the incident


@dataclass(frozen=True, slots=True)
class _UpdateEffect:
    incident_id: int
    text: str
    what: str = "acknowledged"  # what happened to the incident: "resolved", "snoozed", …


_Effect = _PostEffect | _ReassureEffect | _UpdateEffect


@dataclass
class _Batch:
    """What one transaction decided, to carry out after it committed."""

    effects: list[_Effect] = field(default_factory=list)
    pages: int = 0


# ---------------------------------------------------------------------------------------------
# The service


class Service:
    def __init__(
        self,
        db: Database,
        config_provider: Callable[[], Config | None],
        channels: Mapping[str, Channel],
        settings: Settings,
        reassurer: Reassurer | None = None,
        *,
        ack_link: AckLink | None = None,
        bundle_window: float = 60.0,
        send_clock: Callable[[], float] | None = None,
        send_sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """`bundle_window`, `send_clock` and `send_sleep` go to the delivery dispatcher
        (bundling, rate limits, retries); tests run them in virtual time."""
        import time

        from oncall.channels.delivery import Dispatcher

        self.db = db
        self.config_provider = config_provider
        self.console = ConsoleChannel()
        self.channels: dict[str, Channel] = {"console": self.console, **channels}
        self.settings = settings
        self.reassurer = reassurer
        self.ack_link = ack_link or self._default_ack_link
        self._own_links = ack_link is None  # the paging part's signed links (oncall.web.ack)
        # Who this process is, for the pages it claims (several instances share one store).
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claimed: set[str] = set()
        self._update_texts: dict[int, str] = {}  # incident -> its last update, for pages delivered late
        self._edits: dict[str, str] = {}  # delivered message -> the update it was given
        self.dispatcher = Dispatcher(
            _MarkingChannels(self),
            window=bundle_window,
            relink=self.ack_link,
            record=self._record_one,
            sms_sender=settings.twilio_from,
            clock=send_clock or time.monotonic,
            sleep=send_sleep or asyncio.sleep,
            check=self._settled,
        )
        if reassurer is not None:
            # Customer texts leave from the paging number: one limit per sender, pages first.
            reassurer.share_rate_limits(self.dispatcher.limiter)
        self.fire_batch = 500  # timers per transaction
        self._read: store.Versioned = {}  # incidents read ahead of their due time
        self._worlds: dict[int, tuple[Config, World]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- configuration and time ------------------------------------------------------------

    def config(self) -> Config | None:
        return self.config_provider()

    def world(self, config: Config) -> World:
        cached = self._worlds.get(id(config))
        if cached is not None and cached[0] is config:
            return cached[1]
        w = make_world(config)
        self._worlds = {id(config): (config, w)}
        return w

    async def _settled(self, ids: tuple[int, ...]) -> dict[int, str]:
        return await self.db.transaction(lambda conn: store.settled_incidents(conn, ids))

    def _default_ack_link(self, person: Person, ids: tuple[int, ...]) -> str:
        # The paging part's signed, expiring token (its key is loaded from the store at start).
        from oncall.web.ack import ack_link

        return ack_link(self.settings, person, ids)

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
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def on_event_stored(self, event_id: int) -> None:
        self.wake()

    # -- start -------------------------------------------------------------------------------

    async def recover(self, now: datetime) -> int:
        """At start: pages whose send was interrupted are marked `unknown` (not re-sent)."""

        # On PostgreSQL other instances may be sending right now: only calls older than any
        # send can take (3 tries, 30 s apart at most) are surely dead. SQLite has one instance.
        before = now + timedelta(days=1) if self.db.dialect == "sqlite" else now - timedelta(minutes=5)

        def tx(conn: Connection) -> int:
            if self.db.dialect == "sqlite":
                # Claimed by the previous run (waiting in a bundle or for a rate limit) and never
                # handed to a channel: sent now, not after their claim lapses (`QUEUE_LEASE`).
                store.release_queued(conn)
            pages = store.interrupted_pages(conn, before)
            for p in pages:
                note = (
                    f"{p.channel} page to {p.person} (step {p.step}, round {p.round}) may not have been"
                    " delivered: oncall stopped while sending it; not sent again, the escalation continues"
                )
                self._append(conn, p.incident_id, Entry(now, note))
            return len(pages)

        n = await self.db.transaction(tx)
        if n:
            log.warning("%d page(s) were being sent when oncall stopped; marked unknown", n)
        return n

    # -- routing -----------------------------------------------------------------------------

    async def route_events(self, now: datetime, limit: int = 200) -> int:
        config = self.config()
        if config is None:
            return 0
        world = self.world(config)
        batch = _Batch()

        def tx(conn: Connection) -> int:
            events = store.claim_unrouted(conn, limit)
            for ev in events:
                # One event that cannot be routed (a bug) must not hold up the others: its work
                # is rolled back to a savepoint, it is marked routed and the error recorded.
                conn.execute("SAVEPOINT route_one")
                one = _Batch()
                try:
                    self._route_one(conn, ev, world, now, one)
                except Exception as exc:
                    conn.execute("ROLLBACK TO SAVEPOINT route_one")
                    log.exception("routing event %s failed", ev.id)
                    assert ev.id is not None
                    store.record_route(conn, ev.id, "", "error", None, f"{type(exc).__name__}: {exc}", now)
                else:
                    batch.effects += one.effects
                    batch.pages += one.pages
                conn.execute("RELEASE SAVEPOINT route_one")
                conn.execute("UPDATE events SET routed_at = ? WHERE id = ?", (now, ev.id))
            return len(events)

        n = await self.db.transaction(tx)
        self._after(batch)
        if n == limit:
            self.wake()
        return n

    def _route_one(self, conn: Connection, ev: Event, world: World, now: datetime, batch: _Batch) -> None:
        config = world.config
        at = ev.received_at
        assert ev.id is not None
        for d in route(ev, config.rules, at, world.is_open):
            if d.action == "drop":
                store.record_route(conn, ev.id, d.rule.name, "drop", None, None, now)
            elif d.action == "post":
                text = pagetext.post_text(ev, config.rules.shop, d.rule.name)
                batch.effects.append(_PostEffect(config.rules.shop.team_channel, text))
                store.record_route(
                    conn, ev.id, d.rule.name, "post", None, config.rules.shop.team_channel, now
                )
            elif d.maintenance is not None:
                note = f"maintenance {d.maintenance.start.isoformat()} to {d.maintenance.end.isoformat()}"
                note += f": {d.maintenance.note}" if d.maintenance.note else ""
                store.record_route(conn, ev.id, d.rule.name, "maintenance", None, note, now)
            else:
                existing = store.find_open(conn, d.rule.name, d.group_key)
                iid = (
                    None
                    if existing is not None
                    else store.new_incident_id(conn, d.rule.name, d.group_key, now)
                )
                if iid is None and existing is None:  # another instance opened it meanwhile
                    existing = store.find_open(conn, d.rule.name, d.group_key)
                if existing is not None:
                    out = step(existing, Joined(ev), at, world)
                else:
                    assert iid is not None
                    out = open_incident(iid, d.rule, d.group_key, ev, at, world)
                    if d.action == "defer":
                        when = world.next_open(at)
                        if when is not None:
                            store.set_timer(conn, DIGEST, when)
                self._apply(conn, out, now, batch, index=True)
                store.record_route(conn, ev.id, d.rule.name, d.action, out.incident.id, None, now)
        # Later events that close the loop on earlier incidents.
        keys = store.subject_keys(ev)
        if ev.kind == "ticket_updated" and ev.ticket.id:
            for inc in store.open_incidents_about(conn, [f"ticket:{ev.ticket.id}"]):
                self._apply(conn, step(inc, TicketChanged(ev), at, world), now, batch)
        for inc in store.open_incidents_about(conn, keys):
            if ev.kind in inc.cancel_on:
                self._apply(conn, step(inc, Cancelling(ev), at, world), now, batch)

    # -- timers ------------------------------------------------------------------------------

    async def fire_due(self, now: datetime, limit: int | None = None) -> int:
        """Runs every timer due at `now` (at most `limit`, default `fire_batch`, per call)."""
        limit = limit or self.fire_batch
        config = self.config()
        if config is None:
            return 0
        world = self.world(config)
        batch = _Batch()

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
            self._apply_many(conn, outs, now, batch)
            if store.take_timer(conn, DIGEST, now) is not None:
                self._digest(conn, world, now, batch)
            return len(due)

        n = await self.db.transaction(tx)
        if n < limit:
            self._read = {}
        self._after(batch)
        if n == limit:
            self.wake()
        return n

    async def read_ahead(self, until: datetime) -> int:
        """Reads the incidents due by `until` ahead of time; `fire_due` uses each copy only if
        nothing wrote the incident since (its version)."""
        self._read = await self.db.transaction(lambda conn: store.read_due(conn, until))
        return len(self._read)

    def _digest(self, conn: Connection, world: World, now: datetime, batch: _Batch) -> None:
        shop = world.config.rules.shop
        deferred = store.deferred_incidents(conn)
        if not deferred:
            return
        where = shop.team_channel or "the log"
        batch.effects.append(_PostEffect(shop.team_channel, pagetext.digest_text(deferred, shop, now)))
        for inc in deferred:
            self._apply(conn, step(inc, Released(where), now, world), now, batch)

    async def next_due(self) -> datetime | None:
        return await self.db.transaction(store.next_due)

    # -- acting ------------------------------------------------------------------------------

    async def act(
        self,
        incident_id: int | None,
        actor: Person,
        verb: Verb,
        via: str,
        now: datetime,
        snooze_for: timedelta | None = None,
    ) -> ActResult:
        """Acknowledge, resolve or snooze. `incident_id` None = the newest incident paged to
        `actor`."""
        config = self.config()
        if config is None:
            return ActResult(False, incident_id, None, "oncall has no valid configuration loaded")
        world = self.world(config)
        batch = _Batch()

        def tx(conn: Connection) -> ActResult:
            iid = incident_id if incident_id is not None else store.newest_incident_paged_to(conn, actor.id)
            if iid is None:
                return ActResult(False, None, None, "No incident has been paged to you")
            inc = store.get_incident(conn, iid, lock=True)
            if inc is None:
                return ActResult(False, iid, None, f"There is no incident {iid}")
            out = step(inc, Acted(actor.name, verb, via, snooze_for), now, world)
            if out.ok:
                self._apply(conn, out, now, batch)
            return ActResult(out.ok, iid, out.incident.state, out.text)

        result = await self.db.transaction(tx)
        METRICS.act(verb, via, result.ok)
        if result.ok and result.incident_id is not None and verb in ("ack", "resolve"):
            self.dispatcher.settle(result.incident_id, "resolved" if verb == "resolve" else "acknowledged")
        self._after(batch)
        self.wake()
        return result

    # -- reading -----------------------------------------------------------------------------

    async def incidents(
        self, open_only: bool = True, *, state: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[IncidentView]:
        rows = await self.db.transaction(
            lambda conn: store.list_incidents(
                conn, open_only=open_only, state=state, limit=limit, before=before
            )
        )
        tz = self._tz()
        return [view(i, tz) for i in rows]

    async def incident(self, incident_id: int) -> IncidentView | None:
        inc = await self.db.transaction(lambda conn: store.get_incident(conn, incident_id))
        return view(inc, self._tz()) if inc is not None else None

    def who(self, now: datetime) -> list[OnCallView]:
        config = self.config()
        return who(config, now) if config is not None else []

    def _tz(self) -> Any:
        config = self.config()
        return config.rules.shop.timezone if config is not None else UTC

    # -- sending -----------------------------------------------------------------------------

    async def send_pages(self, now: datetime) -> int:
        """Sends every `pending` page (in the background: bundling may hold a page up to the
        bundle window); returns how many were handed over."""
        config = self.config()
        if config is None:
            return 0
        if self._own_links:
            # If the shared ack-link key is not loaded yet (the store was down at start), one
            # attempt now: pages come from the store, so it loads as soon as pages can go out,
            # and their links survive a restart.
            from oncall.web.ack import load_key

            await load_key(self.db)

        def tx(conn: Connection) -> list[tuple[store.PageRow, Incident | None]]:
            claimed = store.claim_pending_pages(conn, now, self.instance)
            cache: dict[int, Incident | None] = {}
            for p in claimed:
                if p.incident_id not in cache:
                    cache[p.incident_id] = store.get_incident(conn, p.incident_id)
            return [(p, cache[p.incident_id]) for p in claimed]

        claimed = await self.db.transaction(tx)
        handed = 0
        for page, inc in claimed:
            if page.key in self._claimed:
                # Still waiting here (a bundle, a rate limit) past its claim: taking it again
                # renewed the claim; a second send would page twice.
                continue
            self._claimed.add(page.key)
            self._spawn(self._send_one(page, inc, config, now))
            handed += 1
        return handed

    async def _send_one(
        self, page: store.PageRow, inc: Incident | None, config: Config, now: datetime
    ) -> None:
        person = config.people.get(page.person)
        notes: list[str] = []
        to_log: str | None = None  # the channel is off: noted only if the page really goes out
        result: Delivery
        via = page.channel
        if person is None or inc is None:
            result = Delivery(ok=False, error=f"{page.person} is no longer in people.toml")
        elif inc.state != "triggered":
            # Acknowledged or resolved after this page was queued (e.g. a fail-over page): an
            # ack stops the escalation, so it is never sent (SPEC §5).
            result = Delivery(ok=False, error=f"cancelled: the incident was {inc.state}")
        else:
            channel = self.channels.get(via)
            if via != "console" and (channel is None or not channel.configured()):
                to_log = f"{via} is not configured: the page to {person.name} is written to the log instead"
                via = "console"
            link = self.ack_link(person, (inc.id,))
            text = pagetext.page_text(inc, config.rules.shop, now, link)
            message = PageMessage(
                key=page.key,
                person=person,
                channel=via,
                incident_ids=(inc.id,),
                title=text.title,
                body=text.body,
                sms=text.sms,
                ack_url=link,
            )
            try:
                result = await self.dispatcher.send(message)
            except asyncio.CancelledError:
                # Shutting down. A page still waiting in a bundle never reached its channel:
                # back to `pending`, so the next start sends it. One cancelled during the
                # provider call stays `sending` (outcome unknown, see the module doc).
                await self.db.transaction(lambda conn: store.unclaim_page(conn, page.key, self.instance))
                self._claimed.discard(page.key)
                raise
            except Exception as exc:  # a channel bug must not stop the escalation
                log.exception("sending %s failed", page.key)
                result = Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")
        if result.error == NOT_MARKED:
            # The store went away before the page was marked `sending`, so its channel was never
            # called: back to `pending` once the store is back, and sent then (by any instance).
            await self._until_stored(
                lambda conn: store.unclaim_page(conn, page.key, self.instance, sending=True)
            )
            self._claimed.discard(page.key)
            self.wake()
            return
        if result.error == TAKEN_OVER:
            # Another instance claimed this page after our claim lapsed and sends it: its row
            # is theirs to finish (writing `failed` over it would page by other channels too).
            self._claimed.discard(page.key)
            return
        cancelled = not result.ok and (result.error or "").startswith("cancelled:")
        if cancelled:
            why = (result.error or "").partition(": ")[2]
            notes.append(f"{page.channel} page to {page.person} not sent: {why}")
        elif to_log is not None and result.ok:
            notes.append(to_log)
        if not cancelled and not result.ok:
            notes.append(f"{via} page to {page.person} failed: {result.error}")
        METRICS.page(via, "sent" if result.ok else "cancelled" if cancelled else "failed")
        done = utcnow()

        def tx(conn: Connection) -> Incident | None:
            store.finish_page(
                conn, page.key, ok=result.ok, sent_via=via, ref=result.ref, error=result.error, now=done
            )
            for n in notes:
                self._append(conn, page.incident_id, Entry(done, n))
            if result.ok:
                # Acknowledged or resolved while the provider call was under way: the update of
                # every delivered page may already have run without this one.
                current = store.get_incident(conn, page.incident_id)
                return current if current is not None and current.state != "triggered" else None
            if not cancelled and person is not None and inc is not None:
                current = store.get_incident(conn, page.incident_id)
                if current is not None and current.state == "triggered":  # not acted on meanwhile
                    self._failover(conn, page, person, done)
            return None

        settled = await self._until_stored(tx)
        self._claimed.discard(page.key)
        if not result.ok:
            self.wake()
        if settled is not None:
            update = self._update_texts.get(settled.id) or _settled_text(settled, self._tz())
            await self._update(settled.id, update, only=page.key)

    async def _until_stored(self, fn: Callable[[Connection], T]) -> T:
        """`db.transaction(fn)`, tried again while the store is unavailable (a database restart):
        what became of a page must reach the store, or it would stay `sending` (never sent
        again, though it went out) or claimed by this process (which skips it)."""
        delay = 0.5
        while True:
            try:
                return await self.db.transaction(fn)
            except StoreUnavailable as exc:
                log.warning("a page's outcome waits for the store: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _failover(self, conn: Connection, page: store.PageRow, person: Person, now: datetime) -> None:
        """No channel of the step reached the person: page them by any other channel they
        have details for (SPEC §5), once per step."""
        siblings = [
            p
            for p in store.pages_of(conn, page.incident_id)
            if p.person == page.person and p.step == page.step and p.round == page.round
        ]
        if any(p.state in ("pending", "queued", "sending", "sent", "unknown") for p in siblings):
            return
        tried = {p.channel for p in siblings} | {p.sent_via for p in siblings if p.sent_via}
        others = [c for c in CHANNELS if c not in tried and person.has(c)]
        if not others:
            others = ["console"] if "console" not in tried else []
        if not others:
            self._append(
                conn, page.incident_id, Entry(now, f"{person.name} could not be reached by any channel")
            )
            return
        base = page.key.split(":failover:")[0]
        extra = [Page(page.person, c, page.step, page.round, f"{base}:failover:{c}") for c in others]
        store.add_pages(conn, page.incident_id, extra, now)
        note = (
            f"{person.name} not reached by {', '.join(sorted(tried))}: paging by {', '.join(others)} instead"
        )
        self._append(conn, page.incident_id, Entry(now, note))

    async def _post(self, target: str | None, text: str) -> None:
        channel_name, _, where = (target or "console:").partition(":")
        person = Person(id=f"team:{target}", name=target or "the log")
        if channel_name == "telegram":
            try:
                person = replace(person, telegram=int(where))
            except ValueError:
                channel_name = "console"
        elif channel_name == "slack":
            person = replace(person, slack=where)
        elif channel_name == "sms":
            person = replace(person, phone=where)
        channel = self.channels.get(channel_name)
        if channel is None or not channel.configured():
            channel_name = "console"
        title = text.split("\n", 1)[0]
        message = PageMessage(
            key=f"post:{utcnow().isoformat()}:{hash(text)}",
            person=person,
            channel=channel_name,
            incident_ids=(),
            title=title,
            body=text,
            sms=pagetext.to_gsm7(text)[:306],
            ack_url="",
        )
        result = await self.dispatcher.send(message)
        if not result.ok:
            log.error("posting to %s failed: %s", target, result.error)

    async def _update(self, incident_id: int, text: str, only: str | None = None) -> None:
        """Edits (Telegram, Slack) or confirms (SMS) every delivered page of the incident, or
        only the page `only` (one delivered after the update ran); a message already given
        `text` is left alone."""

        def tx(conn: Connection) -> tuple[list[store.PageRow], set[str]]:
            pages = [p for p in store.pages_of(conn, incident_id) if only is None or p.key == only]
            refs = {p.ref for p in pages if p.ref and p.state == "sent" and p.sent_via in EDITED}
            return pages, store.refs_still_paging(conn, refs, incident_id)

        pages, still_paging = await self.db.transaction(tx)
        seen: set[str] = set()
        for p in pages:
            if p.state != "sent" or not p.ref or p.ref in seen or not p.sent_via:
                continue
            if p.sent_via in EDITED and p.ref in still_paging:
                # A bundled message that also pages for incidents still triggered: editing it
                # would erase their page and their buttons. It is edited when the last is settled.
                continue
            seen.add(p.ref)
            if self._edits.get(p.ref) == text:
                continue  # the update and a page delivered late both reached this one
            _remember(self._edits, p.ref, text)
            result = await self.dispatcher.update(p.sent_via, p.ref, text)
            if not result.ok:
                log.warning("updating %s page %s failed: %s", p.sent_via, p.ref, result.error)

    async def _reassure(self, eff: _ReassureEffect) -> None:
        config = self.config()
        if self.reassurer is None or config is None:
            return
        from oncall.core.customer_text import CustomerContact

        customers = [
            CustomerContact(
                name=e.customer.name,
                email=e.customer.email,
                phone=e.customer.phone,
                language=e.customer.language,
                source=e.source,
                ticket_id=e.ticket.id,
                order_number=e.order.number,
            )
            for e in (eff.incident.live_events if eff.events is None else eff.events)
        ]
        iid = eff.incident.id

        async def record(text: str) -> None:
            await self._record_many((iid,), text)

        await self.reassurer.reassure(iid, eff.message, customers, config, eff.now, record)

    async def tell_fallback(self, text: str, now: datetime) -> None:
        """A message for the owner (`shop.fallback`), by every channel they have, e.g. "your
        edit of escalation_rules.toml was not applied"."""
        config = self.config()
        if config is None:
            log.error("%s (no configuration to find shop.fallback in)", text)
            return
        target = config.rules.shop.fallback
        pid = self.world(config).on_call(target.name, now) if target.kind == "rota" else target.name
        person = config.people.get(pid or "")
        if person is None:
            log.error("%s (shop.fallback %s has nobody to tell)", text, target)
            return
        usable = [
            c for c in CHANNELS if person.has(c) and c in self.channels and self.channels[c].configured()
        ]
        title = text.split("\n", 1)[0]
        for channel in usable or ["console"]:
            message = PageMessage(
                key=f"notice:{now.isoformat()}:{channel}",
                person=person,
                channel=channel,
                incident_ids=(),
                title=title,
                body=text,
                sms=pagetext.sms_fit(text, ""),
                ack_url="",
            )
            result = await self.dispatcher.send(message)
            if not result.ok:
                log.error("telling %s by %s failed: %s", person.name, channel, result.error)

    def notify_fallback(self, text: str) -> None:
        """`tell_fallback` in the background (from synchronous code such as the config watcher)."""
        self._spawn(self.tell_fallback(text, utcnow()))

    # -- plumbing ----------------------------------------------------------------------------

    def _apply(
        self, conn: Connection, out: Outcome, now: datetime, batch: _Batch, *, index: bool = False
    ) -> None:
        """Writes an outcome of the core and queues its effects for after the commit; `index`
        when the outcome added events."""
        inc = out.incident
        store.save_incident(conn, inc, index=index)
        pages = [a for a in out.actions if isinstance(a, Page)]
        if pages:
            store.add_pages(conn, inc.id, pages, now)
            batch.pages += len(pages)
        self._effects(out, now, batch)

    def _apply_many(self, conn: Connection, outs: Sequence[Outcome], now: datetime, batch: _Batch) -> None:
        """`_apply` for many outcomes that added no events (timers), in two statements."""
        store.save_incidents(conn, [o.incident for o in outs])
        pages = [(o.incident.id, a) for o in outs for a in o.actions if isinstance(a, Page)]
        store.add_pages_many(conn, pages, now)
        batch.pages += len(pages)
        for o in outs:
            self._effects(o, now, batch)

    def _effects(self, out: Outcome, now: datetime, batch: _Batch) -> None:
        inc = out.incident
        for a in out.actions:
            if isinstance(a, Post):
                batch.effects.append(_PostEffect(a.target, a.text))
            elif isinstance(a, Reassure):
                batch.effects.append(_ReassureEffect(inc, a.message, now, a.events))
            elif isinstance(a, Update):
                batch.effects.append(_UpdateEffect(inc.id, a.text, _settled_as(inc)))

    def _after(self, batch: _Batch) -> None:
        for eff in batch.effects:
            if isinstance(eff, _PostEffect):
                self._spawn(self._post(eff.target, eff.text))
            elif isinstance(eff, _ReassureEffect):
                self._spawn(self._reassure(eff))
            else:
                # Acknowledged, resolved or snoozed (by anyone: a person, the API, the helpdesk):
                # its pages still queued or retrying are dropped, like after `act`.
                self.dispatcher.settle(eff.incident_id, eff.what)
                _remember(self._update_texts, eff.incident_id, eff.text)
                self._spawn(self._update(eff.incident_id, eff.text))
        if batch.pages:
            self.wake()

    def _spawn(self, coro: Any) -> None:
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

    async def aclose(self, within: float = 2.0) -> None:
        """Lets background work finish for `within` seconds, then cancels the rest (pages
        waiting in a bundle go back to `pending` for the next start)."""
        await self.drain(within)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.dispatcher.aclose()

    def _append(self, conn: Connection, incident_id: int, entry: Entry) -> None:
        inc = store.get_incident(conn, incident_id)
        if inc is not None:
            store.save_incident(conn, replace(inc, timeline=(*inc.timeline, entry)), index=False)

    async def _record_one(self, incident_id: int, text: str) -> None:
        await self._record_many((incident_id,), text)

    async def _record_many(self, ids: Sequence[int], text: str) -> None:
        now = utcnow()

        def tx(conn: Connection) -> None:
            for i in ids:
                self._append(conn, i, Entry(now, text))

        await self.db.transaction(tx)


def _remember(memory: dict[Any, str], key: Any, text: str, keep: int = 10_000) -> None:
    memory.pop(key, None)
    memory[key] = text
    while len(memory) > keep:
        del memory[next(iter(memory))]


def _settled_text(inc: Incident, tz: Any) -> str:
    """The update for an incident settled in another process (its own text is not here), as
    the core words it: "Incident 4 acknowledged by Ana García at 23:16"."""
    who = inc.resolved_by if inc.state == "resolved" else inc.acknowledged_by
    if inc.state == "acknowledged" and inc.wake_at is not None:
        return f"Incident {inc.id} snoozed by {who} until {inc.wake_at.astimezone(tz):%H:%M}"
    at = next((e.at for e in reversed(inc.timeline) if who and e.actor == who), inc.updated_at)
    return f"Incident {inc.id} {inc.state}{f' by {who}' if who else ''} at {at.astimezone(tz):%H:%M}"


def _settled_as(inc: Incident) -> str:
    """What became of an incident whose pages are dropped, as the timeline says it."""
    if inc.state == "acknowledged" and inc.wake_at is not None:
        return "snoozed"
    return inc.state


def who(config: Config, now: datetime) -> list[OnCallView]:
    """Who each rota has on call at `now`, until when, and who is next."""
    out = []
    for name, rota in sorted(config.rotas.items()):
        shift = on_call(rota, now)
        nxt = next_on_call(rota, now)

        def display(pid: str | None) -> str | None:
            if pid is None:
                return None
            p = config.people.get(pid)
            return p.name if p is not None else pid

        out.append(
            OnCallView(
                rota=name,
                person=display(shift.person if shift else None),
                person_id=shift.person if shift else None,
                until=shift.end if shift else None,
                next=display(nxt.person if nxt else None),
                next_at=nxt.start if nxt else None,
            )
        )
    return out


class _Marking:
    """A channel as the dispatcher sees it: right before the real call, the pages a message
    carries go from `queued` to `sending` — the line between "certainly never sent" (sent again
    after a crash) and "maybe sent" (never sent again)."""

    def __init__(self, inner: Channel, service: Service) -> None:
        self.inner = inner
        self.service = service
        self.name = inner.name

    def configured(self) -> bool:
        return self.inner.configured()

    async def send(self, message: PageMessage) -> Delivery:
        s = self.service
        keys = [k for k in message.key.split("+") if k in s._claimed]  # a bundle joins keys with +
        if keys and isinstance(self.inner, Prepares):
            await self.inner.prepare(message)
        if keys:
            now = utcnow()

            def tx(conn: Connection) -> tuple[int, dict[int, str]]:
                held = store.mark_sending(conn, keys, s.instance, now)
                return held, {} if held else store.settled_incidents(conn, message.incident_ids)

            try:
                held, settled = await s.db.transaction(tx)
            except StoreUnavailable as exc:
                log.warning("page %s not sent: %s", message.key, exc)
                return Delivery(ok=False, error=NOT_MARKED)
            if held == 0 and settled and len(settled) == len(set(message.incident_ids)):
                # Acknowledged or resolved since it was queued, perhaps by another process.
                for incident_id, what in settled.items():
                    s.dispatcher.settle(incident_id, what)
                return Delivery(ok=False, error=f"cancelled: the incident was {next(iter(settled.values()))}")
            if held == 0:
                return Delivery(ok=False, error=TAKEN_OVER)
        return await self.inner.send(message)

    async def update(self, ref: str, text: str) -> Delivery:
        return await self.inner.update(ref, text)


class _MarkingChannels(Mapping[str, Channel]):
    """The service's channels, each wrapped in `_Marking`, read live (a test or a reload may
    change `service.channels`)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def __getitem__(self, name: str) -> Channel:
        return _Marking(self.service.channels[name], self.service)

    def __iter__(self) -> Iterator[str]:
        return iter(self.service.channels)

    def __len__(self) -> int:
        return len(self.service.channels)
