"""The typed, immutable models everything else speaks: configuration and events.

Pure data: no I/O, no clock. `oncall.config` builds the configuration models from the TOML
files; `oncall.sources` builds `Event`s from webhooks. Clock times of day are minutes since
local midnight (0..1440, so "24:00" is 1440); days of the week are 0=mon .. 6=sun, as
`datetime.weekday()` gives them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Hours = Literal["open", "closed", "any"]
Action = Literal["page", "post", "defer", "drop"]
ChannelName = Literal["telegram", "slack", "sms", "voice", "email", "console"]
# In fail-over order: a phone call last, as the loudest (and the only one that costs per try).
CHANNELS: tuple[str, ...] = ("telegram", "slack", "sms", "voice")

EVENT_KINDS: tuple[str, ...] = (
    "payment_failed",
    "payment_succeeded",
    "checkout_error",
    "dispute_opened",
    "order_created",
    "ticket_created",
    "ticket_updated",
    "unrecognised",
)
SOURCES: tuple[str, ...] = ("shopify", "stripe", "woocommerce", "zendesk", "freshdesk", "generic")


# ---------------------------------------------------------------------------------------------
# escalation_rules.toml


@dataclass(frozen=True, slots=True)
class Window:
    """A span of one local day: [start, end) in minutes since midnight, end may be 1440."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Target:
    """`rota:NAME` or `person:ID`."""

    kind: Literal["rota", "person"]
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Shop:
    name: str
    timezone: ZoneInfo
    language: str
    response_time: timedelta
    fallback: Target
    team_channel: str | None = None  # "slack:#soporte", "telegram:-100123", …


@dataclass(frozen=True, slots=True)
class BusinessHours:
    week: Mapping[int, tuple[Window, ...]]  # weekday -> open windows; missing day = closed
    holidays_country: str | None = None
    holidays_subdivision: str | None = None
    closed: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class Step:
    notify: tuple[Target, ...]
    via: tuple[str, ...]
    ack_within: timedelta


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    steps: tuple[Step, ...]
    repeat: int = 0


@dataclass(frozen=True, slots=True)
class Match:
    """Every key optional; all given keys must hold (tags: any of)."""

    source: frozenset[str] | None = None
    kind: frozenset[str] | None = None
    hours: Hours = "any"
    days: frozenset[int] | None = None
    severity: frozenset[str] | None = None
    priority: frozenset[str] | None = None
    amount_at_least: float | None = None
    tags: frozenset[str] | None = None
    text: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    match: Match
    action: Action
    policy: str | None = None
    hold: timedelta = timedelta(0)
    group_by: tuple[str, ...] = ()
    threshold: int = 1
    cancel_on: tuple[str, ...] = ()
    reassure: str | None = None
    auto_resolve: bool = False
    continue_: bool = False


@dataclass(frozen=True, slots=True)
class Maintenance:
    start: datetime  # aware
    end: datetime  # aware
    note: str = ""


@dataclass(frozen=True, slots=True)
class PromiseRules:
    """`[promise]`: how long after a customer was told "within `response_time`" to remind
    whoever acknowledged (`remind`) and then page `shop.fallback` (`escalate`), while nobody has
    kept the promise. Either may be None (not done)."""

    remind: timedelta | None = None
    escalate: timedelta | None = None


@dataclass(frozen=True, slots=True)
class RulesConfig:
    shop: Shop
    business_hours: BusinessHours
    policies: Mapping[str, Policy]
    rules: tuple[Rule, ...]
    messages: Mapping[str, Mapping[str, str]]  # message name -> language -> template
    maintenance: tuple[Maintenance, ...] = ()
    promise: PromiseRules = field(default_factory=PromiseRules)


# ---------------------------------------------------------------------------------------------
# rotas/people.toml and rotas/NAME.toml


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    phone: str | None = None  # E.164
    telegram: int | None = None
    slack: str | None = None
    email: str | None = None
    language: str | None = None

    def has(self, channel: str) -> bool:
        """Whether this person has contact details for `channel`."""
        return {
            "telegram": self.telegram is not None,
            "slack": self.slack is not None,
            "sms": self.phone is not None,
            "voice": self.phone is not None,
            "email": self.email is not None,
            "console": True,
        }.get(channel, False)


@dataclass(frozen=True, slots=True)
class Rotation:
    """How turns pass: every `days` local calendar days at the handoff wall time, or — for a
    sub-day duration such as "12h" — every `every` of absolute time."""

    kind: Literal["daily", "weekly", "days", "duration"]
    days: int = 1  # daily=1, weekly=7, "3d"=3; unused for "duration"
    every: timedelta | None = None  # only for "duration"


@dataclass(frozen=True, slots=True)
class Handoff:
    minute: int  # minutes since local midnight
    weekday: int | None = None  # weekly rotations only


@dataclass(frozen=True, slots=True)
class ActiveWindow:
    """`"fri 18:00-24:00"`, `"sat"` (= 00:00-24:00)."""

    weekday: int
    window: Window


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    members: tuple[str, ...]
    rotation: Rotation
    handoff: Handoff
    start: date
    active: tuple[ActiveWindow, ...] | None = None  # None = always


@dataclass(frozen=True, slots=True)
class Override:
    who: str
    start: datetime  # aware
    end: datetime  # aware
    note: str = ""


@dataclass(frozen=True, slots=True)
class Rota:
    name: str
    timezone: ZoneInfo
    layers: tuple[Layer, ...]
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the owner edits, loaded and cross-checked."""

    rules: RulesConfig
    people: Mapping[str, Person]
    rotas: Mapping[str, Rota]


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class Customer:
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: str | None = None
    number: str | None = None
    amount: float | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str | None = None
    priority: str | None = None
    status: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A normalised webhook. `id` is assigned by the store; `dedup_key` is the platform's
    delivery identity (e.g. Stripe's event id) that makes a redelivery a duplicate."""

    source: str
    kind: str
    dedup_key: str
    received_at: datetime  # aware, UTC
    summary: str = ""
    occurred_at: datetime | None = None
    severity: str | None = None
    customer: Customer = field(default_factory=Customer)
    order: Order = field(default_factory=Order)
    ticket: Ticket = field(default_factory=Ticket)
    tags: tuple[str, ...] = ()
    external_type: str | None = None  # the platform's own event type, e.g. "charge.failed"
    id: int | None = None

    def field_value(self, name: str) -> str | None:
        """A value by the dotted names rules use in `group_by` (`kind`, `source`,
        `customer.email`, `order.id`, `ticket`, `ticket.id`, `customer`, …)."""
        aliases = {"ticket": "ticket.id", "order": "order.id", "customer": "customer.email"}
        name = aliases.get(name, name)
        obj: object = self
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return str(obj)


def person_language(person: Person | None, shop: Shop | None) -> str:
    """What `person` reads (SPEC §2.2, §5): their `language`, else the shop's, else English.
    Someone who is not on the rota (no person) reads the shop's."""
    if person is not None and person.language:
        return person.language
    return shop.language if shop is not None and shop.language else "en"
