"""What staff read about promises, in English: the "Customer contacted" button, the reminder
and escalation pages, timeline lines, the answers to the `contacted` action, and the
closed-hours report. One small module of wording functions, so that the texts can move into
the per-language catalogue as they are. Pure: times come in already local ("01:10").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from oncall import i18n
from oncall.core.pagetext import waiting

CONTACTED_BUTTON = "Customer contacted"


def _names(names: Sequence[str]) -> str:
    """ "Laura Pérez", "Laura Pérez and Juan Gil", "Laura Pérez and 2 other customers"."""
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} and {len(names) - 1} other customers"


def _was(names: Sequence[str]) -> str:
    return "was" if len(names) == 1 else "were"


# -- pages -----------------------------------------------------------------------------------


def reminder(names: Sequence[str], by: str, left: timedelta, incident_id: int) -> str:
    """ "Laura Pérez was promised contact by 01:10: 25 min left (incident 3)"."""
    who = f"{_names(names)} {_was(names)}"
    return f"{who} promised contact by {by}: {waiting(left)} left (incident {incident_id})"


def escalation(names: Sequence[str], by: str, left: timedelta, incident_id: int) -> str:
    return (
        f"{_names(names)} {_was(names)} promised contact by {by}: {waiting(left)} left and nobody has"
        f" marked them contacted (incident {incident_id})"
    )


def how_to_mark(incident_id: int, channel: str) -> str:
    """The end of a reminder: how to say the customer was contacted from where it arrived."""
    if channel == "sms":
        return f"Reply {incident_id}c once contacted."
    if channel in ("telegram", "slack"):
        return f"Once contacted: /contacted {incident_id}, or the link."
    return f"Once contacted: oncall contacted {incident_id}"


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


def contacted_answer(incident_id: int, names: Sequence[str], kept_count: int, late: int) -> str:
    if kept_count and not late:
        return f"Incident {incident_id}: {_names(names)} contacted, promise kept"
    if late and not kept_count:
        return f"Incident {incident_id}: {_names(names)} contacted, late (the promise was broken)"
    return f"Incident {incident_id}: {_names(names)} contacted ({kept_count} kept, {late} late)"


def nobody_waiting(incident_id: int) -> str:
    return f"Incident {incident_id} has no customer waiting for contact"


def contacted_edit(settled: str, who: str, at: str) -> str:
    """A delivered page after the contact: what it said, and who contacted the customer."""
    return f"{settled}; customer contacted by {who} at {at}"


# -- the closed-hours report -----------------------------------------------------------------


def minutes(d: timedelta | None) -> str:
    return "—" if d is None else waiting(d)


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
) -> list[str]:
    """The report as the digest, `oncall report` and the status page word it."""

    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    held = f" ({cancelled} cancelled during the hold)" if cancelled else ""
    ack = f"time to acknowledge: median {minutes(median)}, worst {minutes(worst)}"
    ack += f" ({acknowledged} acknowledged" + (f", {unacknowledged} never)" if unacknowledged else ")")
    promises = f"{n(reassured, 'customer')} reassured: {n(kept_count, 'promise')} kept, {broken_count} broken"
    if still_open:
        promises += f", {still_open} still open"
    return [
        f"Closed-hours report, {span}:",
        f"- {n(incidents, 'incident')}{held}, {n(pages, 'page')}",
        f"- {ack}" if acknowledged or unacknowledged else "- nothing to acknowledge",
        f"- {promises}",
    ]


# -- the status page's chart -----------------------------------------------------------------

CHART_TITLE = "The last 8 weeks"
CHART_INCIDENTS = "Incidents per week"
CHART_ACK = "Median time to acknowledge (minutes)"
CHART_PROMISES = "Promises kept and broken"
CHART_KEPT = "kept"
CHART_BROKEN = "broken"
