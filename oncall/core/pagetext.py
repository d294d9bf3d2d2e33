"""What a page says (SPEC §5): the shop, what happened ("3 payment failures since 22:41,
189.90 EUR"), the customers affected, how long it has been waiting, and how to act on it.

Three shapes of one text: a one-line `title`, a `body` for rich channels (Telegram, Slack, the
log) and an `sms` kept to two GSM-7 segments that always ends with the reply codes and the ack
link, however long the rest is; and a `line` naming the incident in a bundle (what, order or
ticket, amount). The wording of a bundle is here too (`bundle_head`, `bundle_body`,
`bundle_sms`); which incidents share a message is `channels.delivery`'s. Pure: `now` and the
link are arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from oncall.core.gsm7 import EXTENDED, MULTIPART_SEGMENT, SEGMENT, septets, to_gsm7
from oncall.core.incident import Incident
from oncall.core.models import Event, Shop
from oncall.core.money import format_amount

# (singular, plural) of each normalised event kind, as a page counts them.
KIND_WORDS: dict[str, tuple[str, str]] = {
    "payment_failed": ("payment failure", "payment failures"),
    "payment_succeeded": ("payment", "payments"),
    "checkout_error": ("checkout error", "checkout errors"),
    "dispute_opened": ("dispute opened", "disputes opened"),
    "order_created": ("new order", "new orders"),
    "ticket_created": ("ticket", "tickets"),
    "ticket_updated": ("ticket update", "ticket updates"),
    "unrecognised": ("unrecognised event", "unrecognised events"),
}

SMS_SEGMENTS = 2


@dataclass(frozen=True, slots=True)
class PageText:
    title: str
    body: str
    sms: str
    sms_tail: str = ""  # how `sms` ends: the reply codes and the link, which are never cut
    line: str = ""  # the incident on one line, as a bundle names it


def page_text(incident: Incident, shop: Shop, now: datetime, ack_url: str) -> PageText:
    """The page for one incident at `now`."""
    tz = shop.timezone
    what = what_happened(incident.live_events or incident.events, tz, now)
    customers = customer_names(incident.live_events or incident.events)
    waited = waiting(now - incident.first_at)
    title = f"{shop.name}: {what.split(', ')[0]}"
    lines = [f"{shop.name} — incident {incident.id}", what]
    if customers:
        lines.append("Customers: " + ", ".join(customers))
    summary = _first_summary(incident.live_events or incident.events)
    if summary:
        lines.append(summary)
    lines.append(f"Waiting {waited}. Rule: {incident.rule}.")
    lines.append(f"Ack / Resolve / Snooze 30m: {ack_url}")
    head = f"{shop.name} #{incident.id}: {what}."
    if customers:
        head += " Customers: " + _short_list(customers, 3) + "."
    head += f" Waiting {waited}."
    tail = f"{sms_codes(incident.id)} {ack_url}"
    return PageText(
        title=title,
        body="\n".join(lines),
        sms=sms_fit(head, tail),
        sms_tail=to_gsm7(tail),
        line=bundle_line(line_facts(incident, tz, now)),
    )


def sms_codes(incident_id: int) -> str:
    """How an SMS page says to act on it by reply."""
    return f"Reply {incident_id}a to ack, {incident_id}r to resolve"


def what_happened(events: Sequence[Event], tz: ZoneInfo, now: datetime) -> str:
    """ "3 payment failures since 22:41, 189.90 EUR"; a single ticket names itself."""
    if not events:
        return "no events"
    first = min(events, key=_time)
    kinds = {e.kind for e in events}
    n = len(events)
    if kinds == {"ticket_created"} and n == 1 and first.ticket.id:
        t = first.ticket
        bits = f"ticket {t.id}" + (f" ({t.priority})" if t.priority else "")
        text = bits + (f": {t.subject}" if t.subject else "") + f" since {_clock(_time(first), tz, now)}"
    else:
        if len(kinds) == 1:
            one, many = KIND_WORDS.get(
                first.kind, (first.kind.replace("_", " "), first.kind.replace("_", " "))
            )
        else:
            one, many = "event", "events"
        text = f"{n} {one if n == 1 else many} since {_clock(_time(first), tz, now)}"
    amount = amounts(events)
    return text + (f", {amount}" if amount else "")


def amounts(events: Sequence[Event]) -> str:
    """The total amount per currency: "189.90 EUR", "20.00 EUR + 15.00 USD"."""
    totals: dict[str, float] = {}
    for e in events:
        if e.order.amount is not None:
            cur = (e.order.currency or "").upper()
            totals[cur] = totals.get(cur, 0.0) + e.order.amount
    return " + ".join(format_amount(v, c) for c, v in totals.items())


def customer_names(events: Sequence[Event]) -> list[str]:
    """Each distinct customer once (by e-mail, else phone, else name), as a page names them."""
    seen: set[str] = set()
    out: list[str] = []
    for e in events:
        c = e.customer
        key = (c.email or "").lower() or "".join(ch for ch in c.phone or "" if ch.isdigit()) or (c.name or "")
        if not key or key in seen:
            continue
        seen.add(key)
        contact = c.email or c.phone
        out.append(f"{c.name} ({contact})" if c.name and contact else (c.name or contact or key))
    return out


def waiting(d: timedelta) -> str:
    """ "4 min", "1 h 05 min", "2 days 3 h"."""
    minutes = max(0, int(d.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} day{'s' if days != 1 else ''} {hours} h"


def post_text(event: Event, shop: Shop, rule: str) -> str:
    """An in-hours post to the team channel: one event, nobody paged."""
    bits = [f"{shop.name}: {event.kind.replace('_', ' ')} from {event.source}"]
    if event.summary:
        bits.append(event.summary)
    extra = [
        f"order {event.order.number or event.order.id}" if event.order.number or event.order.id else "",
        amounts([event]),
        ", ".join(customer_names([event])),
        f"ticket {event.ticket.id}" if event.ticket.id else "",
    ]
    text = " — ".join(bits)
    details = ", ".join(x for x in extra if x)
    return text + (f" ({details})" if details else "") + f" [rule: {rule}]"


def digest_text(incidents: Sequence[Incident], shop: Shop, now: datetime) -> str:
    """The morning digest: every event of the deferred incidents, one line each."""
    tz = shop.timezone
    items = [(inc.id, e) for inc in incidents for e in (inc.live_events or inc.events)]
    n = len(items)
    lines = [f"{shop.name}: {n} item{'s' if n != 1 else ''} waited for business hours"]
    for iid, e in items:
        line = f"- #{iid} {what_happened([e], tz, now)}"
        customers = customer_names([e])
        if customers:
            line += " — " + ", ".join(customers)
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Bundles: several incidents for one person in one message (SPEC §5)

LINE_MAX = 120  # characters: a bundle line is a line or two on a phone, never a paragraph


@dataclass(frozen=True, slots=True)
class LineFacts:
    """What a bundle line says of one incident."""

    incident_id: int
    what: str  # "payment failure", "3 payment failures since 22:41", "ticket 88 (urgent)"
    reference: str = ""  # "order 1042", "orders 1042, 1043 +3", "" (a ticket names itself in `what`)
    amount: str = ""  # "189.90 EUR"
    detail: str = ""  # a ticket's subject or the first summary


def line_facts(incident: Incident, tz: ZoneInfo, now: datetime) -> LineFacts:
    events = incident.live_events or incident.events
    first = min(events, key=_time) if events else None
    kinds = {e.kind for e in events}
    if first is not None and kinds == {"ticket_created"} and len(events) == 1 and first.ticket.id:
        t = first.ticket
        what = f"ticket {t.id}" + (f" ({t.priority})" if t.priority else "")
        return LineFacts(incident.id, what, amount=amounts(events), detail=t.subject or "")
    if len(events) == 1 and first is not None:
        one, _ = KIND_WORDS.get(first.kind, (first.kind.replace("_", " "), ""))
        what = one
    else:
        what = what_happened(events, tz, now).split(", ")[0]
    orders = list(dict.fromkeys(o for e in events if (o := e.order.number or e.order.id)))
    tickets = list(dict.fromkeys(n for e in events if (n := e.ticket.id)))
    if orders:
        reference = ("order " if len(orders) == 1 else "orders ") + _first_few(orders, 3)
    elif tickets:
        reference = ("ticket " if len(tickets) == 1 else "tickets ") + _first_few(tickets, 3)
    else:
        reference = ""
    # The summary only where nothing else says what it is about (a checkout error): beside an
    # order it repeats the payload's words and pushes the line past a phone's width.
    detail = "" if reference else _first_summary(events)
    return LineFacts(incident.id, what, reference, amounts(events), detail)


def bundle_line(facts: LineFacts) -> str:
    """ "#17 payment failure, order 1042, 189.90 EUR": what, order or ticket, amount, first."""
    text = ", ".join(x for x in (f"#{facts.incident_id} {facts.what}", facts.reference, facts.amount) if x)
    if facts.detail:
        text += f": {facts.detail}"
    text = " ".join(text.split())  # one line, whatever the payload's summary held
    return text if len(text) <= LINE_MAX else text[: LINE_MAX - 1] + "…"


def bundle_head(count: int, shop: str, more: int = 0) -> str:
    """The first line of a bundle; `more`: incidents that follow in the next message(s)."""
    head = f"{shop}: {count} incidents" if shop else f"{count} incidents"
    return head + (f" ({more} more follow)" if more else "")


def bundle_body(head: str, lines: Sequence[str], ack_url: str) -> str:
    """A bundle for rich channels: the head, one line per incident, the link acting on all."""
    return f"{head}\n\n" + "\n".join(lines) + f"\n\nAck / Resolve / Snooze 30m, all {len(lines)}: {ack_url}"


def bundle_sms(shop: str, lines: Sequence[str], ack_url: str) -> PageText:
    """A bundle by SMS: as many of its lines as fit before the summary (the count and the link
    acting on all), which is never cut."""
    tail = sms_summary(len(lines), ack_url)
    text = (f"{shop}: " if shop else "") + "; ".join(lines)
    return PageText(title=text, body=text, sms=sms_fit(text, tail), sms_tail=to_gsm7(tail))


def bundle_settled(count: int, last: str) -> str:
    """What a bundle is edited to (or, by SMS, confirmed with) once all of its incidents are
    settled: `last` is the update of the one settled last."""
    return f"All {count} incidents of this message are settled. Last: {last}"


def sms_summary(count: int, ack_url: str) -> str:
    """How an SMS bundle ends: the count and the link for all of them; a bare `ack` reply acts
    on the newest."""
    return f"{count} incidents, ack/resolve all: {ack_url}"


# ---------------------------------------------------------------------------------------------
# SMS


def sms_fit(head: str, tail: str, max_segments: int = SMS_SEGMENTS) -> str:
    """`head` shortened as needed so that `head + " " + tail` fits in `max_segments`; the tail
    (reply codes and the ack link) is never cut."""
    head, tail = to_gsm7(head), to_gsm7(tail)
    budget = (SEGMENT if max_segments == 1 else MULTIPART_SEGMENT * max_segments) - septets(tail) - 1
    if septets(head) > budget:
        cut: list[str] = []
        used = 0
        for ch in head:
            cost = 2 if ch in EXTENDED else 1
            if used + cost > budget - 2:
                break
            cut.append(ch)
            used += cost
        head = "".join(cut).rstrip() + ".."
    return f"{head} {tail}" if head else tail


# ---------------------------------------------------------------------------------------------
# helpers


def _time(e: Event) -> datetime:
    return e.occurred_at or e.received_at


def _clock(t: datetime, tz: ZoneInfo, now: datetime) -> str:
    local, today = t.astimezone(tz), now.astimezone(tz)
    if local.date() == today.date() or now - t < timedelta(hours=12):
        return local.strftime("%H:%M")
    return local.strftime("%a %d %b %H:%M")


def _short_list(items: Sequence[str], limit: int) -> str:
    names = [i.split(" (")[0] for i in items]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" +{len(names) - limit}"


def _first_few(items: Sequence[str], limit: int) -> str:
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" +{more}" if more > 0 else "")


def _first_summary(events: Sequence[Event]) -> str:
    for e in events:
        if e.summary:
            return e.summary
    return ""
