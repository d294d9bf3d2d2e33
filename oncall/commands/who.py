"""`oncall who [--at WHEN] [--rota NAME]`: who is on call, until when, and who is next.

    On call at Sat 28 Nov 2026 23:10 (Europe/Madrid)
    weekend         Ana García until Mon 30 Nov 09:00, next Luis Martín from Fri 4 Dec 18:00
    weekend-backup  nobody (next: Luis Martín from Fri 4 Dec 18:00)

Times are local to each rota's zone, with the weekday. `describe` is pure (`at` is an
argument); `run` reads the clock, the environment and the files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from oncall.clock import system_clock
from oncall.commands.when import parse_when
from oncall.config import ConfigError, load_config
from oncall.core.models import Config, Person
from oncall.core.rota import HORIZON, next_on_call, on_call
from oncall.settings import Settings

__all__ = ["describe", "display_name", "load", "local_time", "parse_when", "run", "unknown_rota"]


def local_time(t: datetime, tz: ZoneInfo, ref: datetime | None = None) -> str:
    """`Mon 30 Nov 09:00` in `tz`; the year is added when it is not the year of `ref` (always
    without `ref`)."""
    local = t.astimezone(tz)
    text = f"{local:%a} {local.day} {local:%b}"
    if ref is None or local.year != ref.astimezone(tz).year:
        text += f" {local.year}"
    return f"{text} {local:%H:%M}"


def display_name(people: Mapping[str, Person], pid: str) -> str:
    person = people.get(pid)
    return person.name if person is not None else pid


def load(settings: Settings) -> Config | None:
    """The configuration, or None after printing every problem as `error: …` on stderr."""
    try:
        return load_config(settings.rules_file, settings.rotas_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return None


def unknown_rota(config: Config, name: str) -> str:
    known = ", ".join(sorted(config.rotas)) or "there are none"
    return f'unknown rota "{name}" (known: {known})'


def describe(config: Config, names: Sequence[str], at: datetime) -> list[str]:
    """The lines `oncall who` prints for the rotas `names` at instant `at`."""
    shop_tz = config.rules.shop.timezone
    lines = [f"On call at {local_time(at, shop_tz)} ({shop_tz.key})"]
    width = max((len(n) for n in names), default=0)
    for name in names:
        rota = config.rotas[name]
        tz = rota.timezone

        def when(t: datetime, tz: ZoneInfo = tz) -> str:
            return local_time(t, tz, at)

        label = name.ljust(width) if tz == shop_tz else f"{name} ({tz.key})"
        now, nxt = on_call(rota, at), next_on_call(rota, at)
        upcoming = (
            f"{display_name(config.people, nxt.person)} from {when(nxt.start)}"
            if nxt is not None
            else "nobody within a year"
        )
        if now is None:
            lines.append(f"{label}  nobody (next: {upcoming})")
            continue
        until = "until further notice" if now.end >= at + HORIZON else f"until {when(now.end)}"
        lines.append(f"{label}  {display_name(config.people, now.person)} {until}, next {upcoming}")
    return lines


def run(args: argparse.Namespace) -> int:
    config = load(Settings())
    if config is None:
        return 1
    if args.rota is not None and args.rota not in config.rotas:
        print(f"error: --rota: {unknown_rota(config, args.rota)}", file=sys.stderr)
        return 1
    if args.at is None:
        at = system_clock()
    else:
        try:
            at = parse_when(args.at, config.rules.shop.timezone)
        except ValueError as exc:
            print(f"error: --at: {exc}", file=sys.stderr)
            return 1
    names = [args.rota] if args.rota is not None else sorted(config.rotas)
    if not names:
        print("no rotas: add NAME.toml files to the rotas directory")
        return 0
    print("\n".join(describe(config, names, at)))
    return 0
