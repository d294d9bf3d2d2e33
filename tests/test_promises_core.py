"""The promise planner (`core.promises.decide`): what a promise made at 23:15 with "within 2
hours" (deadline 01:15), `[promise] remind = "90m"` and `escalate = "105m"`, becomes at each
instant and for each cause — a table, since the core takes `now` as an argument."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from oncall.core.models import PromiseRules
from oncall.core.promises import (
    Broken,
    Cause,
    Contacted,
    ContactedLate,
    Due,
    Escalate,
    Kept,
    Promise,
    Remind,
    Resolved,
    TicketUpdated,
    answered,
    decide,
    next_wake,
    reminder_to,
)
from oncall.core.world import make_world
from tests.recording import madrid, shop_config
from tests.test_escalation import open_for, saturday_burst

MADE = madrid("2026-11-28 23:15")
PROMISE = Promise(
    incident_id=1,
    customer="email:laura@cliente.example",
    name="Laura Pérez",
    message="payment_failed",
    made_at=MADE,
    deadline=MADE + timedelta(hours=2),
    ticket="zendesk:4321",
)
RULES = PromiseRules(remind=timedelta(minutes=90), escalate=timedelta(minutes=105))
ANA = Contacted("Ana García", "telegram")


def at(hhmm: str) -> str:
    day = "2026-11-28" if hhmm >= "12:00" else "2026-11-29"
    return f"{day} {hhmm}"


CASES: list[tuple[str, Promise, Cause, str, str, list[type], str | None]] = [
    # (what, promise, cause, at, state after, actions, next wake)
    ("nothing is due before the reminder", PROMISE, Due(), "00:30", "open", [], "00:45"),
    ("the reminder at 90 min", PROMISE, Due(), "00:45", "open", [Remind], "01:00"),
    (
        "the escalation at 105 min",
        replace(PROMISE, reminded=True),
        Due(),
        "01:00",
        "open",
        [Escalate],
        "01:15",
    ),
    (
        "after an outage, reminder and escalation at once",
        PROMISE,
        Due(),
        "01:05",
        "open",
        [Remind, Escalate],
        "01:15",
    ),
    (
        "broken at the deadline",
        replace(PROMISE, reminded=True, escalated=True),
        Due(),
        "01:15",
        "broken",
        [Broken],
        None,
    ),
    ("a timer running late still breaks it", PROMISE, Due(), "03:00", "broken", [Broken], None),
    ("contacted at 40 min: kept", PROMISE, ANA, "23:55", "kept", [Kept], None),
    ("contacted at the deadline itself: kept", PROMISE, ANA, "01:15", "kept", [Kept], None),
    (
        "contacted a minute late, before its timer ran: broken",
        PROMISE,
        ANA,
        "01:16",
        "broken",
        [Broken],
        None,
    ),
    ("resolved: kept", PROMISE, Resolved("Ana García"), "00:10", "kept", [Kept], None),
    (
        "its ticket pending: kept",
        PROMISE,
        TicketUpdated("zendesk:4321", "pending"),
        "23:50",
        "kept",
        [Kept],
        None,
    ),
    (
        "its ticket on-hold: kept",
        PROMISE,
        TicketUpdated("zendesk:4321", "On-hold"),
        "23:50",
        "kept",
        [Kept],
        None,
    ),
    (
        "its ticket solved: kept",
        PROMISE,
        TicketUpdated("zendesk:4321", "solved"),
        "23:50",
        "kept",
        [Kept],
        None,
    ),
    (
        "its ticket closed: kept",
        PROMISE,
        TicketUpdated("zendesk:4321", "closed"),
        "23:50",
        "kept",
        [Kept],
        None,
    ),
    (
        "its ticket reopened: still open",
        PROMISE,
        TicketUpdated("zendesk:4321", "open"),
        "23:50",
        "open",
        [],
        "00:45",
    ),
    (
        "another ticket: still open",
        PROMISE,
        TicketUpdated("zendesk:9", "solved"),
        "23:50",
        "open",
        [],
        "00:45",
    ),
    ("kept stays kept", replace(PROMISE, state="kept"), Due(), "01:15", "kept", [], None),
    ("kept ignores a contact", replace(PROMISE, state="kept"), ANA, "00:20", "kept", [], None),
    (
        "broken, then contacted: noted once",
        replace(PROMISE, state="broken"),
        ANA,
        "01:30",
        "broken",
        [ContactedLate],
        None,
    ),
    (
        "broken and contacted already: nothing",
        replace(PROMISE, state="broken", contacted_at=madrid("2026-11-29 01:30")),
        ANA,
        "01:40",
        "broken",
        [],
        None,
    ),
    (
        "a resolve after it broke: stays broken",
        replace(PROMISE, state="broken"),
        Resolved("x"),
        "02:00",
        "broken",
        [],
        None,
    ),
]


@pytest.mark.parametrize(
    ("what", "promise", "cause", "when", "state", "actions", "wake"), CASES, ids=[c[0] for c in CASES]
)
def test_decide(
    what: str, promise: Promise, cause: Cause, when: str, state: str, actions: list[type], wake: str | None
) -> None:
    d = decide(promise, cause, RULES, madrid(at(when)))
    assert d.promise.state == state
    assert [type(a) for a in d.actions] == actions
    assert d.wake_at == (madrid(at(wake)) if wake else None)


def test_a_late_contact_is_recorded_with_the_broken_promise() -> None:
    d = decide(PROMISE, ANA, RULES, madrid("2026-11-29 01:16"))
    [broken] = d.actions
    assert isinstance(broken, Broken) and broken.late_contact == ANA
    assert d.promise.settled_at == PROMISE.deadline and d.promise.contacted_at == madrid("2026-11-29 01:16")


def test_without_a_promise_table_only_the_deadline_is_watched() -> None:
    assert next_wake(PROMISE, PromiseRules()) == PROMISE.deadline
    d = decide(PROMISE, Due(), PromiseRules(), madrid("2026-11-29 00:45"))
    assert d.actions == () and d.wake_at == PROMISE.deadline


def test_a_reminder_after_a_shorter_deadline_is_never_due() -> None:
    # Made under response_time "1h": the 90-minute reminder would come after the deadline.
    short = replace(PROMISE, deadline=MADE + timedelta(hours=1))
    assert next_wake(short, RULES) == short.deadline


def test_the_helpdesk_statuses_that_answer_a_customer() -> None:
    assert [
        s
        for s in ("pending", "on-hold", "On Hold", "hold", "solved", "closed", "open", "new", "")
        if answered(s)
    ] == [
        "pending",
        "on-hold",
        "On Hold",
        "hold",
        "solved",
        "closed",
    ]


class TestWhoIsReminded:
    def test_whoever_acknowledged(self) -> None:
        inc = replace(saturday_burst(), state="acknowledged", acknowledged_by="Luis Pérez")
        assert reminder_to(inc, make_world(shop_config()), madrid("2026-11-29 00:45")) == "luis"

    def test_else_whoever_the_first_step_pages_now(self) -> None:
        inc = replace(saturday_burst(), state="acknowledged", acknowledged_by="the owner (API)")
        # Ana has the weekend rota this Saturday night.
        assert reminder_to(inc, make_world(shop_config()), madrid("2026-11-29 00:45")) == "ana"

    def test_an_incident_of_an_unknown_policy_reminds_the_fallback(self) -> None:
        inc = replace(open_for(saturday_burst().events[0]).incident, policy="gone")
        assert reminder_to(inc, make_world(shop_config()), madrid("2026-11-29 00:45")) == "owner"
