"""Business hours of SPEC §2.1 (Madrid, holidays ES/MD), and what daylight saving does to them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.core.calendar import Hours, closed_spans, is_open, local_to_utc, next_close, next_open
from oncall.core.models import BusinessHours, Window

MADRID = ZoneInfo("Europe/Madrid")


def hhmm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def windows(*spans: str) -> tuple[Window, ...]:
    return tuple(Window(hhmm(s.split("-")[0]), hhmm(s.split("-")[1])) for s in spans)


SPLIT = windows("09:00-14:00", "16:00-19:00")
SHOP = BusinessHours(
    week={0: SPLIT, 1: SPLIT, 2: SPLIT, 3: SPLIT, 4: windows("09:00-15:00")},
    holidays_country="ES",
    holidays_subdivision="MD",
    closed=frozenset({date(2026, 12, 24), date(2026, 12, 31)}),
)


def mad(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MADRID)


class TestIsOpen:
    def test_a_weekday_morning_is_open(self) -> None:
        assert is_open(SHOP, MADRID, mad(2026, 11, 25, 10, 0))

    def test_the_lunch_break_is_closed(self) -> None:
        assert not is_open(SHOP, MADRID, mad(2026, 11, 25, 14, 30))

    def test_windows_are_half_open(self) -> None:
        assert is_open(SHOP, MADRID, mad(2026, 11, 25, 16, 0))
        assert not is_open(SHOP, MADRID, mad(2026, 11, 25, 19, 0))
        assert is_open(SHOP, MADRID, mad(2026, 11, 25, 18, 59))

    def test_friday_closes_at_three(self) -> None:
        assert is_open(SHOP, MADRID, mad(2026, 11, 27, 14, 59))
        assert not is_open(SHOP, MADRID, mad(2026, 11, 27, 15, 0))

    def test_a_saturday_is_closed(self) -> None:
        assert not is_open(SHOP, MADRID, mad(2026, 11, 28, 11, 0))

    def test_inmaculada_is_a_holiday(self) -> None:
        assert not is_open(SHOP, MADRID, mad(2026, 12, 8, 10, 0))

    def test_madrid_moves_constitution_day_to_monday_7_december(self) -> None:
        assert not is_open(SHOP, MADRID, mad(2026, 12, 7, 10, 0))

    def test_almudena_is_a_city_holiday_not_a_regional_one(self) -> None:
        # 9 November is Madrid city's holiday; the holidays package (ES/MD) does not list it,
        # so a shop that closes that day must list it in `closed`.
        assert is_open(SHOP, MADRID, mad(2026, 11, 9, 10, 0))

    def test_extra_closed_dates_are_closed(self) -> None:
        assert not is_open(SHOP, MADRID, mad(2026, 12, 24, 10, 0))

    def test_an_instant_in_another_zone_is_read_in_the_shop_zone(self) -> None:
        # 08:30 UTC on a November Wednesday is 09:30 in Madrid.
        assert is_open(SHOP, MADRID, datetime(2026, 11, 25, 8, 30, tzinfo=UTC))
        assert not is_open(SHOP, MADRID, datetime(2026, 11, 25, 7, 59, tzinfo=UTC))


class TestNextOpen:
    def test_friday_afternoon_opens_monday_at_nine(self) -> None:
        assert next_open(SHOP, MADRID, mad(2026, 11, 27, 15, 0)) == mad(2026, 11, 30, 9, 0)

    def test_the_answer_is_in_utc(self) -> None:
        opening = next_open(SHOP, MADRID, mad(2026, 11, 27, 15, 0))
        assert opening is not None and opening.tzinfo is UTC

    def test_lunch_break_opens_at_four(self) -> None:
        assert next_open(SHOP, MADRID, mad(2026, 11, 25, 14, 0)) == mad(2026, 11, 25, 16, 0)

    def test_open_now_means_now(self) -> None:
        assert next_open(SHOP, MADRID, mad(2026, 11, 25, 10, 0)) == mad(2026, 11, 25, 10, 0)

    def test_the_opening_after_the_current_span(self) -> None:
        close = next_close(SHOP, MADRID, mad(2026, 11, 25, 10, 0))
        assert close is not None
        assert next_open(SHOP, MADRID, close) == mad(2026, 11, 25, 16, 0)

    def test_the_long_weekend_of_december_opens_on_wednesday(self) -> None:
        # Friday 4 closes at 15:00; Monday 7 and Tuesday 8 are holidays in Madrid.
        assert next_open(SHOP, MADRID, mad(2026, 12, 4, 15, 0)) == mad(2026, 12, 9, 9, 0)

    def test_christmas_eve_opens_on_monday_28(self) -> None:
        # 24 closed (extra date), 25 Christmas, 26-27 weekend.
        assert next_open(SHOP, MADRID, mad(2026, 12, 23, 19, 0)) == mad(2026, 12, 28, 9, 0)

    def test_spring_forward_weekend_opens_at_nine_summer_time(self) -> None:
        opening = next_open(SHOP, MADRID, mad(2026, 3, 27, 15, 0))
        assert opening == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 09:00 CEST

    def test_fall_back_weekend_opens_at_nine_winter_time(self) -> None:
        opening = next_open(SHOP, MADRID, mad(2026, 10, 23, 15, 0))
        assert opening == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # 09:00 CET

    def test_a_shop_with_no_hours_never_opens(self) -> None:
        assert next_open(BusinessHours(week={}), MADRID, mad(2026, 11, 25, 10, 0)) is None


class TestNextClose:
    def test_morning_closes_for_lunch(self) -> None:
        assert next_close(SHOP, MADRID, mad(2026, 11, 25, 10, 0)) == mad(2026, 11, 25, 14, 0)

    def test_closed_now_means_now(self) -> None:
        assert next_close(SHOP, MADRID, mad(2026, 11, 28, 10, 0)) == mad(2026, 11, 28, 10, 0)

    def test_windows_touching_at_midnight_are_one_span(self) -> None:
        late = BusinessHours(week={0: windows("20:00-24:00"), 1: windows("00:00-02:00")})
        assert next_close(late, MADRID, mad(2026, 11, 23, 21, 0)) == mad(2026, 11, 24, 2, 0)

    def test_a_shop_open_around_the_clock_never_closes(self) -> None:
        always = BusinessHours(week={d: windows("00:00-24:00") for d in range(7)})
        assert next_close(always, MADRID, mad(2026, 11, 25, 10, 0)) is None


class TestClosedSpans:
    def test_a_weekday_has_lunch_and_night(self) -> None:
        spans = closed_spans(SHOP, MADRID, mad(2026, 11, 25, 0, 0), mad(2026, 11, 26, 0, 0))
        assert spans == [
            (mad(2026, 11, 25, 0, 0), mad(2026, 11, 25, 9, 0)),
            (mad(2026, 11, 25, 14, 0), mad(2026, 11, 25, 16, 0)),
            (mad(2026, 11, 25, 19, 0), mad(2026, 11, 26, 0, 0)),
        ]

    def test_the_fall_back_weekend_is_an_hour_longer(self) -> None:
        spans = closed_spans(SHOP, MADRID, mad(2026, 10, 23, 12, 0), mad(2026, 10, 26, 12, 0))
        assert spans == [(mad(2026, 10, 23, 15, 0), mad(2026, 10, 26, 9, 0))]
        assert spans[0][1] - spans[0][0] == timedelta(hours=67)

    def test_the_spring_forward_weekend_is_an_hour_shorter(self) -> None:
        spans = closed_spans(SHOP, MADRID, mad(2026, 3, 27, 12, 0), mad(2026, 3, 30, 12, 0))
        assert spans == [(mad(2026, 3, 27, 15, 0), mad(2026, 3, 30, 9, 0))]
        assert spans[0][1] - spans[0][0] == timedelta(hours=65)

    def test_spans_are_clipped_to_the_range(self) -> None:
        spans = closed_spans(SHOP, MADRID, mad(2026, 11, 28, 10, 0), mad(2026, 11, 28, 11, 0))
        assert spans == [(mad(2026, 11, 28, 10, 0), mad(2026, 11, 28, 11, 0))]

    def test_an_open_range_has_no_closed_span(self) -> None:
        assert closed_spans(SHOP, MADRID, mad(2026, 11, 25, 10, 0), mad(2026, 11, 25, 11, 0)) == []


class TestWallTimeRule:
    def test_a_time_the_clocks_jump_over_happens_at_the_jump(self) -> None:
        # 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 never happens.
        assert local_to_utc(datetime(2026, 3, 29, 2, 30), MADRID) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)

    def test_a_time_that_happens_twice_happens_the_first_time(self) -> None:
        # 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens at 00:30 and 01:30 UTC.
        assert local_to_utc(datetime(2026, 10, 25, 2, 30), MADRID) == datetime(
            2026, 10, 25, 0, 30, tzinfo=UTC
        )

    def test_a_window_opening_inside_the_gap_opens_at_the_jump(self) -> None:
        night = BusinessHours(week={6: windows("02:30-04:00")})
        assert next_open(night, MADRID, mad(2026, 3, 29, 0, 0)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
        assert not is_open(night, MADRID, datetime(2026, 3, 29, 0, 59, tzinfo=UTC))

    def test_a_window_across_the_repeated_hour_opens_the_first_time(self) -> None:
        # 02:30-03:00 on the fall-back night: from the first 02:30 (00:30 UTC), through the
        # repeated 02:xx hour, to 03:00 CET (02:00 UTC): an hour and a half.
        night = BusinessHours(week={6: windows("02:30-03:00")})
        opening = next_open(night, MADRID, mad(2026, 10, 25, 0, 0))
        assert opening == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
        assert next_close(night, MADRID, opening) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


ZONES = ("Europe/Madrid", "America/New_York", "Australia/Adelaide", "Europe/London")


def _changes(zone: ZoneInfo) -> list[datetime]:
    """The hours (UTC) during which `zone` changes its offset, 2026-2030."""
    hours = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(5 * 366 * 24)]
    return [b for a, b in pairwise(hours) if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset()]


TRANSITIONS = [(ZoneInfo(z), t) for z in ZONES for t in _changes(ZoneInfo(z))]


@st.composite
def instants(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and an instant: often within two days of one of its clock changes in 2026-2030."""
    if draw(st.booleans()):
        zone, change = draw(st.sampled_from(TRANSITIONS))
        return zone, change + timedelta(minutes=draw(st.integers(-2 * 1440, 2 * 1440)))
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    day = draw(st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)))
    return zone, datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 1439))
    )


