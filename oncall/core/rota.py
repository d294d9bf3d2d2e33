"""Who is on call at t: rotations, layers, active windows and overrides, correct across DST.

Pure: every function takes aware datetimes and returns `Shift`s whose `start`/`end` are aware
datetimes **in UTC** (convert with `.astimezone(rota.timezone)` to show them).

How a rota resolves (SPEC §2.2):

- A layer's turns pass at the handoff's local wall time: a weekly turn across a DST change lasts
  167 or 169 hours. Members take turns in order. The first turn starts at the first handoff on or
  after the layer's `start` date (on the handoff weekday for weekly rotations); before it the
  layer covers nobody, so a rota that starts next Friday has nobody on call this week rather than
  someone who was never told. A sub-day rotation (`"12h"`) steps in absolute time from that
  first handoff.
- `active` windows are local wall times too: `"sat"` covers the whole local Saturday, 23 or 25
  hours on a DST day. Outside its windows a layer covers nobody.
- Later layers override earlier ones wherever they are active; overrides beat every layer (of
  two overlapping overrides, the one listed later wins).
- A wall time the clocks jump over happens at the first instant after the jump; one that occurs
  twice happens at its first occurrence (`oncall.core.calendar.local_to_utc`).
- Adjacent spans of the same person are one shift; its `layer` is that of its first span
  ("override" for an override).

Nothing is searched further than `HORIZON` from the instant asked about: a shift that runs on
for more than that (a one-person, always-active layer) is reported as ending there.

Speed: `on_call` computes a layer's turn and window arithmetically from the wall time of t and
corrects by at most a step or two near a DST change; resolved edge instants are memoised per
rota (by identity), which callers cannot observe. On top of that, `on_call` keeps the resolved
shifts of the 28-day blocks (fixed in UTC) it has been asked about, a bounded number per rota,
and answers from them by bisection; a shift that touches its block's edge may run on into the
next block, so it is found by walking pieces as before.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from oncall.core.calendar import local_to_utc
from oncall.core.models import Layer, Override, Rota

HORIZON = timedelta(days=366)
OVERRIDE = "override"

_PAST = datetime(1, 1, 2, tzinfo=UTC)
_FUTURE = datetime(9999, 12, 30, tzinfo=UTC)
_WEEK = timedelta(days=7)
_INSTANT = timedelta(microseconds=1)
_EPOCH_MONDAY = datetime(2000, 1, 3)  # a Monday: week numbers count from it
_MEMO_LIMIT = 4096
_BLOCK = timedelta(days=28)
_BLOCK_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)
_BLOCKS_KEPT = 64  # per rota: about five years of blocks
_BLOCKS_FROM = datetime(1900, 1, 1, tzinfo=UTC)  # outside these, on_call walks pieces only
_BLOCKS_TO = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Shift:
    """`person` covers [start, end) (UTC); `layer` is the layer's name or "override"."""

    person: str
    start: datetime
    end: datetime
    layer: str


# ---------------------------------------------------------------------------------------------
# Periodic wall-time edges, resolved to instants


class _Edges:
    """A sequence of instants B(j), j in Z, each the resolution of a wall time W(j) that grows
    with j. `index(t)` is the j with B(j) <= t < B(j+1), found from t's wall time and then
    corrected, since near a DST change wall order and instant order may disagree by a step.

    `guess` takes t as an aware datetime in the rota's zone: subtracting two datetimes that
    share a tzinfo is wall-clock arithmetic in Python, which is what the guess needs, and it
    saves a `replace(tzinfo=None)` per call."""

    __slots__ = ("_cache", "_guess", "_tz", "_wall")

    def __init__(
        self, tz: ZoneInfo, wall: Callable[[int], datetime], guess: Callable[[datetime], int]
    ) -> None:
        self._tz = tz
        self._wall = wall
        self._guess = guess
        self._cache: dict[int, datetime] = {}

    def at(self, j: int) -> datetime:
        b = self._cache.get(j)
        if b is None:
            if len(self._cache) > _MEMO_LIMIT:
                self._cache.clear()
            b = self._cache[j] = local_to_utc(self._wall(j), self._tz)
        return b

    def index(self, t: datetime, local: datetime) -> int:
        """`local` is t in the rota's zone."""
        j = self._guess(local)
        at = self.at
        while at(j + 1) <= t:
            j += 1
        while at(j) > t:
            j -= 1
        return j


def _turn_edges(layer: Layer, tz: ZoneInfo) -> tuple[_Edges | None, datetime, timedelta | None]:
    """Turn boundaries of a calendar rotation (daily, weekly, "3d"), or for a sub-day duration
    rotation the first handoff instant and the step."""
    first = datetime.combine(layer.start, datetime.min.time())
    if layer.handoff.weekday is not None:
        first += timedelta(days=(layer.handoff.weekday - first.weekday()) % 7)
    first += timedelta(minutes=layer.handoff.minute)
    if layer.rotation.kind == "duration":
        assert layer.rotation.every is not None, "a duration rotation has a step"
        return None, local_to_utc(first, tz), layer.rotation.every
    period = timedelta(days=layer.rotation.days)

    first_local = first.replace(tzinfo=tz)

    def wall(j: int) -> datetime:
        return first + j * period

    def guess(local: datetime) -> int:
        return (local - first_local) // period

    return _Edges(tz, wall, guess), local_to_utc(first, tz), None


