"""What became of an incident whose pages stop (acknowledged, resolved, snoozed), in the two
forms the shell needs: the word the timeline and the dispatcher use, and the line a delivered
page is edited to when the words of the act itself are not at hand (it was settled by another
process)."""

from __future__ import annotations

from datetime import tzinfo

from oncall.core.state import Incident


def settled_word(state: str, snoozed: bool) -> str:
    """ "snoozed" for an acknowledged incident whose escalation starts again later, else its
    state: "acknowledged", "resolved", …"""
    return "snoozed" if state == "acknowledged" and snoozed else state


def settled_as(inc: Incident) -> str:
    """What became of `inc`, as the timeline says it."""
    return settled_word(inc.state, inc.wake_at is not None)


def settled_text(inc: Incident, tz: tzinfo) -> str:
    """The update for an incident settled in another process (its own text is not here), as
    the core words it: "Incident 4 acknowledged by Ana García at 23:16"."""
    who = inc.resolved_by if inc.state == "resolved" else inc.acknowledged_by
    if inc.state == "acknowledged" and inc.wake_at is not None:
        return f"Incident {inc.id} snoozed by {who} until {inc.wake_at.astimezone(tz):%H:%M}"
    at = next((e.at for e in reversed(inc.timeline) if who and e.actor == who), inc.updated_at)
    return f"Incident {inc.id} {inc.state}{f' by {who}' if who else ''} at {at.astimezone(tz):%H:%M}"