@settings(max_examples=80, deadline=None)
@given(where=instants())
def test_open_close_and_closed_spans_agree(where: tuple[ZoneInfo, datetime]) -> None:
    """At any instant, is_open, next_open, next_close and closed_spans tell one story."""
    zone, t = where
    hours = BusinessHours(
        week={d: windows("01:30-02:30", "03:00-12:00", "16:00-24:00") for d in range(6)},
        holidays_country="ES",
    )
    spans = closed_spans(hours, zone, t - timedelta(days=2), t + timedelta(days=2))
    assert all(a < b < c for (a, b), (c, _) in pairwise(spans))
    for _, b in spans:  # a closed span ends where a window opens, in wall time
        local = b.astimezone(zone)
        if b < t + timedelta(days=2):
            wall = local.hour * 60 + local.minute
            assert (
                wall in (90, 180, 960)
                or (b - timedelta(seconds=1)).astimezone(zone).utcoffset() != local.utcoffset()
            )
    closed_at_t = any(a <= t < b for a, b in spans)
    assert is_open(hours, zone, t) is not closed_at_t
    opening, closing = next_open(hours, zone, t), next_close(hours, zone, t)
    horizon = t + timedelta(days=2)
    if closed_at_t:
        assert closing == t
        span_end = next(b for a, b in spans if a <= t < b)
        if span_end < horizon:
            assert opening == span_end
    else:
        assert opening == t
        later = [a for a, _ in spans if a > t]
        if later:
            assert closing == later[0]


