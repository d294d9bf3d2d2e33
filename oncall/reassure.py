"""Customer reassurance: the message a customer gets when paging starts on a closed desk.

The escalation service calls `Reassurer.reassure(...)` as a background task when paging starts
for a rule with `reassure` set; nothing here can delay or block the page. For each customer of
the incident (each distinct e-mail or phone, SPEC §5):

1. the channel follows where they came from: a public reply on their Zendesk/Freshdesk ticket
   when that helpdesk is configured, else e-mail, else SMS/WhatsApp;
2. the store claims the send — one per incident and customer (primary key), and not the same
   message to the same customer within 12 hours (a conditional upsert) — so restarts, repeated
   calls and a second instance never send twice;
3. the send is retried with jittered exponential back-off (honouring `Retry-After`), and every
   outcome, sent, failed or skipped, goes on the incident's timeline through `record`;
4. a message sent makes a promise (`core.promises`: contact within `shop.response_time`),
   recorded in the same transaction. `follow_up` later sends its `_late` or `_resolved` text
   by the same channel rules, once (the caller claims it in the store).

A claim is taken before sending, so a crash in the middle of a send means that customer is
not written to again for that incident: at most once, because a duplicate reassurance reads
worse than a late one. A send that finally fails releases the 12-hour window, so the next
incident may try again. A failed helpdesk reply does not fall back to e-mail: the reply may
have been posted before the failure was seen (a time-out), and the customer would get both.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt

from oncall.channels.base import Delivery
from oncall.channels.customer_sms import CustomerSms
from oncall.channels.email import EmailSender
from oncall.channels.helpdesk import HelpdeskReplier
from oncall.channels.limits import RateLimiter
from oncall.clock import Clock, system_clock
from oncall.core import calendar, promisetext
from oncall.core.customer_text import CustomerContact, RenderedMessage, customer_message
from oncall.core.models import Config
from oncall.core.promises import Promise, next_wake
from oncall.metrics import METRICS
from oncall.settings import Settings
from oncall.store import Connection, Database, promises, reassurances

__all__ = ["WINDOW", "CustomerContact", "Reassurer"]

log = logging.getLogger("oncall.reassure")

WINDOW = timedelta(hours=12)  # the same message to the same customer at most once per window

Record = Callable[[str], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


def merge(customers: Sequence[CustomerContact]) -> list[tuple[str, CustomerContact]]:
    """One contact per customer key, in order of first appearance; gaps in the first sighting
    (no name, no language) are filled from later events of the same customer."""
    merged: dict[str, CustomerContact] = {}
    for c in customers:
        key = c.key()
        if key is None:
            continue
        first = merged.get(key)
        if first is None:
            merged[key] = c
            continue
        merged[key] = replace(
            first,
            name=first.name or c.name,
            email=first.email or c.email,
            phone=first.phone or c.phone,
            language=first.language or c.language,
            source=first.source if first.ticket_id else c.source if c.ticket_id else first.source,
            ticket_id=first.ticket_id or c.ticket_id,
            order_number=first.order_number or c.order_number,
        )
    return list(merged.items())


class Reassurer:
    """Sends reassurance messages; see the module doc. Channels default to ones built from
    `settings`; tests pass `sleep` to run the back-off without waiting."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        email: EmailSender | None = None,
        helpdesk: HelpdeskReplier | None = None,
        sms: CustomerSms | None = None,
        attempts: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        concurrency: int = 8,
        clock: Clock = system_clock,
    ) -> None:
        self.db = db
        self.settings = settings
        self.email = email or EmailSender(settings)
        self.helpdesk = helpdesk or HelpdeskReplier(settings, clock=clock)
        self.sms = sms or CustomerSms(settings)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        # A flood (a payment provider down for 300 customers) must not open 300 SMTP
        # connections at once, which mail servers refuse; one limit per channel, so a hanging
        # helpdesk never takes the e-mails' turns.
        self.concurrency = max(1, concurrency)
        self._limits: dict[str, asyncio.Semaphore] = {}

    def share_rate_limits(self, limiter: RateLimiter) -> None:
        """Customer SMS/WhatsApp leave from the paging number: the service hands over its
        dispatcher's limiter, so they take only the slots pages leave free (SPEC §5)."""
        self.sms.limiter = limiter

    # -- the entry point -------------------------------------------------------------------------

    async def reassure(
        self,
        incident_id: int,
        message: str,
        customers: list[CustomerContact],
        config: Config,
        now: datetime,
        record: Record,
    ) -> None:
        """Reassures every customer of the incident once; never raises (it runs unattended)."""
        try:
            rules = config.rules
            tz = rules.shop.timezone
            if calendar.is_open(rules.business_hours, tz, now):
                # The team is at its desk and answers customers itself (SPEC §5).
                return
            if not rules.messages.get(message):
                await _safe(record, f"Customer reassurance not sent: no [message.{message}] text")
                return
            opens = calendar.next_open(rules.business_hours, tz, now)
            next_open = opens.astimezone(tz) if opens is not None else None
            unreachable = [c for c in customers if c.key() is None]
            jobs = [
                self._one(incident_id, message, key, contact, config, next_open, now, record)
                for key, contact in merge(customers)
            ]
            # Each customer on their own: one slow helpdesk never holds up another customer's e-mail.
            await asyncio.gather(*jobs)
            for contact in unreachable:
                who = contact.name or "a customer"
                await _safe(record, f"Customer reassurance not sent to {who}: no e-mail, phone or ticket")
        except Exception:
            log.exception("reassurance for incident %s failed", incident_id)

    async def _one(
        self,
        incident_id: int,
        message: str,
        key: str,
        contact: CustomerContact,
        config: Config,
        next_open: datetime | None,
        now: datetime,
        record: Record,
    ) -> None:
        rendered = customer_message(config.rules, message, contact, next_open, now)
        if rendered is None:  # checked by the caller; kept for type narrowing
            return
        channel, address = self._route(contact)
        if channel is None:
            METRICS.reassurance(None, "unreachable")
            inserted = await self.db.transaction(
                lambda conn: reassurances.note(conn, incident_id, key, message, "unreachable", address, now)
            )
            if inserted:
                await _safe(record, f"Customer reassurance not sent to {_who(contact)}: {address}")
            return
        claim = await self.db.transaction(
            lambda conn: reassurances.claim(conn, incident_id, key, message, now, WINDOW)
        )
        if claim.duplicate:
            return
        if not claim.won:
            at = claim.previous_at.astimezone(config.rules.shop.timezone) if claim.previous_at else None
            when = f" at {at:%Y-%m-%d %H:%M}" if at else ""
            detail = f'"{message}" already went to them{when} (incident {claim.previous_incident})'
            await self.db.transaction(
                lambda conn: reassurances.outcome(
                    conn, incident_id, key, "skipped", channel, None, detail, 0, now
                )
            )
            METRICS.reassurance(channel, "skipped")
            await _safe(record, f"Customer reassurance not sent to {address}: {detail}")
            return
        result, tries = await self._send_with_retries(channel, contact, rendered, now)
        state = "sent" if result.ok else "failed"
        METRICS.reassurance(channel, state)
        outcome = result.ref if result.ok else result.error
        release = None if result.ok else message
        language = rendered.language
        promise = made(incident_id, key, message, contact, config, now, address)

        def tx(conn: Connection) -> None:
            reassurances.outcome(
                conn, incident_id, key, state, channel, language, outcome, tries, now, release
            )
            if result.ok:
                # In the transaction that says it was sent: no message without its promise.
                promises.record(conn, promise, contact, next_wake(promise, config.rules.promise))

        await self.db.transaction(tx)
        after = f" after {tries} tries" if tries > 1 else ""
        if result.ok:
            text = f"Customer reassured: {_how(channel, address)} ({language}){after}"
        else:
            by = _channel_words(channel)
            text = f"Customer reassurance to {address} by {by} failed{after}: {result.error}"
        await _safe(record, text)

    # -- after the first message: `_late` and `_resolved` ---------------------------------------

    async def follow_up(
        self,
        message: str,
        contact: CustomerContact,
        config: Config,
        now: datetime,
        record: Record,
        kind: str,
    ) -> str:
        """Sends `[message.NAME]` (a `_late` or `_resolved` text) to one customer whose send the
        caller has claimed in the store, by the channel the first message took; its outcome
        goes on the timeline and is returned ("sent", "failed", "unreachable"). Never raises."""
        try:
            rules = config.rules
            tz = rules.shop.timezone
            opens = calendar.next_open(rules.business_hours, tz, now)
            rendered = customer_message(
                rules, message, contact, opens.astimezone(tz) if opens is not None else None, now
            )
            if rendered is None:
                return "unreachable"
            channel, address = self._route(contact)
            if channel is None:
                METRICS.reassurance(None, "unreachable")
                await _safe(record, promisetext.follow_up(kind, f"not sent to {_who(contact)}: {address}"))
                return "unreachable"
            result, tries = await self._send_with_retries(channel, contact, rendered, now)
            METRICS.reassurance(channel, "sent" if result.ok else "failed")
            after = f" after {tries} tries" if tries > 1 else ""
            if result.ok:
                how = f"{_how(channel, address)} ({rendered.language}){after}"
            else:
                how = f"{_channel_words(channel)} to {address} failed{after}: {result.error}"
            await _safe(record, promisetext.follow_up(kind, how))
            return "sent" if result.ok else "failed"
        except Exception:
            log.exception("follow-up %s failed", message)
            return "failed"

    # -- channel choice and sending ------------------------------------------------------------

    def _route(self, c: CustomerContact) -> tuple[str | None, str]:
        """(channel, the address it reaches), or (None, why nobody can be reached)."""
        if c.source in ("zendesk", "freshdesk") and c.ticket_id and self.helpdesk.configured(c.source):
            return c.source, f"ticket {c.ticket_id}"
        if c.email and self.email.configured():
            return "email", c.email.strip()
        if c.phone and self.sms.configured():
            return self.sms.name, c.phone.strip()
        have = [w for w, v in (("e-mail", c.email), ("phone", c.phone), ("ticket", c.ticket_id)) if v]
        return None, f"no channel configured for their {' or '.join(have)}"

    async def _send(self, channel: str, c: CustomerContact, m: RenderedMessage, now: datetime) -> Delivery:
        limit = self._limits.setdefault(channel, asyncio.Semaphore(self.concurrency))
        async with limit:
            return await self._send_now(channel, c, m, now)

    async def _send_now(
        self, channel: str, c: CustomerContact, m: RenderedMessage, now: datetime
    ) -> Delivery:
        try:
            if channel in ("zendesk", "freshdesk"):
                return await self.helpdesk.reply(channel, c.ticket_id or "", m.text)
            if channel == "email":
                return await self.email.send(c.email or "", c.name, m.subject, m.text, m.language, now)
            return await self.sms.send(c.phone or "", m.text)
        except Exception as exc:
            # A bug or an error the channel did not foresee: recorded, never retried blindly.
            log.exception("reassurance by %s raised", channel)
            return Delivery(ok=False, error=f"{channel}: {type(exc).__name__}: {exc}"[:300])

    async def _send_with_retries(
        self, channel: str, c: CustomerContact, m: RenderedMessage, now: datetime
    ) -> tuple[Delivery, int]:
        def wait(state: RetryCallState) -> float:
            n = state.attempt_number
            delay = min(self.max_backoff, self.backoff * 2 ** (n - 1)) * random.uniform(0.5, 1.0)
            last = state.outcome.result() if state.outcome is not None else None
            if isinstance(last, Delivery) and last.retry_after is not None:
                delay = max(delay, min(self.max_backoff, last.retry_after))
            return float(delay)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            retry=retry_if_result(lambda d: isinstance(d, Delivery) and not d.ok and d.retryable),
            # After the last try, the last failure is the answer (recorded), not an exception.
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            sleep=self.sleep,
        )
        tries = 0

        async def attempt() -> Delivery:
            nonlocal tries
            tries += 1
            return await self._send(channel, c, m, now)

        result: Delivery = await retrying(attempt)
        return result, tries