def _active_edges(layer: Layer, tz: ZoneInfo) -> tuple[_Edges, tuple[bool, ...]] | bool:
    """The layer's active windows as periodic on/off edges, or a constant when it is always
    (True) or never (False) active. Adjacent windows merge, across the week's end too, so
    "fri 18:00-24:00" + "sat" + "sun" + "mon 00:00-09:00" is one span with two edges."""
    if layer.active is None:
        return True
    week = 7 * 1440
    spans = sorted(
        (a.weekday * 1440 + a.window.start, a.weekday * 1440 + a.window.end)
        for a in layer.active
        if a.window.end > a.window.start
    )
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if not merged:
        return False
    if merged[0][0] == 0 and merged[-1][1] >= week and len(merged) > 1:
        merged[0][0] = merged[-1][0] - week  # wraps: Sunday night runs into Monday morning
        merged.pop()
    if merged[0][1] - merged[0][0] >= week:
        return True
    toggles = sorted([(a % week, True) for a, _ in merged] + [(b % week, False) for _, b in merged])
    positions = [timedelta(minutes=p) for p, _ in toggles]
    states = tuple(s for _, s in toggles)
    n = len(positions)

    epoch_local = _EPOCH_MONDAY.replace(tzinfo=tz)

    def wall(j: int) -> datetime:
        weeks, m = divmod(j, n)
        return _EPOCH_MONDAY + weeks * _WEEK + positions[m]

    def guess(local: datetime) -> int:
        since = local - epoch_local
        weeks = since // _WEEK
        return weeks * n + bisect_right(positions, since - weeks * _WEEK) - 1

    return _Edges(tz, wall, guess), states


class _CompiledLayer:
    __slots__ = ("active", "every", "first", "members", "name", "states", "turns")

    def __init__(self, layer: Layer, tz: ZoneInfo) -> None:
        self.name = layer.name
        self.members = layer.members
        self.turns, self.first, self.every = _turn_edges(layer, tz)
        act = _active_edges(layer, tz)
        self.active: _Edges | bool
        self.states: tuple[bool, ...] = ()
        if isinstance(act, bool):
            self.active = act
        else:
            self.active, self.states = act

    def state(self, t: datetime, local: datetime) -> tuple[str | None, datetime, datetime]:
        """Who this layer puts on call at t (None: nobody), and the span around t where that
        holds. `local` is t in the rota's zone."""
        if self.active is False or not self.members:
            return None, _PAST, _FUTURE
        lo, hi = _PAST, _FUTURE
        if self.active is not True:
            j = self.active.index(t, local)
            lo, hi = self.active.at(j), self.active.at(j + 1)
            if not self.states[j % len(self.states)]:
                return None, lo, hi
        if t < self.first:
            return None, lo, (hi if hi < self.first else self.first)
        n = len(self.members)
        if self.every is not None:
            k = (t - self.first) // self.every
            a, b = self.first + k * self.every, self.first + (k + 1) * self.every
        else:
            assert self.turns is not None
            k = self.turns.index(t, local)
            a, b = self.turns.at(k), self.turns.at(k + 1)
        if n == 1:
            a, b = self.first, _FUTURE  # one member: the turn never passes
        return self.members[k % n], (a if a > lo else lo), (b if b < hi else hi)


def _override_timeline(overrides: tuple[Override, ...]) -> list[tuple[datetime, datetime, str]]:
    """Overrides flattened to disjoint spans, the later-listed one winning where two overlap."""
    cuts = sorted({o.start for o in overrides} | {o.end for o in overrides})
    spans: list[tuple[datetime, datetime, str]] = []
    for a, b in pairwise(cuts):
        who = None
        for o in overrides:
            if o.start <= a and b <= o.end:
                who = o.who
        if who is None:
            continue
        if spans and spans[-1][1] == a and spans[-1][2] == who:
            spans[-1] = (spans[-1][0], b, who)
        else:
            spans.append((a.astimezone(UTC), b.astimezone(UTC), who))
    return spans


class _Block:
    """The resolution of [lo, lo + _BLOCK): `shifts[i]` (None: nobody) from `starts[i]` to the
    next start, same person's adjacent spans merged, each clipped to the block."""

    __slots__ = ("hi", "lo", "shifts", "starts")

    def __init__(
        self, lo: datetime, hi: datetime, starts: list[datetime], shifts: list[Shift | None]
    ) -> None:
        self.lo, self.hi = lo, hi
        self.starts = starts
        self.shifts = shifts


