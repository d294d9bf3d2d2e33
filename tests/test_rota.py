"""Who is on call: the SPEC weekend rota, layers, overrides and handoffs across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from oncall.core.models import ActiveWindow, Handoff, Layer, Override, Rota, Rotation, Window
from oncall.core.rota import HORIZON, Shift, gaps, next_on_call, on_call, shifts

MADRID = ZoneInfo("Europe/Madrid")
DAY = 1440


def mad(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MADRID)


WEEKEND_ACTIVE = (
    ActiveWindow(4, Window(18 * 60, DAY)),
    ActiveWindow(5, Window(0, DAY)),
    ActiveWindow(6, Window(0, DAY)),
    ActiveWindow(0, Window(0, 9 * 60)),
)
WEEKENDS = Layer(
    name="weekends",
    members=("ana", "luis", "marta"),
    rotation=Rotation("weekly", days=7),
    handoff=Handoff(18 * 60, weekday=4),
    start=date(2026, 11, 6),
    active=WEEKEND_ACTIVE,
)
WEEKEND = Rota("weekend", MADRID, (WEEKENDS,))


def who(rota: Rota, t: datetime) -> str | None:
    shift = on_call(rota, t)
    return None if shift is None else shift.person


def local(shift: Shift | None) -> tuple[str, datetime, datetime] | None:
    return None if shift is None else (shift.person, shift.start, shift.end)


class TestSpecWeekendRota:
    def test_saturday_night_of_the_fourth_weekend_is_ana(self) -> None:
        # Turns: 6 Nov ana, 13 luis, 20 marta, 27 ana.
        shift = on_call(WEEKEND, mad(2026, 11, 28, 23, 10))
        assert local(shift) == ("ana", mad(2026, 11, 27, 18, 0), mad(2026, 11, 30, 9, 0))
        assert shift is not None and shift.layer == "weekends"

    def test_next_after_ana_is_luis_on_friday_evening(self) -> None:
        shift = next_on_call(WEEKEND, mad(2026, 11, 28, 23, 10))
        assert local(shift) == ("luis", mad(2026, 12, 4, 18, 0), mad(2026, 12, 7, 9, 0))

    def test_times_come_back_in_utc(self) -> None:
        shift = on_call(WEEKEND, mad(2026, 11, 28, 23, 10))
        assert shift is not None and shift.start.tzinfo is UTC and shift.end.tzinfo is UTC

    def test_nobody_covers_a_tuesday(self) -> None:
        assert on_call(WEEKEND, mad(2026, 12, 1, 12, 0)) is None
        assert local(next_on_call(WEEKEND, mad(2026, 12, 1, 12, 0))) == (
            "luis",
            mad(2026, 12, 4, 18, 0),
            mad(2026, 12, 7, 9, 0),
        )

    def test_monday_nine_is_the_end_of_the_weekend(self) -> None:
        assert who(WEEKEND, mad(2026, 11, 30, 8, 59)) == "ana"
        assert who(WEEKEND, mad(2026, 11, 30, 9, 0)) is None

    def test_before_the_first_handoff_nobody_is_on_call(self) -> None:
        assert on_call(WEEKEND, mad(2026, 11, 1, 12, 0)) is None
        assert on_call(WEEKEND, mad(2026, 11, 6, 17, 59)) is None
        assert who(WEEKEND, mad(2026, 11, 6, 18, 0)) == "ana"

    def test_turns_repeat_in_member_order(self) -> None:
        fridays = [mad(2026, 11, 6, 19, 0) + timedelta(weeks=k) for k in range(7)]
        assert [who(WEEKEND, t) for t in fridays] == ["ana", "luis", "marta", "ana", "luis", "marta", "ana"]

    def test_the_spec_override_gives_luis_his_own_weekend(self) -> None:
        rota = Rota(
            "weekend",
            MADRID,
            (WEEKENDS,),
            (Override("luis", mad(2026, 12, 5, 18, 0), mad(2026, 12, 7, 9, 0), "swap with ana"),),
        )
        # It was luis's turn anyway: one shift, Friday to Monday.
        assert local(on_call(rota, mad(2026, 12, 6, 12, 0))) == (
            "luis",
            mad(2026, 12, 4, 18, 0),
            mad(2026, 12, 7, 9, 0),
        )

    def test_a_sick_day_override_takes_saturday_night(self) -> None:
        rota = Rota(
            "weekend",
            MADRID,
            (WEEKENDS,),
            (Override("marta", mad(2026, 11, 28, 20, 0), mad(2026, 11, 29, 10, 0), "ana is ill"),),
        )
        shift = on_call(rota, mad(2026, 11, 28, 23, 10))
        assert local(shift) == ("marta", mad(2026, 11, 28, 20, 0), mad(2026, 11, 29, 10, 0))
        assert shift is not None and shift.layer == "override"
        assert local(next_on_call(rota, mad(2026, 11, 28, 23, 10))) == (
            "ana",
            mad(2026, 11, 29, 10, 0),
            mad(2026, 11, 30, 9, 0),
        )
        assert [
            (s.person, s.layer) for s in shifts(rota, mad(2026, 11, 27, 0, 0), mad(2026, 12, 1, 0, 0))
        ] == [
            ("ana", "weekends"),
            ("marta", "override"),
            ("ana", "weekends"),
        ]

    def test_an_override_on_a_tuesday_covers_a_gap(self) -> None:
        rota = Rota(
            "weekend", MADRID, (WEEKENDS,), (Override("ana", mad(2026, 12, 1, 0, 0), mad(2026, 12, 2, 0, 0)),)
        )
        assert who(rota, mad(2026, 12, 1, 12, 0)) == "ana"

    def test_of_two_overlapping_overrides_the_later_one_wins(self) -> None:
        rota = Rota(
            "weekend",
            MADRID,
            (WEEKENDS,),
            (
                Override("luis", mad(2026, 11, 28, 0, 0), mad(2026, 11, 29, 0, 0)),
                Override("marta", mad(2026, 11, 28, 12, 0), mad(2026, 11, 28, 14, 0)),
            ),
        )
        assert who(rota, mad(2026, 11, 28, 11, 0)) == "luis"
        assert who(rota, mad(2026, 11, 28, 13, 0)) == "marta"
        assert who(rota, mad(2026, 11, 28, 15, 0)) == "luis"

    def test_gaps_are_the_weekdays(self) -> None:
        assert gaps(WEEKEND, mad(2026, 11, 27, 0, 0), mad(2026, 12, 7, 0, 0)) == [
            (mad(2026, 11, 27, 0, 0), mad(2026, 11, 27, 18, 0)),
            (mad(2026, 11, 30, 9, 0), mad(2026, 12, 4, 18, 0)),
        ]


class TestLayers:
    PRIMARY = Layer(
        name="primary",
        members=("ana", "luis"),
        rotation=Rotation("weekly", days=7),
        handoff=Handoff(9 * 60, weekday=0),
        start=date(2026, 11, 2),
    )
    NIGHTS = Layer(
        name="nights",
        members=("marta", "pablo"),
        rotation=Rotation("daily", days=1),
        handoff=Handoff(20 * 60),
        start=date(2026, 11, 2),
        active=tuple(ActiveWindow(d, Window(20 * 60, DAY)) for d in range(7))
        + tuple(ActiveWindow(d, Window(0, 8 * 60)) for d in range(7)),
    )
    ROTA = Rota("support", MADRID, (PRIMARY, NIGHTS))

    def test_the_later_layer_wins_where_it_is_active(self) -> None:
        assert who(self.ROTA, mad(2026, 11, 3, 12, 0)) == "ana"
        assert who(self.ROTA, mad(2026, 11, 3, 21, 0)) == "pablo"  # 2 Nov marta, 3 Nov pablo
        assert who(self.ROTA, mad(2026, 11, 4, 7, 59)) == "pablo"
        assert who(self.ROTA, mad(2026, 11, 4, 8, 0)) == "ana"

    def test_the_primary_shift_ends_when_the_night_layer_starts(self) -> None:
        shift = on_call(self.ROTA, mad(2026, 11, 3, 12, 0))
        assert local(shift) == ("ana", mad(2026, 11, 3, 8, 0), mad(2026, 11, 3, 20, 0))
        assert local(next_on_call(self.ROTA, mad(2026, 11, 3, 12, 0))) == (
            "pablo",
            mad(2026, 11, 3, 20, 0),
            mad(2026, 11, 4, 8, 0),
        )

    def test_the_timeline_has_no_gap_and_no_overlap(self) -> None:
        timeline = shifts(self.ROTA, mad(2026, 11, 2, 9, 0), mad(2026, 11, 23, 9, 0))
        assert timeline[0].start == mad(2026, 11, 2, 9, 0)
        assert timeline[-1].end == mad(2026, 11, 23, 9, 0)
        assert all(a.end == b.start and a.person != b.person for a, b in pairwise(timeline))
        assert gaps(self.ROTA, mad(2026, 11, 2, 9, 0), mad(2026, 11, 23, 9, 0)) == []


def always(members: tuple[str, ...], rotation: Rotation, handoff: Handoff, start: date) -> Rota:
    return Rota("r", MADRID, (Layer("l", members, rotation, handoff, start),))


class TestHandoffsAcrossDst:
    def test_a_weekly_turn_over_the_spring_change_is_167_hours(self) -> None:
        rota = always(("ana", "luis"), Rotation("weekly", 7), Handoff(18 * 60, 4), date(2026, 3, 27))
        shift = on_call(rota, mad(2026, 3, 28, 12, 0))
        assert local(shift) == ("ana", mad(2026, 3, 27, 18, 0), mad(2026, 4, 3, 18, 0))
        assert shift is not None and shift.end - shift.start == timedelta(hours=167)

    def test_a_weekly_turn_over_the_autumn_change_is_169_hours(self) -> None:
        rota = always(("ana", "luis"), Rotation("weekly", 7), Handoff(18 * 60, 4), date(2026, 10, 23))
        shift = on_call(rota, mad(2026, 10, 24, 12, 0))
        assert shift is not None and shift.end - shift.start == timedelta(hours=169)

    def test_a_handoff_at_a_time_that_does_not_exist_happens_at_the_jump(self) -> None:
        rota = always(("ana", "luis"), Rotation("daily", 1), Handoff(2 * 60 + 30), date(2026, 3, 28))
        # 29 March: 02:30 does not exist; the handoff happens at 03:00 CEST (01:00 UTC).
        assert who(rota, datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == "ana"
        assert who(rota, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == "luis"
        assert who(rota, mad(2026, 3, 30, 2, 30)) == "ana"

    def test_a_handoff_at_a_time_that_happens_twice_happens_the_first_time(self) -> None:
        rota = always(("ana", "luis"), Rotation("daily", 1), Handoff(2 * 60 + 30), date(2026, 10, 24))
        # 25 October: 02:30 CEST (00:30 UTC) and 02:30 CET (01:30 UTC); the first one counts.
        assert who(rota, datetime(2026, 10, 25, 0, 29, tzinfo=UTC)) == "ana"
        assert who(rota, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == "luis"
        assert who(rota, datetime(2026, 10, 25, 1, 45, tzinfo=UTC)) == "luis"

    def test_a_three_day_rotation_passes_every_third_day(self) -> None:
        rota = always(("ana", "luis"), Rotation("days", 3), Handoff(9 * 60), date(2026, 11, 2))
        turns = [who(rota, mad(2026, 11, d, 12, 0)) for d in range(2, 10)]
        assert turns == ["ana"] * 3 + ["luis"] * 3 + ["ana"] * 2

    def test_twelve_hour_turns_step_in_absolute_time_across_the_change(self) -> None:
        rota = always(
            ("ana", "luis"),
            Rotation("duration", every=timedelta(hours=12)),
            Handoff(8 * 60),
            date(2026, 3, 28),
        )
        timeline = shifts(rota, mad(2026, 3, 28, 8, 0), mad(2026, 3, 30, 0, 0))
        assert [s.end - s.start for s in timeline[:-1]] == [timedelta(hours=12)] * 3
        assert timeline[2].start == mad(2026, 3, 29, 9, 0)  # 08:00 CET + 24 h is 09:00 CEST

    def test_a_saturday_window_on_a_long_day_is_25_hours(self) -> None:
        # 25 October 2026 is a Sunday with 25 hours in Madrid.
        rota = Rota(
            "r",
            MADRID,
            (
                Layer(
                    "sun",
                    ("ana",),
                    Rotation("weekly", 7),
                    Handoff(0, 0),
                    date(2026, 10, 1),
                    (ActiveWindow(6, Window(0, DAY)),),
                ),
            ),
        )
        shift = on_call(rota, mad(2026, 10, 25, 12, 0))
        assert shift is not None and shift.end - shift.start == timedelta(hours=25)


class TestHorizon:
    def test_a_one_person_rota_is_reported_until_the_horizon(self) -> None:
        rota = always(("ana",), Rotation("weekly", 7), Handoff(9 * 60, 0), date(2026, 11, 2))
        t = mad(2027, 6, 1, 12, 0)
        shift = on_call(rota, t)
        assert shift is not None and (shift.start, shift.end) == (mad(2026, 11, 2, 9, 0), t + HORIZON)
        assert next_on_call(rota, t) is None

    def test_a_rota_with_nobody_has_no_next(self) -> None:
        assert next_on_call(Rota("empty", MADRID, ()), mad(2026, 11, 2, 9, 0)) is None


def busy_rota() -> Rota:
    """Like bench/rota.py: a weekly primary, a daily night layer, a weekend layer, overrides."""
    nights = tuple(ActiveWindow(d, Window(20 * 60, DAY)) for d in range(5)) + tuple(
        ActiveWindow(d, Window(0, 8 * 60)) for d in range(1, 6)
    )
    layers = (
        Layer(
            "primary", ("ana", "luis", "marta"), Rotation("weekly", 7), Handoff(9 * 60, 0), date(2026, 1, 1)
        ),
        Layer("nights", ("pablo", "sara"), Rotation("daily", 1), Handoff(20 * 60), date(2026, 1, 1), nights),
        Layer(
            "weekends",
            ("ana", "luis", "marta"),
            Rotation("weekly", 7),
            Handoff(18 * 60, 4),
            date(2026, 1, 1),
            WEEKEND_ACTIVE,
        ),
    )
    overrides = tuple(
        Override(who, mad(2026, 1, 5) + timedelta(days=d), mad(2026, 1, 5) + timedelta(days=d, hours=h))
        for who, d, h in [("sara", 20, 30), ("ana", 83, 6), ("luis", 145, 48), ("marta", 300, 12)]
    )
    return Rota("busy", MADRID, layers, overrides)


class TestOnCallSpeed:
    def test_on_call_returns_exactly_the_shift_of_the_timeline_all_year(self) -> None:
        long_turns = Rota(
            "long",
            MADRID,
            (Layer("l", ("ana", "luis"), Rotation("days", 40), Handoff(9 * 60), date(2026, 1, 1)),),
        )
        lo, hi = mad(2026, 1, 1), mad(2027, 1, 1)
        for rota in (busy_rota(), long_turns, WEEKEND):
            timeline = shifts(rota, lo, hi)
            inner = [s for s in timeline if lo < s.start and s.end < hi]
            assert len(inner) > 5
            for s in inner:  # shifts inside a cache block and across two, with their layer
                for t in (s.start, s.start + (s.end - s.start) / 2, s.end - timedelta(microseconds=1)):
                    assert on_call(rota, t) == s
            for a, b in gaps(rota, lo, hi):
                assert on_call(rota, a) is None and on_call(rota, b - timedelta(microseconds=1)) is None
