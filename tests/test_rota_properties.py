"""Properties of rota resolution around every DST change of 2026-2030 in four zones.

Each example picks a real clock change (Madrid, New York, Adelaide, London) and builds rotas
whose handoffs and windows sit near it, then checks what a rota owner relies on: turns tile
time, handoffs happen at the wall time (or at the jump when that time does not exist), a
whole-day window on a DST day lasts 23 or 25 hours, `on_call` agrees with `shifts` and with a
slow step-by-step reference, and overrides always win.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.core.calendar import local_to_utc
from oncall.core.models import ActiveWindow, Handoff, Layer, Override, Rota, Rotation, Window
from oncall.core.rota import Shift, gaps, on_call, shifts

ZONES = ("Europe/Madrid", "America/New_York", "Australia/Adelaide", "Europe/London")
MEMBERS = ("ana", "luis", "marta", "pablo")


def _transitions(zone: ZoneInfo) -> list[datetime]:
    """Every UTC instant in 2026-2030 where `zone` changes its offset."""
    found: list[datetime] = []
    t = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(hours=1)
    offset = t.astimezone(zone).utcoffset()
    while t.year < 2031:
        nxt = t + step
        if nxt.astimezone(zone).utcoffset() != offset:
            lo, hi = t, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
            offset = nxt.astimezone(zone).utcoffset()
        t = nxt
    return found


TRANSITIONS = [(ZoneInfo(z), t) for z in ZONES for t in _transitions(ZoneInfo(z))]


def test_every_zone_changes_twice_a_year() -> None:
    for z in ZONES:
        assert len([t for zone, t in TRANSITIONS if zone.key == z]) == 10


def wall_minute(zone: ZoneInfo, t: datetime) -> int:
    w = t.astimezone(zone)
    return w.hour * 60 + w.minute


def exists(zone: ZoneInfo, wall: datetime) -> bool:
    return wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


@st.composite
def near_minute(draw: st.DrawFn, zone: ZoneInfo, t: datetime) -> int:
    """A minute of the day, often close to the clock change's wall time."""
    if draw(st.booleans()):
        return (wall_minute(zone, t - timedelta(seconds=1)) + draw(st.integers(-90, 90))) % 1440
    return draw(st.integers(0, 95)) * 15


@st.composite
def rotations(draw: st.DrawFn, allow_duration: bool = True) -> Rotation:
    kind = draw(
        st.sampled_from(
            ["daily", "weekly", "days", "duration"] if allow_duration else ["daily", "weekly", "days"]
        )
    )
    if kind == "daily":
        return Rotation("daily", 1)
    if kind == "weekly":
        return Rotation("weekly", 7)
    if kind == "days":
        return Rotation("days", draw(st.integers(2, 4)))
    return Rotation("duration", every=timedelta(hours=draw(st.sampled_from([6, 8, 12]))))


@st.composite
def layers(draw: st.DrawFn, zone: ZoneInfo, t: datetime, name: str, windows: bool) -> Layer:
    rotation = draw(rotations())
    weekday = draw(st.integers(0, 6)) if rotation.kind == "weekly" else None
    members = tuple(draw(st.permutations(MEMBERS))[: draw(st.integers(1, 4))])
    start = t.astimezone(zone).date() - timedelta(days=draw(st.integers(-2, 12)))
    active = None
    if windows and draw(st.booleans()):
        active = tuple(
            ActiveWindow(d, Window(min(a, b), max(a, b) if a != b else 1440))
            for d, a, b in draw(
                st.lists(
                    st.tuples(st.integers(0, 6), near_minute(zone, t), near_minute(zone, t)),
                    min_size=1,
                    max_size=5,
                )
            )
        )
    return Layer(name, members, rotation, Handoff(draw(near_minute(zone, t)), weekday), start, active)


@st.composite
def rotas(draw: st.DrawFn) -> tuple[Rota, datetime]:
    zone, t = draw(st.sampled_from(TRANSITIONS))
    n = draw(st.integers(1, 3))
    stack = tuple(draw(layers(zone, t, f"layer{i}", windows=i > 0 or draw(st.booleans()))) for i in range(n))
    overrides = tuple(
        Override(
            draw(st.sampled_from(MEMBERS)),
            t + timedelta(minutes=a),
            t + timedelta(minutes=a + length),
        )
        for a, length in draw(st.lists(st.tuples(st.integers(-3000, 3000), st.integers(1, 1500)), max_size=3))
    )
    return Rota("r", zone, stack, overrides), t


# ---------------------------------------------------------------------------------------------
# A slow reference: walks turns one by one and checks windows day by day.


def ref_turn(layer: Layer, zone: ZoneInfo, t: datetime) -> str | None:
    first = datetime.combine(layer.start, time())
    if layer.handoff.weekday is not None:
        first += timedelta(days=(layer.handoff.weekday - first.weekday()) % 7)
    first += timedelta(minutes=layer.handoff.minute)
    start = local_to_utc(first, zone)
    if t < start:
        return None
    k = 0
    if layer.rotation.every is not None:
        while start + (k + 1) * layer.rotation.every <= t:
            k += 1
    else:
        while local_to_utc(first + timedelta(days=(k + 1) * layer.rotation.days), zone) <= t:
            k += 1
    return layer.members[k % len(layer.members)]