class _CompiledRota:
    __slots__ = ("blocks", "layers", "ov_ends", "ov_starts", "ov_who", "rota", "tz")

    def __init__(self, rota: Rota) -> None:
        self.rota = rota  # keeps the rota alive, so its id() stays unique while memoised
        self.tz = rota.timezone
        self.layers = [_CompiledLayer(layer, rota.timezone) for layer in reversed(rota.layers)]
        timeline = _override_timeline(rota.overrides)
        self.ov_starts = [a for a, _, _ in timeline]
        self.ov_ends = [b for _, b, _ in timeline]
        self.ov_who = [w for _, _, w in timeline]
        self.blocks: dict[int, _Block] = {}

    def block(self, k: int) -> _Block:
        b = self.blocks.get(k)
        if b is None:
            lo = _BLOCK_EPOCH + k * _BLOCK
            hi = lo + _BLOCK
            pieces = _pieces(self.rota, lo, hi)
            b = _Block(
                lo,
                hi,
                [a for _, _, a, _ in pieces],
                [Shift(who, a, z, layer) if who is not None else None for who, layer, a, z in pieces],
            )
            if len(self.blocks) >= _BLOCKS_KEPT:
                self.blocks.clear()
            self.blocks[k] = b
        return b

    def piece(self, t: datetime) -> tuple[str | None, str, datetime, datetime]:
        """(person or None, layer, start, end): the resolution at t and the span around t
        where neither it nor anything above it changes."""
        lo, hi = _PAST, _FUTURE
        i = bisect_right(self.ov_starts, t) - 1
        if i >= 0 and t < self.ov_ends[i]:
            return self.ov_who[i], OVERRIDE, self.ov_starts[i], self.ov_ends[i]
        if i >= 0:
            lo = self.ov_ends[i]
        if i + 1 < len(self.ov_starts):
            hi = self.ov_starts[i + 1]
        local = t.astimezone(self.tz)
        for layer in self.layers:
            who, a, b = layer.state(t, local)
            if a > lo:
                lo = a
            if b < hi:
                hi = b
            if who is not None:
                return who, layer.name, lo, hi
        return None, "", lo, hi


_memo: dict[int, _CompiledRota] = {}


def _compiled(rota: Rota) -> _CompiledRota:
    c = _memo.get(id(rota))
    if c is None or c.rota is not rota:
        if len(_memo) > 256:
            _memo.clear()
        c = _memo[id(rota)] = _CompiledRota(rota)
    return c


# ---------------------------------------------------------------------------------------------
# Public API


def on_call(rota: Rota, t: datetime) -> Shift | None:
    """The shift covering t, or None when nobody is on call. Its `end` is when this person's
    cover ends ("until"), its `start` when it began; both are searched at most `HORIZON` away."""
    c = _compiled(rota)
    t = t.astimezone(UTC)
    if _BLOCKS_FROM <= t < _BLOCKS_TO:
        block = c.block((t - _BLOCK_EPOCH) // _BLOCK)
        found = block.shifts[bisect_right(block.starts, t) - 1]
        if found is None or (found.start != block.lo and found.end != block.hi):
            return found  # inside its block: the whole shift, far within HORIZON
    who, layer, a, b = c.piece(t)
    if who is None:
        return None
    floor, ceiling = t - HORIZON, t + HORIZON
    while b < ceiling:
        nxt, _, _, b2 = c.piece(b)
        if nxt != who:
            break
        b = b2
    while a > floor:
        prev, prev_layer, a2, _ = c.piece(a - _INSTANT)
        if prev != who:
            break
        a, layer = a2, prev_layer
    return Shift(who, max(a, floor), min(b, ceiling), layer)


def next_on_call(rota: Rota, t: datetime) -> Shift | None:
    """The next shift after the one covering t (another person), or the first shift after t
    when nobody is on call at t. None when nobody comes within `HORIZON`."""
    c = _compiled(rota)
    t = t.astimezone(UTC)
    current = on_call(rota, t)
    cursor = current.end if current is not None else t
    ceiling = t + HORIZON
    while cursor < ceiling:
        who, _, _, b = c.piece(cursor)
        if who is not None:
            return on_call(rota, cursor)
        cursor = b
    return None


def _pieces(rota: Rota, start: datetime, end: datetime) -> list[tuple[str | None, str, datetime, datetime]]:
    c = _compiled(rota)
    out: list[tuple[str | None, str, datetime, datetime]] = []
    t = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while t < end:
        who, layer, _, b = c.piece(t)
        assert b > t, "each piece ends after it starts"
        b = min(b, end)
        if out and out[-1][0] == who:
            out[-1] = (who, out[-1][1], out[-1][2], b)
        else:
            out.append((who, layer, t, b))
        t = b
    return out


def shifts(rota: Rota, start: datetime, end: datetime) -> list[Shift]:
    """The resolved timeline within [start, end), clipped to it: no overlap, the same person's
    adjacent spans merged, gaps left out."""
    return [Shift(who, a, b, layer) for who, layer, a, b in _pieces(rota, start, end) if who is not None]


def gaps(rota: Rota, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The maximal spans within [start, end) when nobody is on call, clipped to it."""
    return [(a, b) for who, _, a, b in _pieces(rota, start, end) if who is None]
