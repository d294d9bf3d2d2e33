"""What goes into the escalation machine (`step(incident, input, now, world)`) and what comes
out: the new incident and the effects the shell carries out, as data — pages to record and
send, posts, customer reassurance, edits of delivered pages, the next wake-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from oncall.core.models import Event
from oncall.core.state import Incident
from oncall.core.words import Words


@dataclass(frozen=True, slots=True)
class Joined:
    """An event routed to this incident by its rule."""

    event: Event


@dataclass(frozen=True, slots=True)
class Tick:
    """`wake_at` has come: the hold ends, a step's `ack_within` ran out, or a snooze ended."""


@dataclass(frozen=True, slots=True)
class Cancelling:
    """An event of a kind in the rule's `cancel_on` (e.g. `payment_succeeded`)."""

    event: Event


@dataclass(frozen=True, slots=True)
class TicketChanged:
    """A `ticket_updated` event for a ticket among this incident's events."""

    event: Event


@dataclass(frozen=True, slots=True)
class Acted:
    """A person (or the owner from the terminal/API) acknowledged, resolved or snoozed."""

    actor: str  # display name, e.g. "Ana García"
    verb: Literal["ack", "resolve", "snooze"]
    via: str  # "telegram", "sms", "web", "api", "cli", …
    snooze_for: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Released:
    """Business hours opened: the deferred incident goes into the digest posted at `where`."""

    where: str


Input = Joined | Tick | Cancelling | TicketChanged | Acted | Released

# ---------------------------------------------------------------------------------------------
# Actions


@dataclass(frozen=True, slots=True)
class Page:
    person: str  # id in rotas/people.toml
    channel: str
    step: int  # 1-based
    round: int  # 1-based
    key: str  # idempotency key "INCIDENT[.CYCLE]:ROUND:STEP:PERSON:CHANNEL" (CYCLE: after a snooze)


@dataclass(frozen=True, slots=True)
class Post:
    target: str | None  # shop.team_channel, e.g. "slack:#soporte"; None: the log
    text: str


@dataclass(frozen=True, slots=True)
class Reassure:
    message: str  # name of a [message.*] table
    # The events whose customers to reassure; None: every live event of the incident. An event
    # joining after paging started names only itself, so a flood stays linear.
    events: tuple[Event, ...] | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """Edit every page already delivered for this incident (SMS: one short confirmation)."""

    text: str  # in English
    words: Words | None = None  # the same, for each reader's language


@dataclass(frozen=True, slots=True)
class WakeAt:
    when: datetime | None


Action = Page | Post | Reassure | Update | WakeAt


@dataclass(frozen=True, slots=True)
class Outcome:
    incident: Incident
    actions: tuple[Action, ...] = ()
    ok: bool = True  # False: the input changed nothing (e.g. ack of a resolved incident)
    text: str = ""  # one line for whoever caused it (English)
    words: Words | None = None  # `text` as words, for the reader's language
