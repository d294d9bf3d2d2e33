"""`oncall rota show [NAME] [--weeks N]` and `oncall rota ics NAME [--weeks N]`.

`show` prints each rota's shifts from the one on call now to N weeks ahead as a table that fits
80 columns, in the rota's timezone. `ics` writes the same shifts as iCalendar (one VEVENT per
shift, times in UTC, a UID that stays the same as long as the shift does) for phone calendars.
`table` and `calendar` are pure; `run` reads the clock, the environment and the files.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, Timezone

from oncall.clock import system_clock
from oncall.commands.who import display_name, load, local_time, unknown_rota
from oncall.core.models import Person, Rota
from oncall.core.rota import Shift, on_call, shifts
from oncall.settings import Settings

_WHO_WIDTH = 24


def upcoming(rota: Rota, now: datetime, weeks: int) -> list[Shift]:
    """The shifts overlapping [now, now + weeks), the first and last shown whole rather than cut
    at the range's edges."""
    end = now + timedelta(weeks=weeks)
    found = shifts(rota, now, end)
    if not found:
        return found
    current = on_call(rota, found[0].start)
    if current is not None:
        found[0] = current
    last = on_call(rota, found[-1].end - timedelta(microseconds=1))
    if last is not None:
        found[-1] = Shift(found[-1].person, found[-1].start, last.end, found[-1].layer)
    return found


def table(rota: Rota, people: Mapping[str, Person], found: list[Shift], now: datetime) -> list[str]:
    """`oncall rota show` for one rota: a title line, a header, one row per shift."""
    tz = rota.timezone
    lines = [f"{rota.name} ({tz.key})"]
    if not found:
        return [*lines, "  nobody is on call in this period"]
    rows = [
        (
            local_time(s.start, tz, now),
            local_time(s.end, tz, now),
            _fit(display_name(people, s.person), _WHO_WIDTH),
            s.layer,
        )
        for s in found
    ]
    w0 = max(len("from"), *(len(r[0]) for r in rows))
    w1 = max(len("until"), *(len(r[1]) for r in rows))
    w2 = max(len("who"), *(len(r[2]) for r in rows))
    for row in [("from", "until", "who", "layer"), *rows]:
        lines.append(f"  {row[0]:<{w0}}  {row[1]:<{w1}}  {row[2]:<{w2}}  {row[3]}".rstrip())
    return lines


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def calendar(
    rota: Rota, people: Mapping[str, Person], found: list[Shift], stamp: datetime, weeks: int = 4
) -> bytes:
    """The shifts as an iCalendar file. A shift's UID is derived from the rota, the person and
    the start, so re-importing an unchanged rota updates events instead of duplicating them.
    Without shifts it is still a valid calendar (RFC 5545 wants at least one component): the
    rota's VTIMEZONE alone, so a subscribed phone calendar shows an empty rota, not an error."""
    cal = Calendar()
    cal.add("prodid", "-//oncall//rota//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"On call: {rota.name}")
    cal.add("x-wr-timezone", rota.timezone.key)
    for s in found:
        name = display_name(people, s.person)
        ev = Event()
        key = f"{rota.name}|{s.person}|{s.start.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        ev.add("uid", hashlib.sha256(key.encode()).hexdigest()[:32] + "@oncall")
        ev.add("dtstamp", stamp.astimezone(UTC))
        ev.add("dtstart", s.start.astimezone(UTC))
        ev.add("dtend", s.end.astimezone(UTC))
        ev.add("summary", f"On call: {name} ({rota.name})")
        ev.add("description", f"{name} is on call for rota {rota.name} ({s.layer}).")
        cal.add_component(ev)
    if not found:
        first = stamp.astimezone(rota.timezone).date()
        cal.add_component(
            Timezone.from_tzinfo(rota.timezone, rota.timezone.key, first, first + timedelta(weeks=weeks))
        )
    result: bytes = cal.to_ical()
    return result


def run(args: argparse.Namespace) -> int:
    weeks: int = args.weeks
    if weeks < 1:
        print("error: --weeks must be 1 or more", file=sys.stderr)
        return 2
    config = load(Settings())
    if config is None:
        return 1
    name: str | None = args.name
    if name is not None and name not in config.rotas:
        print(f"error: {unknown_rota(config, name)}", file=sys.stderr)
        return 1
    now = system_clock()
    if args.rota_command == "ics":
        assert name is not None, "argparse requires NAME for ics"
        rota = config.rotas[name]
        found = upcoming(rota, now, weeks)
        if not found:
            print(f"warning: rota {name} has no shifts in the next {weeks} weeks", file=sys.stderr)
        sys.stdout.write(calendar(rota, config.people, found, now, weeks).decode())
        return 0
    blocks = [
        "\n".join(table(config.rotas[n], config.people, upcoming(config.rotas[n], now, weeks), now))
        for n in ([name] if name is not None else sorted(config.rotas))
    ]
    print("\n\n".join(blocks) if blocks else "no rotas: add NAME.toml files to the rotas directory")
    return 0
