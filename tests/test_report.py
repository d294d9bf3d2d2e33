"""The closed-hours report (`core.report`) over a known weekend in Madrid: the desk closes on
Friday 27 November 2026 at 15:00 and opens on Monday 30 November at 09:00."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from oncall.core.promises import Promise
from oncall.core.report import Report, closed_period, report, time_to_acknowledge, weekly
from oncall.core.state import Incident, Paged
from tests.recording import MADRID, madrid, shop_config

HOURS = shop_config().rules.business_hours


def incident(
    iid: int,
    opened: str,
    state: str = "acknowledged",
    pages: tuple[tuple[str, str], ...] = (),
    acked: str | None = None,
) -> Incident:
    at = madrid(opened)
    return Incident(
        id=iid,
        rule="payment failures while closed",
        group_key="payment_failed",
        state=state,  # type: ignore[arg-type]
        created_at=at,
        updated_at=at,
        paged=tuple(Paged("ana", channel, madrid(t), 1, 1) for t, channel in pages),
        acknowledged_at=madrid(acked) if acked else None,
    )


def promise(iid: int, customer: str, made: str, state: str) -> Promise:
    at = madrid(made)
    return Promise(iid, customer, customer, "payment_failed", at, at + timedelta(hours=2), state)  # type: ignore[arg-type]


WEEKEND = [
    incident(6, "2026-11-27 14:00", "resolved", (("2026-11-27 14:00", "telegram"),), "2026-11-27 14:01"),
    # Saturday night: paged at 23:15 by Telegram and Slack, acknowledged at 23:20 (5 min).
    incident(
        1,
        "2026-11-28 23:10",
        "resolved",
        (("2026-11-28 23:15", "telegram"), ("2026-11-28 23:15", "slack")),
        "2026-11-28 23:20",
    ),
    # Sunday 02:00: two pages, then SMS at 02:15, acknowledged at 02:27 (22 min).
    incident(
        2,
        "2026-11-29 02:00",
        "acknowledged",
        (("2026-11-29 02:05", "telegram"), ("2026-11-29 02:05", "slack"), ("2026-11-29 02:15", "sms")),
        "2026-11-29 02:27",
    ),
    # Sunday 10:00: the customer paid during the hold; nobody paged.
    incident(3, "2026-11-29 10:00", "cancelled"),
    # Sunday 20:00: resolved at 20:09 without an ack first (9 min).
    incident(
        4,
        "2026-11-29 20:00",
        "resolved",
        (("2026-11-29 20:00", "telegram"), ("2026-11-29 20:00", "slack")),
        "2026-11-29 20:09",
    ),
    # Sunday 23:00: paged, nobody acknowledged (it resolved itself).
    incident(
        5, "2026-11-29 23:00", "resolved", (("2026-11-29 23:05", "telegram"), ("2026-11-29 23:05", "slack"))
    ),
    incident(7, "2026-11-30 09:30", "triggered", (("2026-11-30 09:30", "telegram"),)),
]
PROMISES = [
    promise(6, "fri@example.com", "2026-11-27 14:00", "kept"),
    promise(1, "laura@example.com", "2026-11-28 23:15", "kept"),
    promise(2, "jordi@example.com", "2026-11-29 02:05", "broken"),
    promise(4, "ines@example.com", "2026-11-29 20:00", "kept"),
    promise(5, "pau@example.com", "2026-11-30 08:00", "open"),
]

M = timedelta(minutes=1)
CASES: list[tuple[tuple[str, str], *tuple[object, ...]]] = [
    # (span, incidents, cancelled, pages, acked, never, median, worst, reassured, kept, broken, open)
    (("2026-11-27 15:00", "2026-11-30 09:00"), 5, 1, 9, 3, 1, 9 * M, 22 * M, 4, 2, 1, 1),
    (("2026-11-28 20:00", "2026-11-29 09:00"), 2, 0, 5, 2, 0, 13.5 * M, 22 * M, 2, 1, 1, 0),
    (("2026-11-29 09:00", "2026-11-30 00:00"), 3, 1, 4, 1, 1, 9 * M, 9 * M, 1, 1, 0, 0),
    (("2026-11-27 15:00", "2026-11-28 12:00"), 0, 0, 0, 0, 0, None, None, 0, 0, 0, 0),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0][0]} to {c[0][1]}" for c in CASES])
def test_the_figures_of_the_weekend(case: tuple[tuple[str, str], *tuple[object, ...]]) -> None:
    (start, end), *figures = case
    r = report(WEEKEND, PROMISES, madrid(start), madrid(end))
    got = [r.incidents, r.cancelled, r.pages, r.acknowledged, r.unacknowledged, r.median_ack, r.worst_ack]
    got += [r.reassured, r.kept, r.broken, r.open]
    assert got == figures


def test_the_report_reads_as_the_digest_ends() -> None:
    r = report(WEEKEND, PROMISES, madrid("2026-11-27 15:00"), madrid("2026-11-30 09:00"))
    assert r.lines(MADRID) == [
        "Closed-hours report, Fri 27 Nov 15:00 to Mon 30 Nov 09:00:",
        "- 5 incidents (1 cancelled during the hold), 9 pages",
        "- time to acknowledge: median 9 min, worst 22 min (3 acknowledged, 1 never)",
        "- 4 customers reassured: 2 promises kept, 1 broken, 1 still open",
    ]
    assert r.to_json()["time_to_acknowledge"] == {"median_seconds": 540, "worst_seconds": 1320}
    assert r.to_json()["promises"] == {"kept": 2, "broken": 1, "open": 1}


def test_a_quiet_night_says_so() -> None:
    r = Report(madrid("2026-11-30 19:00"), madrid("2026-12-01 09:00"))
    assert r.empty and r.lines(MADRID)[1:] == [
        "- 0 incidents, 0 pages",
        "- nothing to acknowledge",
        "- 0 customers reassured: 0 promises kept, 0 broken",
    ]


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        ("2026-11-30 10:00", "2026-11-27 15:00", "2026-11-30 09:00"),  # open: the weekend just reported
        ("2026-11-29 03:00", "2026-11-27 15:00", "2026-11-29 03:00"),  # closed: so far
        ("2026-11-30 15:00", "2026-11-30 14:00", "2026-11-30 15:00"),  # the lunch break so far
        ("2026-11-30 17:00", "2026-11-30 14:00", "2026-11-30 16:00"),  # after it
        # Monday 7 (Constitution, moved from Sunday) and Tuesday 8 December are holidays in Madrid.
        ("2026-12-08 10:00", "2026-12-04 15:00", "2026-12-08 10:00"),
    ],
)
def test_the_closed_hours_a_report_is_about(now: str, start: str, end: str) -> None:
    assert closed_period(HOURS, MADRID, madrid(now)) == (madrid(start), madrid(end))


def test_time_to_acknowledge_runs_from_the_first_page() -> None:
    [_, one, two, *_] = WEEKEND
    assert time_to_acknowledge(one) == 5 * M and time_to_acknowledge(two) == 22 * M
    assert time_to_acknowledge(replace(two, paged=())) is None


def test_eight_weeks_monday_to_monday_with_the_current_week_last() -> None:
    now = madrid("2026-12-02 12:00")  # a Wednesday
    weeks = weekly(WEEKEND, PROMISES, now, MADRID)
    assert [w.start.astimezone(MADRID).strftime("%a %d %b") for w in weeks] == [
        "Mon 12 Oct", "Mon 19 Oct", "Mon 26 Oct", "Mon 02 Nov",
        "Mon 09 Nov", "Mon 16 Nov", "Mon 23 Nov", "Mon 30 Nov",
    ]  # fmt: skip
    # The clocks went back on Sunday 25 October: that week is an hour longer, Monday to Monday.
    assert weeks[2].start - weeks[1].start == timedelta(days=7, hours=1)
    assert weeks[2].start == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert weeks[-1].end == now
    assert [(w.incidents, w.kept, w.broken, w.open) for w in weeks[-2:]] == [(6, 3, 1, 0), (1, 0, 0, 1)]
    assert weeks[-2].median_ack == 7 * M  # 1, 5, 9 and 22 minutes
