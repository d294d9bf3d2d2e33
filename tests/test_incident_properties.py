"""Whatever happens to an incident, and in whatever order: nobody gets the same page twice,
nothing pages after the incident is closed or while it is acknowledged, and the timeline
never goes back in time."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.core.incident import Acted, Cancelling, Input, Joined, Page, Tick, make_world, open_incident, step
from tests.recording import RULES, event, madrid, shop_config

WORLD = make_world(shop_config())
START = madrid("2026-11-28 23:10")

ops = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40),  # minutes after the previous operation
        st.sampled_from(["join", "succeed", "tick", "ack", "resolve", "snooze"]),
        st.sampled_from(["1001", "1002", "1003"]),
    ),
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(ops=ops)
def test_no_page_twice_none_after_closing_none_while_acknowledged(ops: list[tuple[int, str, str]]) -> None:
    inc = open_incident(
        1, RULES[0], "kind=payment_failed", event(at=START, order="1001"), START, WORLD
    ).incident
    now = START
    keys: set[str] = set()
    for minutes, op, order in ops:
        now += timedelta(minutes=minutes)
        # Timers fire in order: whatever fell due before this operation fires first.
        while inc.wake_at is not None and inc.wake_at <= now:
            out = step(inc, Tick(), inc.wake_at, WORLD)
            keys, inc = _check(out.actions, keys, inc.state), out.incident
        inp: Input
        if op == "tick":  # time passes until the next timer
            if inc.wake_at is None:
                continue
            now, inp = inc.wake_at, Tick()
        elif op == "join":
            inp = Joined(event(at=now, order=order))
        elif op == "succeed":
            inp = Cancelling(event("payment_succeeded", now, order=order))
        else:
            verb = {"ack": "ack", "resolve": "resolve", "snooze": "snooze"}[op]
            inp = Acted("Ana García", verb, "telegram", timedelta(minutes=30))  # type: ignore[arg-type]
        before = inc.state
        out = step(inc, inp, now, WORLD)
        keys = _check(out.actions, keys, before)
        if before == "acknowledged" and out.incident.state == "acknowledged":
            assert not any(isinstance(a, Page) for a in out.actions)
        inc = out.incident
        times = [e.at for e in inc.timeline]
        assert times == sorted(times)
        if inc.state in ("resolved", "cancelled"):
            assert inc.wake_at is None


def _check(actions: tuple[object, ...], keys: set[str], state_before: str) -> set[str]:
    pages = [a.key for a in actions if isinstance(a, Page)]
    if state_before in ("resolved", "cancelled"):
        assert pages == []
    assert not keys & set(pages), "a page was sent twice"
    assert len(pages) == len(set(pages))
    return keys | set(pages)
