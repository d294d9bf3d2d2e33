"""Sending pages (SPEC §5): the records the core decided go out through the delivery
dispatcher (bundling, rate limits, retries: `channels.delivery`), and a page that fails is
followed by the person's other channels (`core.failover`).

Page idempotency: a page is a row keyed (incident, round, step, person, channel), inserted as
`pending` in the transaction that decided it — a second insert of the key does nothing, so no
replay or second instance pages twice. Sending takes it `queued` (claimed by this process; it
may wait in a bundle or for a rate limit), then `sending` in its own transaction right before
the provider is called (`service.claims`), then `sent`/`failed`. After a crash, `pending` pages
and `queued` ones (whose claim lapses after `QUEUE_LEASE`) never reached a channel and are
sent — nothing is skipped; `sending` ones (the process died during the provider call, outcome
unknown) are marked `unknown` and not re-sent, with a timeline note: the escalation continues
on schedule, so the next step still reaches someone (docs/escalation.md). If the store fails
meanwhile (a database restart), a page's outcome is written once it is back, and a page the
store could not mark `sending` goes back to `pending`: none is left claimed and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from oncall import acklinks
from oncall.channels.base import Delivery, PageMessage, cancelled
from oncall.channels.delivery import Dispatcher
from oncall.core import pagetext
from oncall.core.failover import plan_failover
from oncall.core.incident import Entry, Incident, Page
from oncall.core.models import Config, Person, person_language
from oncall.metrics import METRICS
from oncall.service.claims import Claims
from oncall.service.edits import Edits
from oncall.service.plumbing import Plumbing
from oncall.store import incidents as store
from oncall.store import pages as page_store
from oncall.store import slots
from oncall.store.connection import Connection, StoreUnavailable
from oncall.store.pages import PageRow

log = logging.getLogger("oncall.escalation")
T = TypeVar("T")

AckLink = Callable[[Person, tuple[int, ...]], str]


class Paging:
    def __init__(
        self,
        plumbing: Plumbing,
        *,
        ack_link: AckLink | None,
        bundle_window: float,
        send_clock: Callable[[], float] | None,
        send_sleep: Callable[[float], Awaitable[None]] | None,
    ) -> None:
        """`bundle_window`, `send_clock` and `send_sleep` go to the delivery dispatcher; tests
        run them in virtual time."""
        self.plumbing = plumbing
        self.ack_link = ack_link or self._signed_link
        self._own_links = ack_link is None  # the paging part's signed links (oncall.acklinks)
        self.claims = Claims(plumbing)
        self.dispatcher = Dispatcher(
            plumbing.channels,  # read live: a test or a reload may change them
            window=bundle_window,
            relink=self.ack_link,
            record=plumbing.record_one,
            sms_sender=plumbing.settings.twilio_from,
            clock=send_clock or time.monotonic,
            sleep=send_sleep or asyncio.sleep,
            check=self._settled,
            claim=self.claims.mark,
            # Several instances share PostgreSQL, and each per-chat limit with it; SQLite has one.
            shared=self._take_slot if plumbing.db.dialect == "postgresql" else None,
            wall=send_clock or time.time,
        )
        self.edits = Edits(plumbing, self.dispatcher)

    def _signed_link(self, person: Person, ids: tuple[int, ...]) -> str:
        # The paging part's signed, expiring token (its key is loaded from the store at start).
        return acklinks.ack_link(self.plumbing.settings, person, ids, self.plumbing.clock())

    async def _take_slot(self, key: str, not_before: float, interval: float) -> float:
        return await self.plumbing.db.transaction(
            lambda conn: slots.take_slot(conn, key, not_before, interval)
        )

    async def _settled(self, ids: tuple[int, ...]) -> dict[int, str]:
        return await self.plumbing.db.transaction(lambda conn: page_store.settled_incidents(conn, ids))

    # -- at start ------------------------------------------------------------------------------

    async def recover(self, now: datetime) -> int:
        """At start: pages whose send was interrupted are marked `unknown` (not re-sent)."""
        db = self.plumbing.db
        # On PostgreSQL other instances may be sending right now: only calls older than any
        # send can take (3 tries, 30 s apart at most) are surely dead. SQLite has one instance.
        before = now + timedelta(days=1) if db.dialect == "sqlite" else now - timedelta(minutes=5)

        def tx(conn: Connection) -> int:
            if db.dialect == "sqlite":
                # Claimed by the previous run (waiting in a bundle or for a rate limit) and never
                # handed to a channel: sent now, not after their claim lapses (`QUEUE_LEASE`).
                page_store.release_queued(conn)
            pages = page_store.interrupted_pages(conn, before)
            for p in pages:
                note = (
                    f"{p.channel} page to {p.person} (step {p.step}, round {p.round}) may not have been"
                    " delivered: oncall stopped while sending it; not sent again, the escalation continues"
                )
                self.plumbing.append(conn, p.incident_id, Entry(now, note))
            return len(pages)

        n = await db.transaction(tx)
        if n:
            log.warning("%d page(s) were being sent when oncall stopped; marked unknown", n)
        return n

    # -- sending -------------------------------------------------------------------------------

    async def send_pages(self, now: datetime) -> int:
        """Sends every `pending` page (in the background: bundling may hold a page a few
        seconds, see `channels.delivery`); returns how many were handed over."""
        config = self.plumbing.config()
        if config is None:
            return 0
        if self._own_links:
            # If the shared ack-link key is not loaded yet (the store was down at start), one
            # attempt now: pages come from the store, so it loads as soon as pages can go out,
            # and their links survive a restart.
            await acklinks.load_key(self.plumbing.db, now)
        instance = self.claims.instance

        def tx(conn: Connection) -> list[tuple[PageRow, Incident | None]]:
            claimed = page_store.claim_pending_pages(conn, now, instance)
            if not claimed:
                conn.no_flush_needed()  # nothing to send (a claim to send is on disk first)
            cache: dict[int, Incident | None] = {}
            for p in claimed:
                if p.incident_id not in cache:
                    cache[p.incident_id] = store.get_incident(conn, p.incident_id)
            return [(p, cache[p.incident_id]) for p in claimed]

        claimed = await self.plumbing.db.transaction(tx)
        handed = 0
        for page, inc in claimed:
            if page.key in self.claims.held:
                # Still waiting here (a bundle, a rate limit) past its claim: taking it again
                # renewed the claim; a second send would page twice.
                continue
            self.claims.held.add(page.key)
            self.plumbing.spawn(self._send_one(page, inc, config, now))
            handed += 1
        return handed

    async def _send_one(self, page: PageRow, inc: Incident | None, config: Config, now: datetime) -> None:
        person = config.people.get(page.person)
        to_log: str | None = None  # the channel is off: noted only if the page really goes out
        result: Delivery
        via = page.channel
        if person is None or inc is None:
            result = Delivery(ok=False, error=f"{page.person} is no longer in people.toml")
        elif inc.state != "triggered":
            # Acknowledged or resolved after this page was queued (e.g. a fail-over page): an
            # ack stops the escalation, so it is never sent (SPEC §5).
            result = cancelled(inc.state)
        else:
            channel = self.plumbing.channels.get(via)
            if via != "console" and (channel is None or not channel.configured()):
                to_log = f"{via} is not configured: the page to {person.name} is written to the log instead"
                via = "console"
            try:
                result = await self.dispatcher.send(self._message(page, inc, person, via, config, now))
            except asyncio.CancelledError:
                # Shutting down. A page still waiting in a bundle never reached its channel:
                # back to `pending`, so the next start sends it. One cancelled during the
                # provider call stays `sending` (outcome unknown, see the module doc).
                instance = self.claims.instance
                await self.plumbing.db.transaction(
                    lambda conn: page_store.unclaim_page(conn, page.key, instance)
                )
                self.claims.held.discard(page.key)
                raise
            except Exception as exc:  # a channel bug must not stop the escalation
                log.exception("sending %s failed", page.key)
                result = Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")
        if result.unmarked:
            # The store went away before the page was marked `sending`, so its channel was never
            # called: back to `pending` once the store is back, and sent then (by any instance).
            instance = self.claims.instance
            await self._until_stored(
                lambda conn: page_store.unclaim_page(conn, page.key, instance, sending=True)
            )
            self.claims.held.discard(page.key)
            self.plumbing.wake()
            return
        if result.taken_over:
            # Another instance claimed this page after our claim lapsed and sends it: its row
            # is theirs to finish (writing `failed` over it would page by other channels too).
            self.claims.held.discard(page.key)
            return
        notes = _notes(page, via, result, to_log)
        METRICS.page(via, "sent" if result.ok else "cancelled" if result.settled else "failed")
        done = self.plumbing.clock()

        def tx(conn: Connection) -> Incident | None:
            page_store.finish_page(
                conn, page.key, ok=result.ok, sent_via=via, ref=result.ref, error=result.error, now=done
            )
            for n in notes:
                self.plumbing.append(conn, page.incident_id, Entry(done, n))
            if result.ok:
                # Acknowledged or resolved while the provider call was under way: the update of
                # every delivered page may already have run without this one.
                current = store.get_incident(conn, page.incident_id)
                return current if current is not None and current.state != "triggered" else None
            if result.settled is None and person is not None and inc is not None:
                current = store.get_incident(conn, page.incident_id)
                if current is not None and current.state == "triggered":  # not acted on meanwhile
                    self.failover(conn, page, person, done)
            return None

        settled = await self._until_stored(tx)
        self.claims.held.discard(page.key)
        if not result.ok:
            self.plumbing.wake()
        if settled is not None:
            await self.edits.delivered_late(settled, page.key)

    async def _until_stored(self, fn: Callable[[Connection], T]) -> T:
        """`db.transaction(fn)`, tried again while the store is unavailable (a database restart):
        what became of a page must reach the store, or it would stay `sending` (never sent
        again, though it went out) or claimed by this process (which skips it)."""
        delay = 0.5
        while True:
            try:
                return await self.plumbing.db.transaction(fn)
            except StoreUnavailable as exc:
                log.warning("a page's outcome waits for the store: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _message(
        self, page: PageRow, inc: Incident, person: Person, via: str, config: Config, now: datetime
    ) -> PageMessage:
        link = self.ack_link(person, (inc.id,))
        lang = person_language(person, config.rules.shop)
        text = pagetext.page_text(inc, config.rules.shop, now, link, lang)
        return PageMessage(
            key=page.key,
            person=person,
            channel=via,
            incident_ids=(inc.id,),
            title=text.title,
            body=text.body,
            sms=text.sms,
            ack_url=link,
            sms_tail=text.sms_tail,
            shop=config.rules.shop.name,
            line=text.line,
            lang=lang,
        )

    # -- fail-over -----------------------------------------------------------------------------

    def failover(self, conn: Connection, page: PageRow, person: Person, now: datetime) -> None:
        """No channel of the step reached the person: page them by any other channel they
        have details for (SPEC §5), once per step."""
        step_pages = [
            p
            for p in page_store.pages_of(conn, page.incident_id)
            if p.person == page.person and p.step == page.step and p.round == page.round
        ]
        failed = Page(page.person, page.channel, page.step, page.round, page.key)
        plan = plan_failover(person, failed, step_pages)
        if plan is None:
            return
        store.add_pages(conn, page.incident_id, plan.pages, now)
        self.plumbing.append(conn, page.incident_id, Entry(now, plan.note))

    async def page_undelivered(
        self, ref: str, reason: str, now: datetime, *, channel: str = "sms", noted: bool = False
    ) -> int:
        """A provider reported after the fact that the message `ref` never reached the phone
        (Twilio's status callback; a call not answered, busy or taken by a voicemail): its
        pages are recorded as failed and each person is paged by their other channels, unless
        the incident was acted on since. `noted`: the timeline says why ("voice call to Ana
        García was not answered"). Returns how many pages fail over. Only pages still `sent`
        change, so a second report of the same call (its AMD answer, then its status) acts once."""
        config = self.plumbing.config()

        def tx(conn: Connection) -> int:
            n = 0
            for page in page_store.fail_delivered(conn, ref, f"{channel} {reason}"):
                inc = store.get_incident(conn, page.incident_id)
                person = config.people.get(page.person) if config is not None else None
                if noted:
                    what = "voice call" if channel == "voice" else f"{channel} page"
                    name = person.name if person is not None else page.person
                    note = f"{what} to {name} {reason}: not reached"
                    self.plumbing.append(conn, page.incident_id, Entry(now, note))
                if inc is None or inc.state != "triggered" or person is None:
                    continue
                self.failover(conn, page, person, now)
                n += 1
            return n

        n = await self.plumbing.db.transaction(tx)
        if n:
            self.plumbing.wake()
        return n


def _notes(page: PageRow, via: str, result: Delivery, to_log: str | None) -> list[str]:
    """What the timeline says about a finished send."""
    if result.settled is not None:
        return [f"{page.channel} page to {page.person} not sent: the incident was {result.settled}"]
    if result.ok:
        return [to_log] if to_log is not None else []
    return [f"{via} page to {page.person} failed: {result.error}"]
