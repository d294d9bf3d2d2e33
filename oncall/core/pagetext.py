"""What a page says (SPEC §5): the shop, what happened ("3 payment failures since 22:41,
189.90 EUR"), the customers affected, how long it has been waiting, and how to act on it.

Three shapes of one text: a one-line `title`, a `body` for rich channels (Telegram, Slack, the
log) and an `sms` kept to two GSM-7 segments that always ends with the reply codes and the ack
link, however long the rest is. Pure: `now` and the link are arguments.
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
    return PageText(title=title, body="\n".join(lines), sms=sms_fit(head, tail), sms_tail=to_gsm7(tail))


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


def _first_summary(events: Sequence[Event]) -> str:
    for e in events:
        if e.summary:
            return e.summary
    return ""
