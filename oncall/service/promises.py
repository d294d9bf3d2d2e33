"""Keeping what reassurance messages promise (SPEC §2.1): the promises' timers, and what keeps
or breaks them.

    fire_due(now)        promises whose `wake_at` has come: remind whoever acknowledged (else
                         whoever is on call), escalate to `shop.fallback`, or break it at its
                         deadline (the timeline says so, the `_late` message goes once)
    contacted(...)       "Customer contacted" from any channel, the API or the terminal
    resolved(conn, …)    inside the transaction that resolved an incident: its promises are
                         kept, and each customer gets the `_resolved` message once
    ticket_updated(…)    inside the transaction routing a `ticket_updated` event: a ticket
                         answered (pending, on-hold, solved, closed) keeps its customer's promise

Every decision is `core.promises.decide`; it is written with the timeline line in one
transaction that holds the incident's row and then its promises' rows (PostgreSQL), the order
an ack or a resolve takes them; a second instance waits, then finds nothing due. Reminders,
broken promises and follow-up messages so happen once across restarts and instances.
Messages go out after the commit (`Batch.later`): at most once, like the first message (a
crash between commit and send loses the send, never doubles it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from oncall import i18n
from oncall.channels.base import PageMessage
from oncall.channels.delivery import Dispatcher
from oncall.core import promisetext
from oncall.core.customer_text import CustomerContact, response_time_text
from oncall.core.failover import other_channels
from oncall.core.incident import SYSTEM, Entry, Incident
from oncall.core.models import Config, Event, Person, person_language
from oncall.core.pagetext import sms_fit
from oncall.core.promises import (
    Broken,
    Cause,
    Contacted,
    ContactedLate,
    Due,
    Escalate,
    Kept,
    Promise,
    Remind,
    Resolved,
    TicketUpdated,
    decide,
    escalation_to,
    left,
    reminder_to,
)
from oncall.core.settled import settled_words
from oncall.metrics import METRICS
from oncall.service.actions import ActResult, acted_on
from oncall.service.edits import EDITED, Edits
from oncall.service.effects import Batch
from oncall.service.notices import Reassurer
from oncall.service.plumbing import Plumbing
from oncall.store import incidents as incident_store
from oncall.store import promises as store
from oncall.store.connection import Connection

log = logging.getLogger("oncall.promises")

AckLink = Callable[[Person, tuple[int, ...]], str]


class Promises:
    def __init__(
        self,
        plumbing: Plumbing,
        dispatcher: Dispatcher,
        reassurer: Reassurer | None,
        edits: Edits,
        ack_link: AckLink,
    ) -> None:
        self.plumbing = plumbing
        self.dispatcher = dispatcher
        self.reassurer = reassurer
        self.edits = edits
        self.ack_link = ack_link
        self.fire_batch = 500  # promises per transaction

    # -- timers -----------------------------------------------------------------------------

    async def fire_due(self, now: datetime, limit: int | None = None) -> int:
        """Runs every promise timer due at `now`, for at most `limit` incidents per call; returns
        how many incidents it handled."""
        config = self.plumbing.config()
        if config is None:
            return 0
        world = self.plumbing.world(config)
        limit = limit or self.fire_batch
        batch = Batch()

        def tx(conn: Connection) -> int:
            incidents = store.due_incidents(conn, now, limit)
            if not incidents:
                conn.no_flush_needed()  # nothing was due: nothing to put on disk first
            for iid in incidents:
                # The incident first, then its promises: the order an ack or a resolve takes them.
                inc = incident_store.get_incident(conn, iid, lock=True)
                group = store.due_of(conn, iid, now)
                reminders: list[Promise] = []
                escalations: list[Promise] = []
                for p in group:
                    d = decide(p, Due(), config.rules.promise, now)
                    store.save(conn, d.promise, d.wake_at, now)
                    for action in d.actions:
                        if isinstance(action, Remind):
                            reminders.append(d.promise)
                        elif isinstance(action, Escalate):
                            escalations.append(d.promise)
                        elif isinstance(action, Broken):
                            self._broken(conn, d.promise, config, now, batch)
                if reminders:
                    pid = reminder_to(inc, world, now) if inc is not None else escalation_to(world, now)
                    self._page(conn, iid, reminders, pid, "reminder", config, now, batch)
                if escalations:
                    pid = escalation_to(world, now)
                    self._page(conn, iid, escalations, pid, "escalation", config, now, batch)
            return len(incidents)

        n = await self.plumbing.db.transaction(tx)
        self._after(batch)
        if n == limit:
            self.plumbing.wake()
        return n

    # -- what keeps a promise -----------------------------------------------------------------

    async def contacted(self, incident_id: int | None, actor: Person, via: str, now: datetime) -> ActResult:
        """The customers of the incident (`None`: the newest one paged to `actor`) were
        contacted: their open promises are kept (or, past the deadline, broken and marked
        contacted late). The delivered pages then say so and lose their button."""
        config = self.plumbing.config()
        lang = person_language(actor, config.rules.shop if config is not None else None)
        if config is None:
            return ActResult(False, incident_id, None, i18n.text(lang, "act.no_config"))
        batch = Batch()
        cause = Contacted(actor.name, via)

        def tx(conn: Connection) -> ActResult:
            inc = acted_on(conn, incident_id, actor, lang)
            if isinstance(inc, ActResult):
                return inc
            iid = inc.id
            changed = self._settle(conn, store.of_incident(conn, iid, lock=True), cause, config, now, batch)
            if not changed:
                return ActResult(False, iid, inc.state, promisetext.nobody_waiting(iid, lang))
            kept = [p.name for p in changed if p.state == "kept"]
            late = [p.name for p in changed if p.state == "broken"]
            if inc.state == "acknowledged":
                # Its pages lose the button; a page still paging (not acknowledged) keeps its own.
                tz = config.rules.shop.timezone
                at = f"{now.astimezone(tz):%H:%M}"
                said = settled_words(inc, tz)

                def edit(reader: str | None) -> str:  # each page in its person's language
                    return promisetext.contacted_edit(said.render(reader), actor.name, at, reader)

                batch.later.append(lambda: self.edits.update(iid, edit(None), channels=EDITED, words=edit))
            answer = promisetext.contacted_answer(iid, kept + late, len(kept), len(late), lang)
            return ActResult(True, iid, inc.state, answer)

        result = await self.plumbing.db.transaction(tx)
        self._after(batch)
        return result

    def resolved(self, conn: Connection, inc: Incident, now: datetime, batch: Batch) -> None:
        """Inside the transaction that resolved `inc`: its open promises are kept, and every
        customer it promised something gets `[message.NAME_resolved]` once, if there is one."""
        config = self.plumbing.config()
        if config is None:
            return
        promises = store.of_incident(conn, inc.id, lock=True)
        if not promises:
            return
        self._settle(conn, promises, Resolved(inc.resolved_by or SYSTEM), config, now, batch)
        for p in promises:
            self._follow_up(conn, p, "resolved", config, now, batch)

    def ticket_updated(self, conn: Connection, event: Event, at: datetime, batch: Batch) -> None:
        """Inside the transaction routing a `ticket_updated` event: the promises made to its
        ticket's customer are kept when the ticket was answered (pending, on-hold, solved, closed)."""
        config = self.plumbing.config()
        if config is None or event.kind != "ticket_updated" or not event.ticket.id:
            return
        ticket = f"{event.source}:{event.ticket.id}"
        cause = TicketUpdated(ticket, event.ticket.status or "")
        for iid in store.open_for_ticket(conn, ticket):
            incident_store.get_incident(conn, iid, lock=True)  # the incident first, as everywhere
            mine = [p for p in store.of_incident(conn, iid, lock=True) if p.ticket == ticket]
            self._settle(conn, mine, cause, config, at, batch)

    # -- inside a transaction -----------------------------------------------------------------

    def _settle(
        self,
        conn: Connection,
        promises: Sequence[Promise],
        cause: Cause,
        config: Config,
        now: datetime,
        batch: Batch,
    ) -> list[Promise]:
        """Applies `cause` to each promise; returns those it changed, as they are now."""
        changed: list[Promise] = []
        for p in promises:
            d = decide(p, cause, config.rules.promise, now)
            if not d.changed:
                continue
            how = _how(cause)
            store.save(conn, d.promise, d.wake_at, now, settled_by=how)
            changed.append(d.promise)
            for action in d.actions:
                if isinstance(action, Kept):
                    METRICS.promise("kept")
                    text = promisetext.kept(p.name, how, now - p.made_at)
                    self.plumbing.append(conn, p.incident_id, Entry(now, text, _actor(cause)))
                elif isinstance(action, Broken):
                    self._broken(conn, d.promise, config, now, batch)
                    if action.late_contact is not None:
                        self._contacted_late(conn, d.promise, action.late_contact, config, now)
                elif isinstance(action, ContactedLate):
                    self._contacted_late(conn, d.promise, action.cause, config, now)
        return changed

    def _broken(self, conn: Connection, p: Promise, config: Config, now: datetime, batch: Batch) -> None:
        METRICS.promise("broken")
        tz = config.rules.shop.timezone
        within = response_time_text(p.deadline - p.made_at, "en")
        text = promisetext.broken(p.name, f"{p.deadline.astimezone(tz):%H:%M}", within)
        self.plumbing.append(conn, p.incident_id, Entry(now, text))
        self._follow_up(conn, p, "late", config, now, batch)

    def _contacted_late(
        self, conn: Connection, p: Promise, cause: Contacted, config: Config, now: datetime
    ) -> None:
        by = f"{p.deadline.astimezone(config.rules.shop.timezone):%H:%M}"
        text = promisetext.contacted_late(p.name, cause.actor, cause.via, by)
        self.plumbing.append(conn, p.incident_id, Entry(now, text, cause.actor))

    def _follow_up(
        self, conn: Connection, p: Promise, kind: store.FollowUp, config: Config, now: datetime, batch: Batch
    ) -> None:
        """Claims `[message.NAME_late]` / `[message.NAME_resolved]` for `p`'s customer (once,
        whoever asks) and queues the send for after the commit."""
        message = f"{p.message}_{kind}"
        if self.reassurer is None or not config.rules.messages.get(message):
            return
        if not store.claim_follow_up(conn, p.incident_id, p.customer, kind):
            return
        contact = store.contacts(conn, p.incident_id, [p.customer]).get(p.customer)
        if contact is None:
            return
        batch.later.append(lambda: self._send_follow_up(p, message, contact, kind, config, now))

    def _page(
        self,
        conn: Connection,
        incident_id: int,
        promises: Sequence[Promise],
        pid: str | None,
        what: str,
        config: Config,
        now: datetime,
        batch: Batch,
    ) -> None:
        """A short page about the promises of one incident still open: one message however
        many customers wait, by the person's first channel."""
        tz = config.rules.shop.timezone
        first = min(promises, key=lambda p: p.deadline)
        by = f"{first.deadline.astimezone(tz):%H:%M}"
        names = [p.name for p in promises]
        person = config.people.get(pid or "")
        if person is None:
            text = promisetext.nobody_to_remind(names, what)
            self.plumbing.append(conn, incident_id, Entry(now, text))
            return
        channels = self.plumbing.channels
        usable = other_channels(person, usable=lambda c: c in channels and channels[c].configured())
        channel = usable[0] if usable else "console"
        wording = promisetext.reminder if what == "reminder" else promisetext.escalation
        text = wording(names, by, left(first, now), incident_id, person_language(person, config.rules.shop))
        log_text = (promisetext.reminded if what == "reminder" else promisetext.escalated)(
            person.name, channel, names, by
        )
        self.plumbing.append(conn, incident_id, Entry(now, log_text))
        key = f"promise:{incident_id}:{what}:{now.isoformat()}:{person.id}"
        batch.later.append(lambda: self._send_page(key, person, channel, incident_id, text))

    # -- after the commit -------------------------------------------------------------------

    def _after(self, batch: Batch) -> None:
        for job in batch.later:
            self.plumbing.spawn(job())

    async def _send_page(self, key: str, person: Person, channel: str, incident_id: int, text: str) -> None:
        link = self.ack_link(person, (incident_id,))
        config = self.plumbing.config()
        lang = person_language(person, config.rules.shop if config is not None else None)
        hint = promisetext.how_to_mark(incident_id, channel, lang)
        body = f"{text}\n{hint}\n{link}"
        tail = f"{hint} {link}"
        message = PageMessage(
            key=key,
            person=person,
            channel=channel,
            incident_ids=(),  # no Ack / Resolve buttons: the incident may be acknowledged already
            title=text,
            body=body,
            sms=sms_fit(text, tail),
            ack_url=link,
            sms_tail=tail,
            lang=lang,
        )
        result = await self.dispatcher.send(message)
        if not result.ok:
            log.error("promise page to %s by %s failed: %s", person.name, channel, result.error)
            await self.plumbing.record_one(
                incident_id, f"Page to {person.name} by {channel} failed: {result.error}"
            )

    async def _send_follow_up(
        self,
        p: Promise,
        message: str,
        contact: CustomerContact,
        kind: store.FollowUp,
        config: Config,
        now: datetime,
    ) -> None:
        assert self.reassurer is not None

        async def record(text: str) -> None:
            await self.plumbing.record_one(p.incident_id, text)

        outcome = await self.reassurer.follow_up(message, contact, config, now, record, kind)
        await self.plumbing.db.transaction(
            lambda conn: store.follow_up_outcome(conn, p.incident_id, p.customer, kind, outcome)
        )


def _how(cause: Cause) -> str:
    if isinstance(cause, Contacted):
        return promisetext.contacted_how(cause.actor, cause.via)
    if isinstance(cause, Resolved):
        return promisetext.resolved_how(cause.actor)
    if isinstance(cause, TicketUpdated):
        return promisetext.ticket_how(cause.ticket, cause.status)
    return "due"


def _actor(cause: Cause) -> str:
    if isinstance(cause, Contacted | Resolved):
        return cause.actor
    if isinstance(cause, TicketUpdated):
        return cause.ticket.partition(":")[0]
    return SYSTEM


def waiting(conn: Connection, incident_id: int) -> bool:
    """Whether a customer of the incident still waits for contact (an open promise)."""
    return any(p.is_open for p in store.of_incident(conn, incident_id))
