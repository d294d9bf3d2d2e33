"""Promises (SPEC §2.1): what a reassurance message told a customer — "our on-call team will
contact you within 2 hours" — and whether the shop kept it.

A promise is made when the message was sent, with its deadline `made_at + response_time`. It
is **kept** when, before the deadline, the incident is resolved, someone marks the customer
contacted, or the customer's helpdesk ticket reaches pending, on-hold, solved or closed.
Otherwise it is **broken** at the deadline. While it is open, `[promise] remind` reminds
whoever acknowledged (else whoever is on call) and `[promise] escalate` pages `shop.fallback`.

One pure function decides everything, `decide(promise, cause, rules, now)`; the shell
(`service.promises`) stores what it returns, keeps `wake_at` as the promise's timer and
carries out the actions (pages, timeline lines, the `_late` message).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from oncall.core.models import PromiseRules
from oncall.core.state import Incident
from oncall.core.world import World, resolve_targets

PromiseState = Literal["open", "kept", "broken"]

# Helpdesk ticket statuses that mean somebody answered the customer (SPEC §2.1), as
# `core.incident` normalises them: lower case, "-" between words.
ANSWERED = frozenset({"pending", "on-hold", "hold", "waiting-on-customer", "solved", "closed", "resolved"})


@dataclass(frozen=True, slots=True)
class Promise:
    incident_id: int
    customer: str  # the customer's key, as reassurance has it ("email:…", "phone:…", "ticket:…")
    name: str  # how staff read the customer: "Laura Pérez", else the address
    message: str  # the [message.*] the customer got; `_late` / `_resolved` are named after it
    made_at: datetime
    deadline: datetime
    state: PromiseState = "open"
    reminded: bool = False
    escalated: bool = False
    ticket: str | None = None  # "zendesk:123": an update of this ticket may keep it
    contacted_at: datetime | None = None
    settled_at: datetime | None = None  # when it was kept or broken

    @property
    def is_open(self) -> bool:
        return self.state == "open"


# ---------------------------------------------------------------------------------------------
# What happens to a promise


@dataclass(frozen=True, slots=True)
class Due:
    """Its timer came: remind, escalate or break, whatever is due at `now`."""


@dataclass(frozen=True, slots=True)
class Contacted:
    """Someone marked the customer contacted (button, SMS `1c`, API, terminal, status page)."""

    actor: str
    via: str


@dataclass(frozen=True, slots=True)
class Resolved:
    """The incident was resolved (not cancelled, not released into the digest)."""

    actor: str


@dataclass(frozen=True, slots=True)
class TicketUpdated:
    """The customer's helpdesk ticket changed status (normalised as `ANSWERED` is)."""

    ticket: str  # "zendesk:123"
    status: str


Cause = Due | Contacted | Resolved | TicketUpdated


@dataclass(frozen=True, slots=True)
class Remind:
    """Remind whoever acknowledged (else whoever is on call)."""


@dataclass(frozen=True, slots=True)
class Escalate:
    """Page `shop.fallback`: nobody kept the promise after the reminder."""


@dataclass(frozen=True, slots=True)
class Kept:
    cause: Contacted | Resolved | TicketUpdated


@dataclass(frozen=True, slots=True)
class Broken:
    """The deadline passed; `late_contact` when the contact came, but after it."""

    late_contact: Contacted | None = None


@dataclass(frozen=True, slots=True)
class ContactedLate:
    """The customer was contacted after the promise had been broken: the timeline says so."""

    cause: Contacted


Action = Remind | Escalate | Kept | Broken | ContactedLate


@dataclass(frozen=True, slots=True)
class Decision:
    promise: Promise  # as it is now (state, reminded, …)
    actions: tuple[Action, ...] = ()
    wake_at: datetime | None = None  # when to look at it again; None: never

    @property
    def changed(self) -> bool:
        return bool(self.actions)


def normalise_status(status: str | None) -> str:
    return (status or "").strip().lower().replace("_", "-").replace(" ", "-")


def answered(status: str | None) -> bool:
    """Whether a ticket in this status has been answered (it keeps a promise)."""
    return normalise_status(status) in ANSWERED


def next_wake(p: Promise, rules: PromiseRules) -> datetime | None:
    """When the open promise next needs a look: its reminder, its escalation, its deadline."""
    if not p.is_open:
        return None
    times = [p.deadline]
    if rules.remind is not None and not p.reminded:
        times.append(p.made_at + rules.remind)
    if rules.escalate is not None and not p.escalated:
        times.append(p.made_at + rules.escalate)
    return min(t for t in times if t <= p.deadline)


def decide(p: Promise, cause: Cause, rules: PromiseRules, now: datetime) -> Decision:
    """What `cause` at `now` does to promise `p`."""
    if isinstance(cause, Due):
        return _due(p, rules, now)
    if isinstance(cause, TicketUpdated) and (cause.ticket != p.ticket or not answered(cause.status)):
        return Decision(p, (), next_wake(p, rules))
    if not p.is_open:
        if isinstance(cause, Contacted) and p.state == "broken" and p.contacted_at is None:
            return Decision(replace(p, contacted_at=now), (ContactedLate(cause),))
        return Decision(p)
    if now > p.deadline:
        # The deadline passed a moment ago and its timer has not run yet: broken all the same.
        late = cause if isinstance(cause, Contacted) else None
        broken = replace(p, state="broken", settled_at=p.deadline, contacted_at=now if late else None)
        return Decision(broken, (Broken(late),))
    kept = replace(p, state="kept", settled_at=now)
    if isinstance(cause, Contacted):
        kept = replace(kept, contacted_at=now)
    return Decision(kept, (Kept(cause),))


def _due(p: Promise, rules: PromiseRules, now: datetime) -> Decision:
    if not p.is_open:
        return Decision(p)
    if now >= p.deadline:
        return Decision(replace(p, state="broken", settled_at=p.deadline), (Broken(),))
    actions: list[Action] = []
    if rules.remind is not None and not p.reminded and p.made_at + rules.remind <= now:
        # After a long outage both may be due at once: the reminder still goes first.
        actions.append(Remind())
        p = replace(p, reminded=True)
    if rules.escalate is not None and not p.escalated and p.made_at + rules.escalate <= now:
        actions.append(Escalate())
        p = replace(p, escalated=True)
    return Decision(p, tuple(actions), next_wake(p, rules))


# ---------------------------------------------------------------------------------------------
# Who hears about an open promise


def reminder_to(inc: Incident, world: World, now: datetime) -> str | None:
    """The person to remind: whoever acknowledged the incident, if that is a person of
    `rotas/people.toml`; else whoever its policy's first step pages at `now` (the person on
    call); else `shop.fallback`. None when nobody resolves."""
    people = world.config.people
    if inc.acknowledged_by:
        for pid, person in people.items():
            if person.name == inc.acknowledged_by:
                return pid
    policy = world.config.rules.policies.get(inc.policy or "")
    if policy is not None and policy.steps:
        found, _ = resolve_targets(policy.steps[0].notify, now, world)
        if found:
            return found[0]
    return escalation_to(world, now)


def escalation_to(world: World, now: datetime) -> str | None:
    """`shop.fallback` at `now`: the owner, or whoever its rota has on call."""
    found, _ = resolve_targets((world.config.rules.shop.fallback,), now, world)
    return found[0] if found else None


def left(p: Promise, now: datetime) -> timedelta:
    return max(timedelta(0), p.deadline - now)
