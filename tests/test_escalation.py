"""Escalation stories, run through the pure core with injected time (SPEC §5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from oncall.core.incident import (
    Acted,
    Cancelling,
    Incident,
    Joined,
    Outcome,
    Page,
    Reassure,
    Tick,
    Update,
    World,
    make_world,
    open_incident,
    run_forward,
    step,
)
from oncall.core.models import Customer, Event, Order, Person, Policy, Step, Target, Ticket
from oncall.core.pagetext import page_text
from oncall.core.rules import route
from tests.recording import MADRID, PEOPLE, always_rota, event, hhmm, madrid, shop_config

CONFIG = shop_config()
WORLD = make_world(CONFIG)


def open_for(ev: Event, world: World = WORLD, incident_id: int = 1) -> Outcome:
    [decision] = route(ev, world.config.rules, ev.received_at, world.is_open)
    return open_incident(incident_id, decision.rule, decision.group_key, ev, ev.received_at, world)


def pages(outcome: Outcome) -> list[tuple[str, str]]:
    return [(a.person, a.channel) for a in outcome.actions if isinstance(a, Page)]


def saturday_burst() -> Incident:
    """A payment failure on Saturday at 23:10 plus four more by 23:14."""
    inc = open_for(event(at=madrid("2026-11-28 23:10"), customer="Lucia Perez", amount=37.98)).incident
    for minute, name in zip(
        range(11, 15), ["Jordi Puig", "Lucia Perez", "Ines Vidal", "Pau Soler"], strict=True
    ):
        ev = event(at=madrid(f"2026-11-28 23:{minute}"), customer=name, amount=37.98)
        inc = step(inc, Joined(ev), ev.received_at, WORLD).incident
    return inc


class TestTheWeekendStory:
    def test_five_failures_become_one_page_to_the_rotas_person_at_2315(self) -> None:
        held = saturday_burst()
        assert held.state == "held" and hhmm(held.wake_at or datetime.min.replace(tzinfo=UTC)) == "23:15"
        early = step(held, Tick(), madrid("2026-11-28 23:14"), WORLD)
        assert not early.ok and pages(early) == []
        fired = step(held, Tick(), madrid("2026-11-28 23:15"), WORLD)
        assert fired.incident.state == "triggered"
        assert pages(fired) == [("ana", "telegram"), ("ana", "slack")]
        assert Reassure("payment_failed") in fired.actions
        text = page_text(fired.incident, CONFIG.rules.shop, madrid("2026-11-28 23:15"), "http://x/ack/t")
        assert "5 payment failures since 23:10, 189.90 EUR" in text.body
        assert "Lucia Perez" in text.body and "Pau Soler" in text.body
        assert "Waiting 5 min" in text.body

    def test_without_an_ack_it_escalates_by_sms_then_backup_and_owner_then_repeats(self) -> None:
        fired = step(saturday_burst(), Tick(), madrid("2026-11-28 23:15"), WORLD)
        timeline = [(hhmm(at), pages(o)) for at, o in run_forward(fired.incident, WORLD)]
        assert timeline == [
            ("23:25", [("ana", "sms")]),
            ("23:35", [("luis", "sms"), ("luis", "telegram"), ("owner", "sms"), ("owner", "telegram")]),
            ("23:50", [("ana", "telegram"), ("ana", "slack")]),  # repeat = 1: the chain once more
            ("00:00", [("ana", "sms")]),
            ("00:10", [("luis", "sms"), ("luis", "telegram"), ("owner", "sms"), ("owner", "telegram")]),
            ("00:25", []),  # exhausted: said on the timeline, nobody paged again
        ]
        last = run_forward(fired.incident, WORLD)[-1][1].incident
        assert last.state == "triggered" and last.wake_at is None
        assert "escalation exhausted" in last.timeline[-1].what

    def test_every_page_has_a_distinct_idempotency_key(self) -> None:
        fired = step(saturday_burst(), Tick(), madrid("2026-11-28 23:15"), WORLD)
        keys = [
            a.key
            for _, o in [(None, fired), *run_forward(fired.incident, WORLD)]
            for a in o.actions
            if isinstance(a, Page)
        ]
        assert len(keys) == 14 == len(set(keys))  # 2 + 1 + 4 pages, twice
        assert keys[0] == "1:1:1:ana:telegram"

    def test_an_ack_stops_the_escalation_and_updates_what_was_sent(self) -> None:
        fired = step(saturday_burst(), Tick(), madrid("2026-11-28 23:15"), WORLD)
        acked = step(
            fired.incident, Acted("Ana García", "ack", "telegram"), madrid("2026-11-28 23:17"), WORLD
        )
        assert acked.incident.state == "acknowledged" and acked.incident.wake_at is None
        assert acked.text == "Incident 1 acknowledged by Ana García at 23:17"
        assert run_forward(acked.incident, WORLD) == []
        again = step(acked.incident, Acted("Luis Pérez", "ack", "sms"), madrid("2026-11-28 23:18"), WORLD)
        assert not again.ok and again.text == "Incident 1 was already acknowledged by Ana García"

    def test_every_transition_is_on_the_timeline_with_time_cause_and_actor(self) -> None:
        fired = step(saturday_burst(), Tick(), madrid("2026-11-28 23:15"), WORLD)
        acked = step(fired.incident, Acted("Ana García", "ack", "web"), madrid("2026-11-28 23:17"), WORLD)
        done = step(acked.incident, Acted("Ana García", "resolve", "web"), madrid("2026-11-28 23:40"), WORLD)
        entries = [(hhmm(e.at), e.actor, e.what.split(":")[0]) for e in done.incident.timeline]
        assert entries[0][:2] == ("23:10", "stripe")
        assert [e[:2] for e in entries if "joined" in e[2]] == [(f"23:{m}", "stripe") for m in range(11, 15)]
        assert ("23:15", "oncall", "triggered") in entries
        assert ("23:17", "Ana García", "acknowledged by Ana García via web") in entries
        assert ("23:40", "Ana García", "resolved by Ana García via web") in entries
        assert done.incident.state == "resolved"


class TestHoldThresholdCancel:
    def test_a_failure_followed_by_the_same_orders_success_within_the_hold_pages_nobody(self) -> None:
        inc = open_for(event(at=madrid("2026-11-28 23:10"), order="2001")).incident
        ok = event("payment_succeeded", madrid("2026-11-28 23:12"), order="2001")
        cancelled = step(inc, Cancelling(ok), ok.received_at, WORLD)
        assert cancelled.incident.state == "cancelled" and cancelled.incident.wake_at is None
        assert pages(cancelled) == [] and run_forward(cancelled.incident, WORLD) == []

    def test_a_success_for_another_order_cancels_nothing(self) -> None:
        inc = open_for(event(at=madrid("2026-11-28 23:10"), order="2001")).incident
        other = event("payment_succeeded", madrid("2026-11-28 23:12"), order="2002")
        assert not step(inc, Cancelling(other), other.received_at, WORLD).ok
        assert pages(step(inc, Tick(), madrid("2026-11-28 23:15"), WORLD)) != []

    def test_without_an_order_the_same_customer_email_cancels(self) -> None:
        fail = replace(event(at=madrid("2026-11-28 23:10"), customer="Ines Vidal"), order=Order())
        paid = replace(
            event("payment_succeeded", madrid("2026-11-28 23:11"), customer="Ines Vidal"), order=Order()
        )
        inc = open_for(fail).incident
        assert step(inc, Cancelling(paid), paid.received_at, WORLD).incident.state == "cancelled"

    @pytest.mark.parametrize(
        ("failure", "success", "cancels"),
        [
            pytest.param(("2001", "ines@example.com", None), ("2001", "otra@example.com", None), True,
                         id="the same order"),
            pytest.param(("2001", "ines@example.com", None), ("2002", " Ines@Example.COM ", None), True,
                         id="another order, the same e-mail"),
            pytest.param(("2001", None, "+34 611 22 23 33"), ("2002", None, "0034-611-222-333"), True,
                         id="another order, the same phone written another way"),
            pytest.param(("2001", "ines@example.com", "+34611222333"),
                         ("2002", "jordi@example.com", "+34622333444"), False,
                         id="another customer and order"),
        ],
    )  # fmt: skip
    def test_a_success_for_the_same_order_or_customer_cancels(
        self,
        failure: tuple[str, str | None, str | None],
        success: tuple[str, str | None, str | None],
        cancels: bool,
    ) -> None:
        def ev(kind: str, minute: int, what: tuple[str, str | None, str | None]) -> Event:
            order, email, phone = what
            base = event(kind, madrid(f"2026-11-28 23:{minute}"), order=order)
            return replace(base, customer=Customer("Inés", email, phone))

        inc = open_for(ev("payment_failed", 10, failure)).incident
        paid = ev("payment_succeeded", 12, success)
        out = step(inc, Cancelling(paid), paid.received_at, WORLD)
        assert (out.incident.state == "cancelled") is cancels and out.ok is cancels

    def test_under_the_threshold_at_the_end_of_the_hold_is_cancelled(self) -> None:
        rules = (replace(CONFIG.rules.rules[0], threshold=3), *CONFIG.rules.rules[1:])
        world = make_world(shop_config(rules))
        inc = open_for(event(at=madrid("2026-11-28 23:10")), world).incident
        inc = step(
            inc, Joined(event(at=madrid("2026-11-28 23:11"))), madrid("2026-11-28 23:11"), world
        ).incident
        out = step(inc, Tick(), madrid("2026-11-28 23:15"), world)
        assert out.incident.state == "cancelled" and pages(out) == []
        assert "threshold 3" in out.incident.timeline[-1].what

    def test_auto_resolve_resolves_a_paged_incident_when_its_failure_is_fixed(self) -> None:
        rules = (replace(CONFIG.rules.rules[0], auto_resolve=True), *CONFIG.rules.rules[1:])
        world = make_world(shop_config(rules))
        inc = open_for(event(at=madrid("2026-11-28 23:10"), order="3001"), world).incident
        fired = step(inc, Tick(), madrid("2026-11-28 23:15"), world)
        paid = event("payment_succeeded", madrid("2026-11-28 23:20"), order="3001")
        out = step(fired.incident, Cancelling(paid), paid.received_at, world)
        assert out.incident.state == "resolved" and any(isinstance(a, Update) for a in out.actions)
        assert out.incident.wake_at is None

    def test_zero_hold_pages_at_once(self) -> None:
        t = event(
            "ticket_created", madrid("2026-11-28 23:10"), source="zendesk", ticket=Ticket("9", "urgent")
        )
        out = open_for(t)
        assert out.incident.state == "triggered" and pages(out) == [("ana", "telegram"), ("ana", "slack")]


class TestTargets:
    def test_an_empty_rota_pages_the_fallback_and_says_so(self) -> None:
        # Friday 27 November at 16:00 is closed (Friday closes at 15:00) but before the weekend
        # rota starts at 18:00: nobody is on call.
        inc = open_for(event(at=madrid("2026-11-27 16:00"))).incident
        out = step(inc, Tick(), madrid("2026-11-27 16:05"), WORLD)
        assert pages(out) == [("owner", "telegram")]  # the step is telegram + slack; no slack id
        said = [e.what for e in out.incident.timeline]
        assert "rota:weekend has nobody on call: paging the fallback person:owner (Olga Dueña)" in said
        assert "Olga Dueña has no slack details: paged by telegram" in said

    def test_a_person_without_details_for_any_step_channel_gets_the_others(self) -> None:
        people = {**PEOPLE, "ana": Person("ana", "Ana García", slack="UANA")}
        world = make_world(shop_config(people=people))
        inc = open_for(event(at=madrid("2026-11-28 23:10")), world).incident
        fired = step(inc, Tick(), madrid("2026-11-28 23:15"), world)
        second = step(fired.incident, Tick(), madrid("2026-11-28 23:25"), world)  # the sms step
        assert pages(second) == [("ana", "slack")]
        assert "Ana García has no sms details: paged by slack instead" in [
            e.what for e in second.incident.timeline
        ]

    def test_the_rota_is_read_when_the_step_fires_not_when_the_incident_opened(self) -> None:
        # Opened at 08:50 on Monday, when the weekend rota still has Ana; the second step
        # fires after 09:00 when the rota has nobody and the owner gets it.
        inc = open_for(event(at=madrid("2026-11-30 08:50"))).incident
        first = step(inc, Tick(), madrid("2026-11-30 08:55"), WORLD)
        assert pages(first)[0][0] == "ana"
        second = step(first.incident, Tick(), madrid("2026-11-30 09:05"), WORLD)
        assert pages(second) == [("owner", "sms")]


class TestSnooze:
    def test_snooze_sends_the_incident_back_to_triggered_after_the_chosen_time(self) -> None:
        fired = step(saturday_burst(), Tick(), madrid("2026-11-28 23:15"), WORLD)
        snoozed = step(
            fired.incident,
            Acted("Ana García", "snooze", "telegram", timedelta(minutes=30)),
            madrid("2026-11-28 23:16"),
            WORLD,
        )
        assert snoozed.incident.state == "acknowledged" and hhmm(snoozed.incident.wake_at) == "23:46"  # type: ignore[arg-type]
        back = step(snoozed.incident, Tick(), madrid("2026-11-28 23:46"), WORLD)
        assert back.incident.state == "triggered"
        assert pages(back) == [("ana", "telegram"), ("ana", "slack")]

    def test_an_ack_after_a_snooze_stops_the_escalation_for_good(self) -> None:
        fired = step(saturday_burst(), Tick(), madrid("2026-11-28 23:15"), WORLD)
        snoozed = step(
            fired.incident, Acted("Ana García", "snooze", "sms"), madrid("2026-11-28 23:16"), WORLD
        )
        acked = step(
            snoozed.incident, Acted("Ana García", "ack", "telegram"), madrid("2026-11-28 23:20"), WORLD
        )
        assert acked.ok and acked.text == "Incident 1 acknowledged by Ana García at 23:20"
        assert acked.incident.state == "acknowledged" and acked.incident.wake_at is None
        assert run_forward(acked.incident, WORLD) == []  # no page at 23:46 or ever
        assert "the snooze is over" in acked.incident.timeline[-1].what


class TestClockChange:
    def test_an_escalation_across_the_night_the_clocks_go_back_fires_at_the_right_absolute_times(
        self,
    ) -> None:
        # Sunday 25 October 2026: at 03:00 CEST the clocks go back to 02:00 CET.
        cfg = shop_config(
            rotas={"weekend": always_rota("weekend", "ana"), "weekend-backup": always_rota("b", "luis")}
        )
        world = make_world(cfg)
        start = datetime(2026, 10, 25, 0, 40, tzinfo=UTC)  # 02:40 CEST
        inc = open_for(event(at=start), world).incident
        fired = step(inc, Tick(), inc.wake_at or start, world)
        times = [at for at, _ in run_forward(fired.incident, world)]
        gaps = [b - a for a, b in zip([start + timedelta(minutes=5), *times], times, strict=False)]
        assert gaps == [timedelta(minutes=m) for m in (10, 10, 15, 10, 10, 15)]
        assert [t.astimezone(MADRID).strftime("%H:%M %Z") for t in times[:3]] == [
            "02:55 CEST",
            "02:05 CET",
            "02:20 CET",
        ]


def test_a_policy_that_names_only_people_pages_them_directly() -> None:
    policy = Policy("owner-only", (Step((Target("person", "owner"),), ("sms",), timedelta(minutes=5)),))
    rules = (replace(CONFIG.rules.rules[0], policy="owner-only"),)
    world = make_world(shop_config(rules, policies={"owner-only": policy}))
    inc = open_for(event(at=madrid("2026-11-28 23:10")), world).incident
    assert pages(step(inc, Tick(), madrid("2026-11-28 23:15"), world)) == [("owner", "sms")]


class TestWhatAnActionThatChangesNothingSays:
    def test_snoozing_a_held_incident(self) -> None:
        held = saturday_burst()
        out = step(held, Acted("Ana García", "snooze", "telegram"), madrid("2026-11-28 23:14"), WORLD)
        assert not out.ok and out.text == "Incident 1 is held: nobody has been paged for it yet"

    def test_resolving_twice(self) -> None:
        fired = step(saturday_burst(), Tick(), madrid("2026-11-28 23:15"), WORLD).incident
        done = step(fired, Acted("Ana García", "resolve", "sms"), madrid("2026-11-28 23:16"), WORLD).incident
        again = step(done, Acted("Luis Pérez", "resolve", "sms"), madrid("2026-11-28 23:17"), WORLD)
        assert not again.ok and again.text == "Incident 1 was already resolved by Ana García"
