"""What a page says (SPEC §5): the shop, what happened ("3 payment failures since 22:41,
189.90 EUR"), the customers affected, how long it has been waiting, and how to act on it.

Three shapes of one text: a one-line `title`, a `body` for rich channels (Telegram, Slack, the
log) and an `sms` kept to two GSM-7 segments that always ends with the reply codes and the ack
link, however long the rest is; and a `line` naming the incident in a bundle (what, order or
ticket, amount). The wording of a bundle is here too (`bundle_head`, `bundle_body`,
`bundle_sms`); which incidents share a message is `channels.delivery`'s. Pure: `now` and the
link are arguments. Every text takes the reader's `lang` (`core.models.person_language`):
its words come from the catalogue (`oncall.i18n`), its times and amounts from Babel; English
is the default, so a caller that names no reader gets what the log and the API show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from oncall import i18n
from oncall.core.gsm7 import EXTENDED, MULTIPART_SEGMENT, SEGMENT, septets, to_gsm7
from oncall.core.incident import Incident
from oncall.core.models import Event, Shop

Lang = str | None  # the reader's language ("es", "en", …); None: English


def kind_word(kind: str, n: int, lang: Lang = None) -> str:
    """How a page counts an event kind: "payment failure(s)" / "fallo(s) de pago" (the
    catalogue's `kind.*`); a kind the catalogue does not know reads as its name."""
    if not i18n.has(i18n.FALLBACK, f"kind.{kind}.other"):
        return kind.replace("_", " ")
    return i18n.plural(lang, f"kind.{kind}", n)


SMS_SEGMENTS = 2


@dataclass(frozen=True, slots=True)
class PageText:
    title: str
    body: str
    sms: str
    sms_tail: str = ""  # how `sms` ends: the reply codes and the link, which are never cut
    line: str = ""  # the incident on one line, as a bundle names it


def page_text(incident: Incident, shop: Shop, now: datetime, ack_url: str, lang: Lang = None) -> PageText:
    """The page for one incident at `now`, in `lang`."""
    tz = shop.timezone
    t = i18n.text
    what = what_happened(incident.live_events or incident.events, tz, now, lang)
    customers = customer_names(incident.live_events or incident.events)
    waited = waiting(now - incident.first_at, lang)
    title = f"{shop.name}: {_what_since(incident.live_events or incident.events, tz, now, lang)}"
    lines = [t(lang, "page.head", shop=shop.name, id=incident.id), what]
    if customers:
        lines.append(t(lang, "page.customers", names=", ".join(customers)))
    summary = _first_summary(incident.live_events or incident.events)
    if summary:
        lines.append(summary)
    lines.append(t(lang, "page.waiting", waited=waited, rule=incident.rule))
    lines.append(t(lang, "page.link", url=ack_url))
    head = t(lang, "page.sms_head", shop=shop.name, id=incident.id, what=what)
    if customers:
        head += " " + t(lang, "page.sms_customers", names=_short_list(customers, 3))
    head += " " + t(lang, "page.sms_waiting", waited=waited)
    tail = f"{sms_codes(incident.id, lang)} {ack_url}"
    return PageText(
        title=title,
        body="\n".join(lines),
        sms=sms_fit(head, tail),
        sms_tail=to_gsm7(tail),
        line=bundle_line(line_facts(incident, tz, now, lang)),
    )


def sms_codes(incident_id: int, lang: Lang = None) -> str:
    """How an SMS page says to act on it by reply."""
    return i18n.text(lang, "page.sms_codes", id=incident_id)


def what_happened(events: Sequence[Event], tz: ZoneInfo, now: datetime, lang: Lang = None) -> str:
    """ "3 payment failures since 22:41, 189.90 EUR"; a single ticket names itself."""
    if not events:
        return i18n.text(lang, "page.no_events")
    amount = amounts(events, lang)
    return _what_since(events, tz, now, lang) + (f", {amount}" if amount else "")


def _what_since(events: Sequence[Event], tz: ZoneInfo, now: datetime, lang: Lang) -> str:
    """ "3 payment failures since 22:41" (no amount; a day may hold a comma in some languages:
    "desde el sábado 28 nov, 23:10")."""
    if not events:
        return i18n.text(lang, "page.no_events")
    first = min(events, key=_time)
    kinds = {e.kind for e in events}
    n = len(events)
    if kinds == {"ticket_created"} and n == 1 and first.ticket.id:
        what = _ticket_name(first, lang)
        if first.ticket.subject:
            what = i18n.text(lang, "page.subject", what=what, subject=first.ticket.subject)
    else:
        word = kind_word(first.kind, n, lang) if len(kinds) == 1 else i18n.plural(lang, "kind.mixed", n)
        what = f"{n} {word}"
    return _since(what, _time(first), tz, now, lang)


def _ticket_name(e: Event, lang: Lang) -> str:
    t = e.ticket
    if t.priority:
        return i18n.text(lang, "page.ticket_priority", id=t.id, priority=t.priority)
    return i18n.text(lang, "page.ticket", id=t.id)


def _since(what: str, t: datetime, tz: ZoneInfo, now: datetime, lang: Lang) -> str:
    """ "… since 22:41" / "… desde las 22:41", "… desde el sábado 28 nov, 23:10"."""
    at = i18n.when(t, lang, tz, now, within=timedelta(hours=12))
    on_day = at != i18n.clock(t, lang, tz)
    return i18n.text(lang, "page.since_day" if on_day else "page.since_time", what=what, at=at)


def amounts(events: Sequence[Event], lang: Lang = None) -> str:
    """The total amount per currency: "189.90 EUR", "20.00 EUR + 15.00 USD", "189,90 €"."""
    totals: dict[str, float] = {}
    for e in events:
        if e.order.amount is not None:
            cur = (e.order.currency or "").upper()
            totals[cur] = totals.get(cur, 0.0) + e.order.amount
    return " + ".join(i18n.money(v, c, lang) for c, v in totals.items())


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


def waiting(d: timedelta, lang: Lang = None) -> str:
    """ "4 min", "1 h 05 min", "2 days 3 h" (`i18n.waiting`)."""
    return i18n.waiting(d, lang)


def post_text(event: Event, shop: Shop, rule: str) -> str:
    """An in-hours post to the team channel: one event, nobody paged; in the shop's language
    (the team channel is the shop's, as the digest)."""
    lang = shop.language
    t = i18n.text
    bits = [t(lang, "post.head", shop=shop.name, kind=kind_word(event.kind, 1, lang), source=event.source)]
    if event.summary:
        bits.append(event.summary)
    order = event.order.number or event.order.id
    extra = [
        f"{i18n.plural(lang, 'page.order', 1)} {order}" if order else "",
        amounts([event], lang),
        ", ".join(customer_names([event])),
        t(lang, "page.ticket", id=event.ticket.id) if event.ticket.id else "",
    ]
    text = " — ".join(bits)
    details = ", ".join(x for x in extra if x)
    return text + (f" ({details})" if details else "") + " " + t(lang, "post.rule", rule=rule)


def digest_text(incidents: Sequence[Incident], shop: Shop, now: datetime) -> str:
    """The morning digest: every event of the deferred incidents, one line each, in the
    shop's language (the team channel is the shop's)."""
    tz, lang = shop.timezone, shop.language
    items = [(inc.id, e) for inc in incidents for e in (inc.live_events or inc.events)]
    lines = [i18n.plural(lang, "digest.head", len(items), shop=shop.name)]
    for iid, e in items:
        line = f"- #{iid} {what_happened([e], tz, now, lang)}"
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


def line_facts(incident: Incident, tz: ZoneInfo, now: datetime, lang: Lang = None) -> LineFacts:
    events = incident.live_events or incident.events
    first = min(events, key=_time) if events else None
    kinds = {e.kind for e in events}
    if first is not None and kinds == {"ticket_created"} and len(events) == 1 and first.ticket.id:
        what = _ticket_name(first, lang)
        return LineFacts(incident.id, what, amount=amounts(events, lang), detail=first.ticket.subject or "")
    if len(events) == 1 and first is not None:
        what = kind_word(first.kind, 1, lang)
    else:
        what = _what_since(events, tz, now, lang)
    orders = list(dict.fromkeys(o for e in events if (o := e.order.number or e.order.id)))
    tickets = list(dict.fromkeys(n for e in events if (n := e.ticket.id)))
    if orders:
        reference = i18n.plural(lang, "page.order", len(orders)) + " " + _first_few(orders, 3)
    elif tickets:
        reference = i18n.plural(lang, "page.ticket_ref", len(tickets)) + " " + _first_few(tickets, 3)
    else:
        reference = ""
    # The summary only where nothing else says what it is about (a checkout error): beside an
    # order it repeats the payload's words and pushes the line past a phone's width.
    detail = "" if reference else _first_summary(events)
    return LineFacts(incident.id, what, reference, amounts(events, lang), detail)


def bundle_line(facts: LineFacts) -> str:
    """ "#17 payment failure, order 1042, 189.90 EUR": what, order or ticket, amount, first."""
    text = ", ".join(x for x in (f"#{facts.incident_id} {facts.what}", facts.reference, facts.amount) if x)
    if facts.detail:
        text += f": {facts.detail}"
    text = " ".join(text.split())  # one line, whatever the payload's summary held
    return text if len(text) <= LINE_MAX else text[: LINE_MAX - 1] + "…"


def bundle_head(count: int, shop: str, more: int = 0, lang: Lang = None) -> str:
    """The first line of a bundle; `more`: incidents that follow in the next message(s)."""
    t = i18n.text
    if shop:
        head = t(lang, "bundle.head", shop=shop, count=count)
    else:
        head = t(lang, "bundle.head_no_shop", count=count)
    return t(lang, "bundle.more", head=head, more=more) if more else head


def bundle_body(head: str, lines: Sequence[str], ack_url: str, lang: Lang = None) -> str:
    """A bundle for rich channels: the head, one line per incident, the link acting on all."""
    link = i18n.text(lang, "bundle.link", count=len(lines), url=ack_url)
    return f"{head}\n\n" + "\n".join(lines) + f"\n\n{link}"


def bundle_sms(shop: str, lines: Sequence[str], ack_url: str, lang: Lang = None) -> PageText:
    """A bundle by SMS: as many of its lines as fit before the summary (the count and the link
    acting on all), which is never cut."""
    tail = sms_summary(len(lines), ack_url, lang)
    text = (f"{shop}: " if shop else "") + "; ".join(lines)
    return PageText(title=text, body=text, sms=sms_fit(text, tail), sms_tail=to_gsm7(tail))


def bundle_settled(count: int, last: str, lang: Lang = None) -> str:
    """What a bundle is edited to (or, by SMS, confirmed with) once all of its incidents are
    settled: `last` is the update of the one settled last."""
    return i18n.text(lang, "bundle.settled", count=count, last=last)


def sms_summary(count: int, ack_url: str, lang: Lang = None) -> str:
    """How an SMS bundle ends: the count and the link for all of them; a bare `ack` reply acts
    on the newest."""
    return i18n.text(lang, "bundle.sms_summary", count=count, url=ack_url)


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
