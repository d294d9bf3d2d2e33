"""Business hours: is the desk open at t, when does it next open or close, which spans are closed.

Pure: every function takes aware datetimes and returns aware datetimes **in UTC**; nothing here
reads the clock. The holiday table of the `holidays` package is cached per country, subdivision
and year (building it is slow), which the caller cannot observe.

Wall time and daylight saving (SPEC §2.2): opening windows are local wall times in the shop's
zone. `local_to_utc` turns a wall time into an instant: a wall time the clocks jump over happens
at the first instant after the jump (02:30 on a spring-forward night is 03:00 new time); a wall
time that occurs twice happens at its first occurrence. The rota resolver uses the same rule.

`next_open(t)` is the earliest instant ≥ t at which the desk is open, so it is `t` itself when
the desk is open at t; the opening after the current open span is `next_open(h, tz,
next_close(h, tz, t))`. `next_close` is symmetric. Both return None when nothing changes within
`HORIZON` (a shop with no hours never opens; a 24/7 shop never closes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from oncall.core.models import BusinessHours

HORIZON = timedelta(days=366)
_SECOND = timedelta(seconds=1)


@lru_cache(maxsize=65536)
def local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of the naive local wall time `wall` in `tz`, by the SPEC's DST rule."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the first of two occurrences
    # In a gap fold=0 reads the wall time with the offset before the jump, which lands after
    # the jump, and fold=1 with the offset after it, which lands before. The jump lies in
    # between; find it to the second (zone transitions are whole seconds).
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    after = hi.astimezone(tz).utcoffset()
    while hi - lo > _SECOND:
        mid = lo + (hi - lo) // 2
        if mid.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi


@lru_cache(maxsize=512)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


def is_closed_day(hours: BusinessHours, day: date) -> bool:
    """Whether `day` is closed all day: a public holiday or one of the `closed` dates."""
    if day in hours.closed:
        return True
    if hours.holidays_country is None:
        return False
    return day in _holiday_dates(hours.holidays_country, hours.holidays_subdivision, day.year)


def _day_spans(hours: BusinessHours, tz: ZoneInfo, day: date) -> list[tuple[datetime, datetime]]:
    """The open spans of one local day as UTC instants, sorted, merged, none empty."""
    if is_closed_day(hours, day):
        return []
    midnight = datetime.combine(day, time())
    spans: list[tuple[datetime, datetime]] = []
    for w in sorted(hours.week.get(day.weekday(), ()), key=lambda w: w.start):
        a = local_to_utc(midnight + timedelta(minutes=w.start), tz)
        b = local_to_utc(midnight + timedelta(minutes=w.end), tz)
        if a >= b:
            continue  # e.g. a window lying wholly inside a spring-forward gap
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(b, spans[-1][1]))
        else:
            spans.append((a, b))
    return spans


Spans = list[tuple[datetime, datetime]]


def _open_spans(
    hours: BusinessHours, tz: ZoneInfo, start: datetime, spans_of: Callable[[date], Spans] | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """Maximal open spans (merged across midnight) that end after `start`, in order, for
    `HORIZON` from `start`; a span still open at the horizon is yielded up to there.
    `spans_of(day)` is `_day_spans` for these hours (a memo of it, see `Hours`)."""
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = _last_day(tz, start)
    current: tuple[datetime, datetime] | None = None
    while day <= last:
        for a, b in spans_of(day) if spans_of is not None else _day_spans(hours, tz, day):
            if current is not None and a <= current[1]:
                current = (current[0], max(current[1], b))
                continue
            if current is not None and current[1] > start:
                yield current
            current = (a, b)
        day += timedelta(days=1)
    if current is not None and current[1] > start:
        yield current


def _last_day(tz: ZoneInfo, start: datetime) -> date:
    """The last local day `_open_spans(start)` looks at."""
    return (start + HORIZON).astimezone(tz).date() + timedelta(days=1)


def is_open(hours: BusinessHours, tz: ZoneInfo, t: datetime) -> bool:
    """Whether the desk is open at instant `t`."""
    return any(a <= t < b for a, b in _day_spans(hours, tz, t.astimezone(tz).date()))


def next_open(hours: BusinessHours, tz: ZoneInfo, t: datetime) -> datetime | None:
    """The earliest instant ≥ t at which the desk is open (`t` itself if open at t), in UTC."""
    for a, _b in _open_spans(hours, tz, t):
        return max(a, t).astimezone(UTC)
    return None


def next_close(hours: BusinessHours, tz: ZoneInfo, t: datetime) -> datetime | None:
    """The earliest instant ≥ t at which the desk is closed (`t` itself if closed at t), in UTC.
    None when it stays open for `HORIZON`."""
    horizon = t + HORIZON
    for a, b in _open_spans(hours, tz, t):
        if a > t:
            return t.astimezone(UTC)
        return None if b >= horizon else b
    return t.astimezone(UTC)


def closed_spans(
    hours: BusinessHours, tz: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The maximal closed spans within [start, end), clipped to it, in order, in UTC."""
    out: list[tuple[datetime, datetime]] = []
    cursor = start.astimezone(UTC)
    end = end.astimezone(UTC)
    day = cursor.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    opens: list[tuple[datetime, datetime]] = []
    while day <= last:
        opens.extend(_day_spans(hours, tz, day))
        day += timedelta(days=1)
    for a, b in opens:
        if b <= cursor:
            continue
        if a >= end:
            break
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return out


