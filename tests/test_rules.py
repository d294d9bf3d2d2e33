"""Rule routing, as the owner wrote it in escalation_rules.toml (SPEC §2.1)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

import pytest

from oncall.core.incident import make_world
from oncall.core.models import Config, Event, Maintenance, Match, Rule, Ticket
from oncall.core.rules import Router, group_key, route
from tests.recording import RULES, event, madrid, shop_config

CONFIG = shop_config()
WORLD = make_world(CONFIG)


def routed(ev: Event, at: str, config: Config = CONFIG) -> list[tuple[str, str]]:
    return [(d.rule.name, d.action) for d in route(ev, config.rules, madrid(at), WORLD.is_open)]


def ticket(priority: str | None, at: datetime | None = None) -> Event:
    return event(
        "ticket_created", at, source="zendesk", ticket=Ticket(id="77", priority=priority, subject="Help")
    )


class TestTheSpecExample:
    def test_a_payment_failure_on_saturday_night_opens_a_paging_incident(self) -> None:
        assert routed(event(), "2026-11-28 23:10") == [("payment failures while closed", "page")]

    def test_an_urgent_ticket_at_night_pages_and_a_normal_one_waits_for_the_morning(self) -> None:
        assert routed(ticket("urgent"), "2026-11-25 22:00") == [("urgent tickets while closed", "page")]
        assert routed(ticket("Urgent"), "2026-11-25 22:00") == [("urgent tickets while closed", "page")]
        assert routed(ticket("low"), "2026-11-25 22:00") == [("other tickets wait for the morning", "defer")]

    def test_in_hours_everything_goes_to_the_team_channel(self) -> None:
        assert routed(event(), "2026-11-25 10:00") == [("in hours", "post")]
        assert routed(ticket("urgent"), "2026-11-25 17:30") == [("in hours", "post")]

    def test_the_lunch_break_is_closed(self) -> None:
        assert routed(event(), "2026-11-25 15:00") == [("payment failures while closed", "page")]

    def test_a_regional_public_holiday_counts_as_closed(self) -> None:
        # Monday 7 December 2026 is a public holiday in Madrid (not in all of Spain).
        assert routed(event(), "2026-12-07 10:00") == [("payment failures while closed", "page")]
        assert routed(event(), "2026-12-09 10:00") == [("in hours", "post")]

    def test_an_extra_closed_date_counts_as_closed(self) -> None:
        assert routed(event(), "2026-12-24 10:00") == [("payment failures while closed", "page")]

    def test_an_event_no_rule_matches_is_left_alone(self) -> None:
        assert routed(event("order_created"), "2026-11-28 23:10") == []


class TestFileOrderAndContinue:
    def test_the_first_match_wins(self) -> None:
        rules = (Rule("a", Match(), "post"), Rule("b", Match(), "drop"))
        assert routed(event(), "2026-11-28 23:10", shop_config(rules)) == [("a", "post")]

    def test_continue_lets_later_rules_match_too(self) -> None:
        rules = (
            Rule("a", Match(), "post", continue_=True),
            Rule("b", Match(kind=frozenset({"checkout_error"})), "drop"),
            Rule("c", Match(), "page", policy="weekend"),
            Rule("d", Match(), "drop"),
        )
        assert routed(event(), "2026-11-28 23:10", shop_config(rules)) == [("a", "post"), ("c", "page")]


MATCH_CASES = [
    ("source", Match(source=frozenset({"stripe"})), {}, {"source": "shopify"}),
    ("kind", Match(kind=frozenset({"payment_failed"})), {}, {"kind": "checkout_error"}),
    ("severity", Match(severity=frozenset({"high"})), {"severity": "high"}, {"severity": "low"}),
    ("priority", Match(priority=frozenset({"urgent"})), {"ticket": Ticket(priority="urgent")}, {}),
    ("tags (any of)", Match(tags=frozenset({"vip", "b2b"})), {"tags": ("x", "vip")}, {"tags": ("x",)}),
    ("text", Match(text=re.compile(r"(?i)declined")), {"summary": "Card DECLINED"}, {"summary": "ok"}),
]


class TestEveryMatchKey:
    @pytest.mark.parametrize(("key", "match", "yes", "no"), MATCH_CASES, ids=[c[0] for c in MATCH_CASES])
    def test_key(self, key: str, match: Match, yes: dict[str, object], no: dict[str, object]) -> None:
        cfg = shop_config((Rule(key, match, "post"),))
        assert routed(replace(event(), **yes), "2026-11-28 23:10", cfg) == [(key, "post")]  # type: ignore[arg-type]
        assert routed(replace(event(), **no), "2026-11-28 23:10", cfg) == []  # type: ignore[arg-type]

    def test_amount_at_least(self) -> None:
        cfg = shop_config((Rule("big", Match(amount_at_least=100.0), "post"),))
        assert routed(event(amount=100.0), "2026-11-28 23:10", cfg) == [("big", "post")]
        assert routed(event(amount=99.99), "2026-11-28 23:10", cfg) == []
        assert routed(event(amount=None), "2026-11-28 23:10", cfg) == []

    def test_days_are_the_shops_local_days(self) -> None:
        cfg = shop_config((Rule("sat", Match(days=frozenset({5})), "post"),))
        # 23:30 on Saturday in Madrid is already Saturday 22:30 UTC, and 00:30 Sunday is not.
        assert routed(event(), "2026-11-28 23:30", cfg) == [("sat", "post")]
        assert routed(event(), "2026-11-29 00:30", cfg) == []

    def test_all_given_keys_must_hold(self) -> None:
        m = Match(kind=frozenset({"payment_failed"}), amount_at_least=50.0, hours="closed")
        cfg = shop_config((Rule("r", m, "post"),))
        assert routed(event(amount=60.0), "2026-11-28 23:10", cfg) == [("r", "post")]
        assert routed(event(amount=60.0), "2026-11-25 10:00", cfg) == []
        assert routed(event(amount=10.0), "2026-11-28 23:10", cfg) == []

    def test_hours_any_matches_open_and_closed(self) -> None:
        cfg = shop_config((Rule("r", Match(hours="any"), "drop"),))
        assert routed(event(), "2026-11-25 10:00", cfg) == [("r", "drop")]
        assert routed(event(), "2026-11-28 23:10", cfg) == [("r", "drop")]


class TestGroupingAndMaintenance:
    def test_group_by_names_the_incident_an_event_joins(self) -> None:
        rule = replace(RULES[0], group_by=("kind", "customer.email"))
        a = event(customer="Lucia Perez")
        assert group_key(rule, a) == "kind=payment_failed|customer.email=luciaperez@example.com"
        assert group_key(replace(rule, group_by=()), a) == ""
        assert group_key(replace(rule, group_by=("ticket",)), ticket("low")) == "ticket=77"

    def test_a_maintenance_window_stores_the_event_and_pages_nobody(self) -> None:
        window = Maintenance(
            madrid("2026-12-01 02:00"), madrid("2026-12-01 04:00"), "payment provider migration"
        )
        cfg = shop_config(maintenance=(window,))
        [inside] = route(event(), cfg.rules, madrid("2026-12-01 03:00"), WORLD.is_open)
        assert inside.action == "page" and inside.maintenance == window and not inside.pages
        [after] = route(event(), cfg.rules, madrid("2026-12-01 04:00"), WORLD.is_open)
        assert after.pages


def test_routing_asks_about_business_hours_at_most_once_per_event() -> None:
    asked: list[datetime] = []

    def is_open(t: datetime) -> bool:
        asked.append(t)
        return False

    rules = (*(Rule(f"r{i}", Match(hours="open"), "post") for i in range(50)), RULES[0])
    Router(shop_config(rules).rules).route(event(), madrid("2026-11-28 23:10"), is_open)
    assert len(asked) == 1
