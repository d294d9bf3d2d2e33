"""A recording paging channel, and the weekend story's shop, built from the models directly.

`RecordingChannel` is a real `Channel` that keeps what it was asked to send instead of sending
it, so escalation tests can say "Ana got a Telegram page at 23:15 saying 5 failures".
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from oncall.channels.base import Delivery, PageMessage
from oncall.core.models import (
    ActiveWindow,
    BusinessHours,
    Config,
    Customer,
    Event,
    Handoff,
    Layer,
    Match,
    Order,
    Person,
    Policy,
    Rota,
    Rotation,
    Rule,
    RulesConfig,
    Shop,
    Step,
    Target,
    Window,
)

MADRID = ZoneInfo("Europe/Madrid")


@dataclass
class RecordingChannel:
    """Records every send and update; `fail` makes sends fail (as a provider outage would)."""

    name: str
    fail: bool = False
    sent: list[PageMessage] = field(default_factory=list)
    updates: list[tuple[str, str]] = field(default_factory=list)
    delivered: asyncio.Event = field(default_factory=asyncio.Event)  # set by every send

    def configured(self) -> bool:
        return True

    async def send(self, message: PageMessage) -> Delivery:
        if self.fail:
            return Delivery(ok=False, error="provider down", retryable=False)
        self.sent.append(message)
        self.delivered.set()
        return Delivery(ok=True, ref=f"{self.name}-{len(self.sent)}")

    async def update(self, ref: str, text: str) -> Delivery:
        self.updates.append((ref, text))
        return Delivery(ok=True, ref=ref)


def madrid(text: str) -> datetime:
    """`"2026-11-28 23:10"` in Madrid, as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=MADRID).astimezone(UTC)


def hhmm(t: datetime) -> str:
    return t.astimezone(MADRID).strftime("%H:%M")


_W = [Window(9 * 60, 14 * 60), Window(16 * 60, 19 * 60)]

# The shop is Spanish (its customers, its team channel, strangers' refusals); its staff here
# read English, so that the tests of what a page says read as the SPEC words it. What a
# Spanish reader gets is tests/test_i18n.py's (`SPANISH`).
PEOPLE = {
    "ana": Person("ana", "Ana García", phone="+34600111222", telegram=111, slack="UANA", language="en"),
    "luis": Person("luis", "Luis Pérez", phone="+34600333444", telegram=222, slack="ULUIS", language="en"),
    "marta": Person("marta", "Marta Ruiz", phone="+34600555666", telegram=333, language="en"),
    "owner": Person("owner", "Olga Dueña", phone="+34600777888", telegram=444, language="en"),
}

WEEKEND_ACTIVE = (
    ActiveWindow(4, Window(18 * 60, 1440)),
    ActiveWindow(5, Window(0, 1440)),
    ActiveWindow(6, Window(0, 1440)),
    ActiveWindow(0, Window(0, 9 * 60)),
)


def weekend_rota(members: tuple[str, ...] = ("ana", "luis", "marta"), name: str = "weekend") -> Rota:
    layer = Layer(
        name="weekends",
        members=members,
        rotation=Rotation("weekly", days=7),
        handoff=Handoff(18 * 60, weekday=4),
        start=date(2026, 11, 6),
        active=WEEKEND_ACTIVE,
    )
    return Rota(name, MADRID, (layer,))


def always_rota(name: str, who: str) -> Rota:
    layer = Layer("all", (who,), Rotation("daily"), Handoff(9 * 60), date(2026, 1, 1))
    return Rota(name, MADRID, (layer,))


WEEKEND_POLICY = Policy(
    "weekend",
    (
        Step((Target("rota", "weekend"),), ("telegram", "slack"), timedelta(minutes=10)),
        Step((Target("rota", "weekend"),), ("sms",), timedelta(minutes=10)),
        Step(
            (Target("rota", "weekend-backup"), Target("person", "owner")),
            ("sms", "telegram"),
            timedelta(minutes=15),
        ),
    ),
    repeat=1,
)

RULES = (
    Rule(
        "payment failures while closed",
        Match(kind=frozenset({"payment_failed"}), hours="closed"),
        "page",
        policy="weekend",
        hold=timedelta(minutes=5),
        group_by=("kind",),
        cancel_on=("payment_succeeded",),
        reassure="payment_failed",
    ),
    Rule(
        "urgent tickets while closed",
        Match(kind=frozenset({"ticket_created"}), hours="closed", priority=frozenset({"urgent", "high"})),
        "page",
        policy="weekend",
        group_by=("ticket",),
    ),
    Rule(
        "other tickets wait for the morning",
        Match(kind=frozenset({"ticket_created"}), hours="closed"),
        "defer",
        reassure="ticket_deferred",
    ),
    Rule("in hours", Match(hours="open"), "post"),
)


def shop_config(
    rules: tuple[Rule, ...] = RULES,
    *,
    rotas: dict[str, Rota] | None = None,
    people: dict[str, Person] | None = None,
    policies: dict[str, Policy] | None = None,
    **rules_changes: object,
) -> Config:
    """The SPEC's Tienda Ejemplo: Madrid hours and holidays, the weekend policy, two rotas."""
    rc = RulesConfig(
        shop=Shop(
            "Tienda Ejemplo",
            MADRID,
            "es",
            timedelta(hours=2),
            Target("person", "owner"),
            team_channel="slack:#soporte",
        ),
        business_hours=BusinessHours(
            week={0: tuple(_W), 1: tuple(_W), 2: tuple(_W), 3: tuple(_W), 4: (Window(9 * 60, 15 * 60),)},
            holidays_country="ES",
            holidays_subdivision="MD",
            closed=frozenset({date(2026, 12, 24), date(2026, 12, 31)}),
        ),
        policies=policies if policies is not None else {"weekend": WEEKEND_POLICY},
        rules=rules,
        messages={
            "payment_failed": {
                "es": "Hola {customer_name}, el pago de tu pedido {order_number} no se ha completado.",
                "en": "Hi {customer_name}, the payment for order {order_number} did not go through.",
            }
        },
    )
    if rules_changes:
        rc = replace(rc, **rules_changes)  # type: ignore[arg-type]
    return Config(
        rules=rc,
        people=people if people is not None else PEOPLE,
        rotas=rotas
        if rotas is not None
        else {"weekend": weekend_rota(), "weekend-backup": always_rota("weekend-backup", "luis")},
    )


_seq = iter(range(1, 10**9))


def event(
    kind: str = "payment_failed",
    at: datetime | None = None,
    *,
    order: str | None = None,
    amount: float | None = 37.98,
    customer: str | None = None,
    source: str = "stripe",
    **changes: object,
) -> Event:
    """A normalised event; `customer` is a name, its e-mail is derived from it."""
    n = next(_seq)
    at = at or madrid("2026-11-28 23:10")
    order = order or f"10{n:02d}"
    email = f"{re.sub(r'[^a-z]', '', customer.lower())}@example.com" if customer else None
    ev = Event(
        source=source,
        kind=kind,
        dedup_key=f"evt_{n}",
        received_at=at,
        summary=f"{kind} for order {order}",
        customer=Customer(name=customer, email=email, language="es"),
        order=Order(id=f"ord_{order}", number=order, amount=amount, currency="EUR"),
    )
    return replace(ev, **changes) if changes else ev  # type: ignore[arg-type]
