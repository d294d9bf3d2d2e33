"""Fail-over (SPEC §5): when no channel of a step reaches a person, they are paged by every
other channel they have details for, once per step — and, with none left, the page goes to
the log. One rule, used wherever a page can fail: a step whose channels the person lacks
(`channels_for`, used by `core.incident`), a send that failed (`service.paging`), an SMS reported
undelivered later (`service.paging`, `channels.delivery`).

Pure: the caller says what was tried and which channels can send at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from oncall.core.effects import Page
from oncall.core.models import CHANNELS, Person

# Pages of a step in these states may still reach the person (or may have): no fail-over yet.
STILL_TRYING = frozenset({"pending", "queued", "sending", "sent", "unknown"})
_FAILOVER = ":failover:"
CALLS = frozenset({"voice"})


def other_channels(
    person: Person, tried: Collection[str] = (), usable: Callable[[str], bool] | None = None
) -> list[str]:
    """The channels `person` has details for, in fail-over order, but `tried` and any not
    `usable` (e.g. without credentials). A phone call only when no written channel is left:
    the owner's steps say when a page becomes a call (it wakes, and costs per try), so a
    Telegram outage does not ring everybody's phone at the first step."""
    found = [c for c in CHANNELS if c not in tried and person.has(c) and (usable is None or usable(c))]
    written = [c for c in found if c not in CALLS]
    return written or found


def channels_for(person: Person, via: Sequence[str]) -> tuple[list[str], str | None]:
    """The channels a step reaches `person` by, and a timeline note when it is not all of
    `via`: missing details for one channel leave the step's others; missing details for all
    of them fall back to any channel the person has, and finally to the log."""
    chans = [c for c in via if person.has(c)]
    missing = [c for c in via if not person.has(c)]
    if not missing:
        return chans, None
    if chans:
        return chans, f"{person.name} has no {', '.join(missing)} details: paged by {', '.join(chans)}"
    other = other_channels(person)
    if other:
        note = f"{person.name} has no {', '.join(missing)} details: paged by {', '.join(other)} instead"
        return other, note
    return ["console"], f"{person.name} has no contact details: the page is written to the log"


def failover_key(key: str, channel: str) -> str:
    """The key of the page standing in for page `key` on `channel`: one per original page and
    channel, however many times it fails over ("1:1:1:ana:telegram:failover:sms")."""
    return f"{key.split(_FAILOVER)[0]}{_FAILOVER}{channel}"


class Tried(Protocol):
    """A page of the step, as the store has it (`store.pages.PageRow`)."""

    @property
    def channel(self) -> str: ...

    @property
    def sent_via(self) -> str | None: ...

    @property
    def state(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Failover:
    pages: tuple[Page, ...]  # to record and send; none: nobody left to try
    note: str  # for the timeline


def plan_failover(person: Person, failed: Page, step_pages: Sequence[Tried]) -> Failover | None:
    """After page `failed` (to `person`) failed: what to page instead, given every page of the
    same step, round and person. None while one of them may still reach the person."""
    if any(p.state in STILL_TRYING for p in step_pages):
        return None
    tried = {p.channel for p in step_pages} | {p.sent_via for p in step_pages if p.sent_via}
    others = other_channels(person, tried)
    if not others:
        others = ["console"] if "console" not in tried else []
    if not others:
        return Failover((), f"{person.name} could not be reached by any channel")
    pages = tuple(
        Page(failed.person, c, failed.step, failed.round, failover_key(failed.key, c)) for c in others
    )
    note = f"{person.name} not reached by {', '.join(sorted(tried))}: paging by {', '.join(others)} instead"
    return Failover(pages, note)
