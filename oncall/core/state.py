"""An incident as the escalation machine (`oncall.core.incident`) holds it: its state, its
events, who was paged and its timeline. Immutable: every step returns a new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from oncall.core.models import Event

State = Literal["held", "triggered", "acknowledged", "resolved", "cancelled", "deferred"]
STATES: tuple[State, ...] = get_args(State)
OPEN_STATES: frozenset[str] = frozenset({"held", "triggered", "acknowledged", "deferred"})
SYSTEM = "oncall"


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    what: str
    actor: str = SYSTEM


@dataclass(frozen=True, slots=True)
class Paged:
    person: str
    channel: str
    at: datetime
    step: int  # 1-based, as the owner counts
    round: int  # 1-based


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    rule: str
    group_key: str
    state: State
    created_at: datetime
    updated_at: datetime
    # What the rule said when the incident opened: later edits of the file apply to new ones.
    policy: str | None = None
    threshold: int = 1
    cancel_on: tuple[str, ...] = ()
    auto_resolve: bool = False
    reassure: str | None = None
    events: tuple[Event, ...] = ()
    cancelled: frozenset[int] = frozenset()  # indexes into `events` cancelled by `cancel_on`
    wake_at: datetime | None = None  # when `Tick` is next due; None = nothing scheduled
    round: int = 0  # 0-based position in the policy, while escalating
    step_index: int = -1
    cycle: int = 0  # times the policy started again after a snooze: keeps page keys unique
    paged: tuple[Paged, ...] = ()
    timeline: tuple[Entry, ...] = ()
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    # When a person (or their helpdesk) first stopped the escalation: an ack, a snooze, or a
    # resolve without one. What "time to acknowledge" is measured to (`core.report`).
    acknowledged_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def live_events(self) -> tuple[Event, ...]:
        return tuple(e for i, e in enumerate(self.events) if i not in self.cancelled)

    @property
    def kind(self) -> str:
        return self.events[0].kind if self.events else ""

    @property
    def first_at(self) -> datetime:
        return min((event_time(e) for e in self.events), default=self.created_at)


def event_time(event: Event) -> datetime:
    return event.occurred_at or event.received_at