@settings(max_examples=60, deadline=None)
@given(where=instants(), steps=st.lists(st.integers(0, 3 * 1440), min_size=1, max_size=40))
def test_what_routing_remembers_is_what_the_functions_say(
    where: tuple[ZoneInfo, datetime], steps: list[int]
) -> None:
    """`Hours` (what routing asks, event after event) answers as the functions do, at later
    and later instants across window edges, midnights and clock changes."""
    zone, t = where
    hours = BusinessHours(
        week={d: windows("01:30-02:30", "03:00-12:00", "16:00-24:00") for d in range(6)},
        holidays_country="ES",
    )
    remembered = Hours(hours, zone)
    for minutes in steps:
        t += timedelta(minutes=minutes)
        for u in (t, t + timedelta(microseconds=1)):
            assert remembered.is_open(u) is is_open(hours, zone, u), u
            assert remembered.next_open(u) == next_open(hours, zone, u), u


def test_a_shop_closed_for_over_a_year_opens_once_its_first_day_is_in_sight() -> None:
    """Open on Wednesdays, every Wednesday closed until 5 January 2028: `next_open` is None
    until that opening comes within the horizon, and then it is that opening, in zones whose
    clocks change at midnight too."""
    wednesdays = frozenset(date(2026, 12, 2) + timedelta(weeks=w) for w in range(57))
    hours = BusinessHours(week={2: windows("10:00-11:00")}, closed=wednesdays)
    for name in ("Europe/Madrid", "America/Santiago", "America/Havana"):
        zone = ZoneInfo(name)
        remembered = Hours(hours, zone)
        t = datetime(2027, 1, 1, tzinfo=UTC)
        seen = set()
        while t < datetime(2027, 1, 9, tzinfo=UTC):
            expected = next_open(hours, zone, t)
            assert remembered.next_open(t) == expected, (name, t)
            seen.add(expected)
            t += timedelta(minutes=7)
        assert None in seen and len(seen) == 2, (name, seen)


def test_what_routing_remembers_holds_at_every_window_edge_around_clock_changes() -> None:
    """Every quarter of an hour (window edges included) for three days around each zone's
    first two clock changes, `Hours` answers as the functions do."""
    hours = BusinessHours(
        week={d: windows("01:30-02:30", "03:00-12:00", "16:00-24:00") for d in range(6)},
        holidays_country="ES",
    )
    for name in ZONES:
        zone = ZoneInfo(name)
        remembered = Hours(hours, zone)
        for change in _changes(zone)[:2]:
            t = change - timedelta(days=1, minutes=change.minute)
            for _ in range(3 * 96):
                assert remembered.is_open(t) is is_open(hours, zone, t), (name, t)
                assert remembered.next_open(t) == next_open(hours, zone, t), (name, t)
                t += timedelta(minutes=15)
