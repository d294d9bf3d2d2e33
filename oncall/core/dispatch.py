"""What a routing decision does with a stored event (SPEC §2.1), as data: the rules it matches
(`core.rules.route`) become steps — drop it, post it to the team channel, list it under a
maintenance window, or escalate it (open an incident for its group, or join the open one) —
and a later event may close the loop on incidents it is about (a ticket update, a `cancel_on`
event).

Used by the escalation service (`service.intake`) and by `oncall simulate`, so a dry run shows
exactly what the service would do. Pure: the shell looks incidents up and stores the outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from oncall.core.digest import digest_due
from oncall.core.incident import (
    Cancelling,
    Incident,
    Joined,
    Outcome,
    Post,
    World,
    open_incident,
    step,
)
from oncall.core.models import Event, Maintenance, Rule
from oncall.core.pagetext import post_text
from oncall.core.rules import route


@dataclass(frozen=True, slots=True)
class Drop:
    """Stored; nobody is told."""

    rule: Rule


@dataclass(frozen=True, slots=True)
class PostToTeam:
    """In hours: one post to the team channel, nobody paged."""

    rule: Rule
    target: str | None  # shop.team_channel; None: the log
    text: str

    @property
    def post(self) -> Post:
        return Post(self.target, self.text)


@dataclass(frozen=True, slots=True)
class InMaintenance:
    """A paging rule matched during a `[[maintenance]]` window: listed, nobody paged."""

    rule: Rule
    window: Maintenance

    @property
    def note(self) -> str:
        """How the routing record describes the window."""
        w = self.window
        return f"maintenance {w.start.isoformat()} to {w.end.isoformat()}" + (f": {w.note}" if w.note else "")


@dataclass(frozen=True, slots=True)
class Escalate:
    """Into the incident of its group: a new one, or the one open for the group."""

    rule: Rule
    group_key: str
    action: Literal["page", "defer"]


RouteStep = Drop | PostToTeam | InMaintenance | Escalate


def plan(event: Event, world: World, at: datetime) -> list[RouteStep]:
    """The steps for `event` arriving at `at`, one per matching rule, in file order."""
    shop = world.config.rules.shop
    steps: list[RouteStep] = []
    for d in route(event, world.config.rules, at, world.is_open):
        if d.action == "drop":
            steps.append(Drop(d.rule))
        elif d.action == "post":
            steps.append(PostToTeam(d.rule, shop.team_channel, post_text(event, shop, d.rule.name)))
        elif d.maintenance is not None:
            steps.append(InMaintenance(d.rule, d.maintenance))
        else:
            steps.append(Escalate(d.rule, d.group_key, "defer" if d.action == "defer" else "page"))
    return steps


@dataclass(frozen=True, slots=True)
class Escalated:
    outcome: Outcome
    digest_at: datetime | None = None  # a new deferred incident: when its digest is due


def escalate(
    s: Escalate, open_one: Incident | None, new_id: int | None, event: Event, at: datetime, world: World
) -> Escalated:
    """`event` joins `open_one` (the group's open incident), or opens incident `new_id`."""
    if open_one is not None:
        return Escalated(step(open_one, Joined(event), at, world))
    assert new_id is not None
    out = open_incident(new_id, s.rule, s.group_key, event, at, world)
    return Escalated(out, digest_due(world, at) if s.action == "defer" else None)


def ticket_subject(event: Event) -> str | None:
    """The subject key of the ticket a `ticket_updated` event reports on: its open incidents
    follow the ticket (solved → resolved, pending → acknowledged)."""
    return f"ticket:{event.ticket.id}" if event.kind == "ticket_updated" and event.ticket.id else None


def cancelling(event: Event, inc: Incident) -> Cancelling | None:
    """The input for an open incident about the same subject, when `event` is of a kind its
    rule cancels on (`cancel_on`, e.g. the payment went through after all)."""
    return Cancelling(event) if event.kind in inc.cancel_on else None
