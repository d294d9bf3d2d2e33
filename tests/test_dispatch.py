"""What a routing decision does (core.dispatch), as a table: the service routes every stored
event through `plan`, and `oncall simulate` prints the same steps, so a dry run never disagrees
with what the service does."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from oncall.core.dispatch import (
    Escalate,
    InMaintenance,
    PostToTeam,
    RouteStep,
    cancelling,
    escalate,
    plan,
    ticket_subject,
)
from oncall.core.incident import Cancelling, World, make_world, subject_keys
from oncall.core.models import Event, Maintenance, Match, Rule, Ticket
from tests.recording import RULES, event, madrid, shop_config

DROP_TESTS = Rule(
    "test orders", Match(kind=frozenset({"order_created"}), source=frozenset({"generic"})), "drop"
)
MAINTENANCE = Maintenance(madrid("2026-11-28 22:00"), madrid("2026-11-29 02:00"), "payment provider upgrade")


Expected = list[tuple[str, str, str]]


def _detail(s: RouteStep) -> str:
    if isinstance(s, PostToTeam):
        return f"{s.target}: {s.text}"
    if isinstance(s, InMaintenance):
        return s.note
    if isinstance(s, Escalate):
        return f"{s.action} {s.group_key}"
    return ""


def steps(kind: str, at: str, rules: tuple[Rule, ...], maintenance: tuple[Maintenance, ...]) -> Expected:
    """(step, rule, detail) for an event of `kind` arriving at `at` (Madrid)."""
    config = shop_config(rules, maintenance=maintenance)
    ev = event(kind, madrid(at), order="1001", source="generic" if kind == "order_created" else "stripe")
    if kind == "ticket_created":
        ev = replace(ev, ticket=Ticket("42", "urgent"))
    return [(type(s).__name__, s.rule.name, _detail(s)) for s in plan(ev, make_world(config), ev.received_at)]


WITH_DROP = (DROP_TESTS, *RULES)


@pytest.mark.parametrize(
    ("kind", "at", "rules", "maintenance", "expected"),
    [
        (  # Saturday night: the payment failure escalates into its kind's incident
            "payment_failed",
            "2026-11-28 23:10",
            WITH_DROP,
            (),
            [("Escalate", "payment failures while closed", "page kind=payment_failed")],
        ),
        (  # the same in hours: one post to the team channel, nobody paged
            "payment_failed",
            "2026-11-30 10:00",
            WITH_DROP,
            (),
            [
                (
                    "PostToTeam",
                    "in hours",
                    # the team channel is the shop's: in its language (Spanish)
                    "slack:#soporte: Tienda Ejemplo: fallo de pago desde stripe — payment_failed for order"
                    " 1001 (pedido 1001, 37,98 €) [regla: in hours]",
                )
            ],
        ),
        (  # an urgent ticket at night pages, grouped by its ticket
            "ticket_created",
            "2026-11-28 23:10",
            WITH_DROP,
            (),
            [("Escalate", "urgent tickets while closed", "page ticket=42")],
        ),
        (  # a test order is dropped by the first rule that matches it
            "order_created",
            "2026-11-28 23:10",
            WITH_DROP,
            (),
            [("Drop", "test orders", "")],
        ),
        (  # during a maintenance window a paging rule lists the event and pages nobody
            "payment_failed",
            "2026-11-28 23:10",
            WITH_DROP,
            (MAINTENANCE,),
            [
                (
                    "InMaintenance",
                    "payment failures while closed",
                    "maintenance 2026-11-28T21:00:00+00:00 to 2026-11-29T01:00:00+00:00"
                    ": payment provider upgrade",
                )
            ],
        ),
        (  # no rule matches an order at night: stored, nothing else
            "order_created",
            "2026-11-30 23:10",
            RULES,
            (),
            [],
        ),
    ],
)
def test_what_each_rule_that_matches_does(
    kind: str,
    at: str,
    rules: tuple[Rule, ...],
    maintenance: tuple[Maintenance, ...],
    expected: Expected,
) -> None:
    assert steps(kind, at, rules, maintenance) == expected


def _one(kind: str, at: str) -> tuple[Escalate, Event, World]:
    world = make_world(shop_config())
    ev = event(kind, madrid(at))
    if kind == "ticket_created":
        ev = replace(ev, ticket=Ticket("7", "low"))
    [s] = plan(ev, world, ev.received_at)
    assert isinstance(s, Escalate)
    return s, ev, world


class TestEscalate:
    def test_a_new_group_opens_an_incident_held_for_the_rule(self) -> None:
        s, ev, world = _one("payment_failed", "2026-11-28 23:10")
        done = escalate(s, None, 5, ev, ev.received_at, world)
        assert done.outcome.incident.id == 5 and done.outcome.incident.state == "held"
        assert done.outcome.incident.wake_at == ev.received_at + timedelta(minutes=5)
        assert done.digest_at is None

    def test_an_event_of_an_open_group_joins_its_incident(self) -> None:
        s, ev, world = _one("payment_failed", "2026-11-28 23:10")
        first = escalate(s, None, 5, ev, ev.received_at, world).outcome.incident
        later = event("payment_failed", madrid("2026-11-28 23:12"))
        done = escalate(s, first, None, later, later.received_at, world)
        assert done.outcome.incident.id == 5 and len(done.outcome.incident.events) == 2

    def test_a_deferred_ticket_is_due_in_the_digest_when_monday_opens(self) -> None:
        s, ev, world = _one("ticket_created", "2026-11-28 23:10")
        assert s.action == "defer"
        done = escalate(s, None, 9, ev, ev.received_at, world)
        assert done.outcome.incident.state == "deferred"
        assert done.digest_at == madrid("2026-11-30 09:00")


class TestClosingTheLoop:
    def test_a_payment_that_went_through_cancels_the_open_failure_about_the_same_order(self) -> None:
        config = shop_config()
        world = make_world(config)
        failure = event("payment_failed", madrid("2026-11-28 23:10"), order="1001")
        [s] = plan(failure, world, failure.received_at)
        assert isinstance(s, Escalate)
        inc = escalate(s, None, 1, failure, failure.received_at, world).outcome.incident
        paid = event("payment_succeeded", madrid("2026-11-28 23:12"), order="1001")
        assert "order:ord_1001" in subject_keys(paid) and "order:ord_1001" in subject_keys(failure)
        assert cancelling(paid, inc) == Cancelling(paid)
        assert cancelling(event("checkout_error"), inc) is None

    def test_only_a_ticket_update_follows_its_ticket(self) -> None:
        update = replace(event("ticket_updated"), ticket=Ticket("42", status="solved"))
        assert ticket_subject(update) == "ticket:42"
        assert ticket_subject(replace(event("ticket_created"), ticket=Ticket("42"))) is None
        assert ticket_subject(event("ticket_updated")) is None  # no ticket id