def ref_active(layer: Layer, zone: ZoneInfo, t: datetime) -> bool:
    if layer.active is None:
        return True
    today = t.astimezone(zone).date()
    for day in (today - timedelta(days=1), today):
        midnight = datetime.combine(day, time())
        for aw in layer.active:
            if aw.weekday != day.weekday():
                continue
            a = local_to_utc(midnight + timedelta(minutes=aw.window.start), zone)
            b = local_to_utc(midnight + timedelta(minutes=aw.window.end), zone)
            if a <= t < b:
                return True
    return False


def ref_who(rota: Rota, t: datetime) -> str | None:
    for o in reversed(rota.overrides):
        if o.start <= t < o.end:
            return o.who
    for layer in reversed(rota.layers):
        if ref_active(layer, rota.timezone, t):
            who = ref_turn(layer, rota.timezone, t)
            if who is not None:
                return who
    return None


def containing(timeline: list[Shift], t: datetime) -> Shift | None:
    return next((s for s in timeline if s.start <= t < s.end), None)


# ---------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_always_active_turns_tile_time_and_pass_at_the_wall_time(data: st.DataObject) -> None:
    zone, t = data.draw(st.sampled_from(TRANSITIONS))
    rotation = data.draw(rotations(allow_duration=False))
    minute = data.draw(near_minute(zone, t))
    weekday = data.draw(st.integers(0, 6)) if rotation.kind == "weekly" else None
    members = MEMBERS[: data.draw(st.integers(2, 4))]
    start = t.astimezone(zone).date() - timedelta(days=data.draw(st.integers(0, 10)))
    rota = Rota("r", zone, (Layer("l", members, rotation, Handoff(minute, weekday), start),))
    lo, hi = t - timedelta(days=14), t + timedelta(days=14)

    timeline = shifts(rota, lo, hi)
    assert timeline[-1].end == hi
    assert gaps(rota, lo, hi) == ([] if timeline[0].start == lo else [(lo, timeline[0].start)])
    for a, b in pairwise(timeline):
        assert a.end == b.start
        assert members.index(b.person) == (members.index(a.person) + 1) % len(members)
    handoffs = [s.start for s in timeline[1:]]
    for h1, h2 in pairwise(handoffs):
        assert (h2.astimezone(zone).date() - h1.astimezone(zone).date()).days == rotation.days
    for h in handoffs:
        local = h.astimezone(zone)
        wall = datetime.combine(local.date(), time()) + timedelta(minutes=minute)
        if exists(zone, wall):
            assert local.replace(tzinfo=None) == wall and local.fold == 0  # the first occurrence
        else:  # skipped by the clocks: at the jump
            assert (h - timedelta(seconds=1)).astimezone(zone).utcoffset() != local.utcoffset()
            assert local.replace(tzinfo=None) > wall


@settings(max_examples=40, deadline=None)
@given(transition=st.sampled_from(TRANSITIONS), weeks=st.integers(1, 5))
def test_a_whole_day_window_on_a_dst_day_is_23_or_25_hours(
    transition: tuple[ZoneInfo, datetime], weeks: int
) -> None:
    zone, t = transition
    day = t.astimezone(zone).date()
    layer = Layer(
        "day",
        ("ana",),
        Rotation("weekly", 7),
        Handoff(0, 0),
        day - timedelta(weeks=weeks),
        (ActiveWindow(day.weekday(), Window(0, 1440)),),
    )
    shift = on_call(Rota("r", zone, (layer,)), t)
    assert shift is not None
    assert shift.start == datetime.combine(day, time(), tzinfo=zone)
    assert shift.end == datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    assert shift.end - shift.start in (timedelta(hours=23), timedelta(hours=25))


@settings(max_examples=100, deadline=None)
@given(built=rotas(), offsets=st.lists(st.integers(-4 * 86400, 4 * 86400), min_size=1, max_size=12))
def test_on_call_agrees_with_shifts_and_with_the_reference(
    built: tuple[Rota, datetime], offsets: list[int]
) -> None:
    rota, t0 = built
    lo, hi = t0 - timedelta(days=5), t0 + timedelta(days=5)
    timeline = shifts(rota, lo, hi)
    holes = gaps(rota, lo, hi)

    # shifts and gaps tile [lo, hi) exactly, with no overlap; neighbours are different people
    spans = sorted([(s.start, s.end) for s in timeline] + holes)
    assert spans[0][0] == lo and spans[-1][1] == hi
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in pairwise(spans))
    assert all(a.person != b.person for a, b in pairwise(timeline) if a.end == b.start)

    probes = [t0 + timedelta(seconds=s) for s in offsets]
    probes += [s.start for s in timeline] + [s.end - timedelta(microseconds=1) for s in timeline]
    for t in probes:
        expected = containing(timeline, t)
        got = on_call(rota, t)
        assert (got and got.person) == (expected and expected.person) == ref_who(rota, t)
        if got is not None and expected is not None:
            assert got.start == expected.start or (expected.start == lo and got.start < lo)
            assert got.end == expected.end or (expected.end == hi and got.end > hi)


@settings(max_examples=60, deadline=None)
@given(built=rotas(), where=st.floats(0, 1, exclude_max=True))
def test_overrides_always_win(built: tuple[Rota, datetime], where: float) -> None:
    rota, _ = built
    for o in rota.overrides:
        # Floor to whole microseconds: `timedelta * float` rounds, and 0.9999… of a minute
        # would land exactly on the override's (exclusive) end.
        t = o.start + timedelta(microseconds=int((o.end - o.start) // timedelta(microseconds=1) * where))
        winner = [x.who for x in rota.overrides if x.start <= t < x.end][-1]
        got = on_call(rota, t)
        assert got is not None and got.person == winner
