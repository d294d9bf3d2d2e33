"""What staff read about promises: the reminder and escalation pages, the answers to the
`contacted` action and the edit after it (in the reader's `lang`, from the catalogue), the
closed-hours report (the shop's language where the shop reads it: the digest, the status
page), and timeline lines (English: the product's record, as every other timeline line).
Pure: times come in already local ("01:10").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from oncall import i18n
from oncall.core.pagetext import waiting


def _names(names: Sequence[str], lang: str | None = None) -> str:
    """ "Laura Pérez", "Laura Pérez and Juan Gil", "Laura Pérez and 2 other customers"."""
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return i18n.text(lang, "promise.and_two", a=names[0], b=names[1])
    return i18n.text(lang, "promise.and_others", a=names[0], n=len(names) - 1)


def _was(names: Sequence[str]) -> str:
    return "was" if len(names) == 1 else "were"


# -- pages -----------------------------------------------------------------------------------


def reminder(
    names: Sequence[str], by: str, left: timedelta, incident_id: int, lang: str | None = None
) -> str:
    """ "Laura Pérez was promised contact by 01:10: 25 min left (incident 3)"."""
    return _promised("promise.reminder", names, by, left, incident_id, lang)


def escalation(
    names: Sequence[str], by: str, left: timedelta, incident_id: int, lang: str | None = None
) -> str:
    return _promised("promise.escalation", names, by, left, incident_id, lang)


def _promised(key: str, names: Sequence[str], by: str, left: timedelta, iid: int, lang: str | None) -> str:
    was = i18n.plural(lang, "promise.was", len(names))
    return i18n.text(lang, key, who=_names(names, lang), was=was, by=by, left=waiting(left, lang), id=iid)


def how_to_mark(incident_id: int, channel: str, lang: str | None = None) -> str:
    """The end of a reminder: how to say the customer was contacted from where it arrived."""
    if channel == "sms":
        return i18n.text(lang, "promise.mark_sms", id=incident_id)
    if channel in ("telegram", "slack"):
        return i18n.text(lang, "promise.mark_chat", id=incident_id)
    return i18n.text(lang, "promise.mark_cli", id=incident_id)


def sms_contacted_code(incident_id: int, lang: str | None = None) -> str:
    """Added to an SMS ack confirmation while a customer waits for contact."""
    return i18n.text(lang, "sms.contacted_code", id=incident_id)


# -- the incident's timeline -----------------------------------------------------------------


def kept(name: str, how: str, after: timedelta) -> str:
    return f"Promise to {name} kept: {how}, {waiting(after)} after the message"


def broken(name: str, by: str, promised_within: str) -> str:
    return f"Promise to {name} broken: nobody contacted them by {by} (promised within {promised_within})"


def contacted_late(name: str, who: str, via: str, by: str) -> str:
    return f"{name} contacted by {who} via {via}, after the promise (by {by}) was broken"


def contacted_how(who: str, via: str) -> str:
    return f"customer contacted by {who} via {via}"


def resolved_how(who: str) -> str:
    return f"incident resolved by {who}"


def ticket_how(ticket: str, status: str) -> str:
    source, _, number = ticket.partition(":")
    return f"ticket {number} {status} in {source}"


def reminded(person: str, channel: str, names: Sequence[str], by: str) -> str:
    return f"Reminder to {person} by {channel}: {_names(names)} waiting for contact by {by}"


def escalated(person: str, channel: str, names: Sequence[str], by: str) -> str:
    return f"Promise escalated to {person} by {channel}: {_names(names)} waiting for contact by {by}"


def nobody_to_remind(names: Sequence[str], what: str) -> str:
    return f"No {what} for {_names(names)}: nobody to page"


def follow_up(kind: str, outcome: str) -> str:
    """A `_late` or `_resolved` message's line: "Customer told the promise was broken: …"."""
    about = "the promise was broken" if kind == "late" else "the incident is resolved"
    return f"Customer told {about}: {outcome}"


# -- answers to "Customer contacted" ---------------------------------------------------------


def contacted_answer(
    incident_id: int, names: Sequence[str], kept_count: int, late: int, lang: str | None = None
) -> str:
    key = (
        "answer_kept"
        if kept_count and not late
        else "answer_late"
        if late and not kept_count
        else "answer_mixed"
    )
    who = _names(names, lang)
    return i18n.text(lang, f"promise.{key}", id=incident_id, who=who, kept=kept_count, late=late)


def nobody_waiting(incident_id: int, lang: str | None = None) -> str:
    return i18n.text(lang, "promise.nobody_waiting", id=incident_id)


def contacted_edit(settled: str, who: str, at: str, lang: str | None = None) -> str:
    """A delivered page after the contact: what it said, and who contacted the customer."""
    return i18n.text(lang, "promise.edit", settled=settled, who=who, at=at)


# -- the closed-hours report -----------------------------------------------------------------


def minutes(d: timedelta | None, lang: str | None = None) -> str:
    return "—" if d is None else waiting(d, lang)


def report_lines(
    span: str,
    *,
    incidents: int,
    cancelled: int,
    pages: int,
    acknowledged: int,
    unacknowledged: int,
    median: timedelta | None,
    worst: timedelta | None,
    reassured: int,
    kept_count: int,
    broken_count: int,
    still_open: int,
    lang: str | None = None,
) -> list[str]:
    """The report as the digest, `oncall report` and the status page word it."""

    def t(key: str, **fields: object) -> str:
        return i18n.text(lang, f"report.{key}", **fields)

    def n(key: str, count: int) -> str:
        return i18n.plural(lang, f"report.{key}", count)

    held = t("held", n=cancelled) if cancelled else ""
    ack = t("ack", median=minutes(median, lang), worst=minutes(worst, lang), n=acknowledged)
    ack += t("never", n=unacknowledged) if unacknowledged else ")"
    # The counted words ("2 customers") and the bare numbers: a language words them as it needs.
    promises = t(
        "promises",
        customers=n("customers", reassured),
        kept=n("promises_n", kept_count),
        reassured=reassured,
        kept_n=kept_count,
        broken=broken_count,
    )
    if still_open:
        promises += t("still_open", n=still_open)
    return [
        t("head", span=span),
        f"- {n('incidents', incidents)}{held}, {n('pages', pages)}",
        f"- {ack}" if acknowledged or unacknowledged else f"- {t('nothing')}",
        f"- {promises}",
    ]