class Hours:
    """`is_open` and `next_open` of one shop's hours, remembering what they worked out.

    Routing a flood asks both for every event, at nearly the same instant; a shop closed for
    days (or for good) made `next_open` walk up to a year of days each time. The answers are
    exactly those of the functions above: a day's spans are fixed, and an answer stays true
    over the interval it covers — `next_open(t0) = a` means closed over [t0, a), so it is `a`
    for every t there; `None` at t0 means no opening on the days `t0`'s horizon reaches, and
    so none for a later t whose horizon ends on the same day."""

    _MAX_DAYS = 4096

    def __init__(self, hours: BusinessHours, tz: ZoneInfo) -> None:
        self.hours, self.tz = hours, tz
        self._days: dict[date, Spans] = {}
        # (t0, valid until (a) or None, answer, last horizon day for a None answer)
        self._next: tuple[datetime, datetime | None, datetime | None, date | None] | None = None
        # (t0, until, answer): `is_open` is `answer` over [t0, until), within one local day
        self._open: tuple[datetime, datetime, bool] | None = None

    def spans(self, day: date) -> Spans:
        found = self._days.get(day)
        if found is None:
            if len(self._days) >= self._MAX_DAYS:
                self._days.clear()
            found = self._days[day] = _day_spans(self.hours, self.tz, day)
        return found

    def is_open(self, t: datetime) -> bool:
        memo = self._open  # one read: another thread may replace it meanwhile
        if memo is not None and memo[0] <= t < memo[1]:
            return memo[2]
        day = t.astimezone(self.tz).date()
        # The answer holds until the span t is in ends, the next one starts, or the day ends.
        until = _midnight(self.tz, day + timedelta(days=1))
        answer = False
        for a, b in self.spans(day):
            if a <= t < b:
                answer, until = True, min(until, b)
                break
            if t < a:
                until = min(until, a)
                break
        self._open = (t, until, answer)
        return answer

    def next_open(self, t: datetime) -> datetime | None:
        memo = self._next  # one read: another thread may replace it meanwhile
        if memo is not None and t >= memo[0]:
            _t0, until, answer, last = memo
            if until is not None and t < until:
                return answer
            if answer is None and last is not None and _last_day(self.tz, t) == last:
                return None
        answer = None
        for a, _b in _open_spans(self.hours, self.tz, t, self.spans):
            answer = max(a, t).astimezone(UTC)
            break
        if answer is None:
            last = _last_day(self.tz, t)
            # None until the horizon reaches the day after `last`: the instant t + HORIZON
            # turns to local day `last`, less HORIZON (no `_last_day` to work out till then).
            self._next = (t, _midnight(self.tz, last) - HORIZON, None, last)
        elif answer > t:
            self._next = (t, answer, answer, None)
        return answer


def _midnight(tz: ZoneInfo, day: date) -> datetime:
    """The first instant of local `day`, in UTC: where the clocks jump over midnight, the jump
    (fold 0 reads a missing wall time with the offset before it); where midnight happens twice,
    the first time."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
