"""What a page call says (SPEC §5 Voice), in the person's language: the shop, what happened,
how many, since when and the total amount, then the keys to press; and what the call answers
to a key. A bundle (several incidents for the person at once) is summarised: the count, the
shop, since when; its keys act on all of them, as an SMS bundle's link does.

Written to be heard: short sentences, no order numbers or links, amounts and times as the
language says them (`oncall.i18n.spoken_money`, `clock`, `day_and_time`). The wording is the
catalogues' `[voice]` table. Pure: `now` is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from oncall import i18n
from oncall.core.incident import Incident
from oncall.core.models import Event, Shop

Verb = Literal["ack", "resolve", "snooze"]

# The keys a page call takes (SPEC §5): 1 acknowledge, 2 resolve, 3 snooze 30m, 9 repeat.
KEYS: dict[str, Verb] = {"1": "ack", "2": "resolve", "3": "snooze"}
REPEAT = "9"


def speech(incidents: Sequence[Incident], shop: Shop, lang: str | None, now: datetime) -> str:
    """The page as it is read out, then what to press."""
    if len(incidents) == 1:
        return f"{one_incident(incidents[0], shop, lang, now)} {i18n.text(lang, 'voice.menu')}"
    return f"{bundle(incidents, shop, lang, now)} {i18n.text(lang, 'voice.menu_all')}"


def one_incident(incident: Incident, shop: Shop, lang: str | None, now: datetime) -> str:
    """ "This is oncall for Tienda Ejemplo: 3 payment failures, since 23:10. €189.90 in total." """
    events = incident.live_events or incident.events
    when = since(_first(incident), shop, lang, now)
    said = i18n.text(lang, "voice.page", shop=shop.name, what=what(events, lang), since=when)
    amount = total(events, lang)
    return f"{said} {i18n.text(lang, 'voice.total', amount=amount)}" if amount else said


def bundle(incidents: Sequence[Incident], shop: Shop, lang: str | None, now: datetime) -> str:
    """ "This is oncall for Tienda Ejemplo: 4 incidents are waiting, the first since 23:10." """
    first = min(_first(i) for i in incidents)
    return i18n.plural(
        lang, "voice.bundle", len(incidents), shop=shop.name, since=since(first, shop, lang, now)
    )


def what(events: Sequence[Event], lang: str | None) -> str:
    """ "3 payment failures", "ticket 88, urgent priority: Order never arrived"."""
    if not events:
        return i18n.plural(lang, "voice.kind.event", 0)
    kinds = {e.kind for e in events}
    first = events[0]
    if kinds == {"ticket_created"} and len(events) == 1 and first.ticket.id:
        t = first.ticket
        said = (
            i18n.text(lang, "voice.ticket_priority", id=t.id, priority=_priority(t.priority, lang))
            if t.priority
            else i18n.text(lang, "voice.ticket", id=t.id)
        )
        return i18n.text(lang, "voice.subject", what=said, subject=t.subject) if t.subject else said
    kind = first.kind if len(kinds) == 1 else "event"
    key = f"voice.kind.{kind}" if i18n.has("en", f"voice.kind.{kind}.other") else "voice.kind.event"
    return i18n.plural(lang, key, len(events))


def since(t: datetime, shop: Shop, lang: str | None, now: datetime) -> str:
    """ "since 23:10" today (or within 12 hours); "since Saturday 28 Nov, 23:10" before."""
    tz = shop.timezone
    if t.astimezone(tz).date() == now.astimezone(tz).date() or now - t < timedelta(hours=12):
        return i18n.text(lang, "voice.since_time", time=i18n.clock(t, lang, tz))
    return i18n.text(lang, "voice.since_day", day=i18n.day_and_time(t, lang, tz))


def total(events: Sequence[Event], lang: str | None) -> str:
    """The amounts per currency as the language writes them: "189,90 €", "€20.00 + $15.00"."""
    totals: dict[str, float] = {}
    for e in events:
        if e.order.amount is not None:
            cur = (e.order.currency or "").upper()
            totals[cur] = totals.get(cur, 0.0) + e.order.amount
    return " + ".join(i18n.spoken_money(v, c or None, lang) for c, v in totals.items())


def done(verb: Verb, count: int, lang: str | None) -> str:
    """What the call answers once the key acted: "Acknowledged. Thank you." / "Reconocido. Gracias."."""
    if count > 1:
        return i18n.text(lang, f"voice.done_all.{verb}", n=count)
    return i18n.text(lang, f"voice.done.{verb}")


def unchanged(lang: str | None) -> str:
    """The key changed nothing (acknowledged or resolved by someone else meanwhile)."""
    return i18n.text(lang, "voice.unchanged")


def unknown_key(lang: str | None) -> str:
    return i18n.text(lang, "voice.unknown_key")


def goodbye(lang: str | None) -> str:
    """After the page was said twice and no key was pressed."""
    return i18n.text(lang, "voice.goodbye")


def expired(lang: str | None) -> str:
    return i18n.text(lang, "voice.expired")


def test_call(shop: str, name: str, lang: str | None) -> str:
    """`oncall test-page PERSON --via voice`: a call that only says it is a test."""
    return i18n.text(lang, "voice.test", shop=shop, name=name)


def _first(incident: Incident) -> datetime:
    events = incident.live_events or incident.events
    times = [e.occurred_at or e.received_at for e in events]
    return min(times) if times else incident.first_at


def _priority(priority: str | None, lang: str | None) -> str:
    key = f"voice.priority.{(priority or '').lower()}"
    return i18n.text(lang, key) if i18n.has("en", key) else priority or ""