# ---------------------------------------------------------------------------------------------
# Timeline words


def made(
    incident_id: int,
    key: str,
    message: str,
    contact: CustomerContact,
    config: Config,
    now: datetime,
    address: str,
) -> Promise:
    """The promise a message sent at `now` makes: contact within `shop.response_time`."""
    name = " ".join((contact.name or "").split())
    ticket = f"{contact.source}:{contact.ticket_id}" if contact.source and contact.ticket_id else None
    return Promise(
        incident_id=incident_id,
        customer=key,
        name=name if name and "@" not in name else address,
        message=message,
        made_at=now,
        deadline=now + config.rules.shop.response_time,
        ticket=ticket,
    )


def _channel_words(channel: str) -> str:
    return {"email": "e-mail", "sms": "SMS", "whatsapp": "WhatsApp", "zendesk": "Zendesk",
            "freshdesk": "Freshdesk"}.get(channel, channel)  # fmt: skip


def _how(channel: str, address: str) -> str:
    if channel in ("zendesk", "freshdesk"):
        return f"public reply on {_channel_words(channel)} {address}"
    return f"{_channel_words(channel)} to {address}"


def _who(c: CustomerContact) -> str:
    return c.email or c.phone or c.name or "a customer"


async def _safe(record: Record, text: str) -> None:
    try:
        await record(text)
    except Exception:
        log.exception("could not write to the incident timeline: %s", text)
