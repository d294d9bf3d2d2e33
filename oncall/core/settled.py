"""What became of an incident whose pages stop (acknowledged, resolved, snoozed), in the two
forms the shell needs: the word the timeline and the dispatcher use, and the line a delivered
page is edited to when the words of the act itself are not at hand (it was settled by another
process)."""

from __future__ import annotations

from datetime import tzinfo

from oncall.core.state import Incident
from oncall.core.words import Words, words


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
    return settled_words(inc, tz).en


def settled_words(inc: Incident, tz: tzinfo) -> Words:
    """`settled_text` as words, for each reader's language."""
    who = inc.resolved_by if inc.state == "resolved" else inc.acknowledged_by
    if inc.state == "acknowledged" and inc.wake_at is not None:
        return words("update.snoozed", id=inc.id, who=who, until=f"{inc.wake_at.astimezone(tz):%H:%M}")
    at = next((e.at for e in reversed(inc.timeline) if who and e.actor == who), inc.updated_at)
    hm = f"{at.astimezone(tz):%H:%M}"
    if inc.state in ("acknowledged", "resolved") and who:
        return words(f"update.{inc.state}", id=inc.id, who=who, at=hm)
    if who:
        return words("update.state_by_at", id=inc.id, state=inc.state, who=who, at=hm)
    return words("update.state_at", id=inc.id, state=inc.state, at=hm)
