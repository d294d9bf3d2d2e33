"""`rotas/people.toml` -> `Person`s and `rotas/NAME.toml` -> `Rota`s (SPEC §2.2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from oncall.config.errors import ConfigError, Problems, known_list
from oncall.config.reader import Table, read_toml, type_name
from oncall.config.values import (
    localize,
    parse_active,
    parse_date,
    parse_language,
    parse_local_datetime,
    parse_timezone,
    parse_weekly_handoff,
)
from oncall.core.durations import parse_clock, parse_duration
from oncall.core.models import ActiveWindow, Handoff, Layer, Override, Person, Rota, Rotation

PEOPLE_FILE = "people.toml"

_PERSON_ID = re.compile(r"[A-Za-z0-9_-]+")
_PHONE = re.compile(r"\+[1-9]\d{6,14}")
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{6,}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# A layer of one person needs no rotation; these stand in for the keys it may leave out.
_SOLO_ROTATION = Rotation("weekly", 7)
_SOLO_HANDOFF = Handoff(minute=0, weekday=0)
_SOLO_START = date(2000, 1, 3)  # a Monday


def label_for(rotas_dir: Path, file: Path) -> str:
    """`rotas/weekend.toml`: how the owner names the file, whatever the directory's full path."""
    return f"{rotas_dir.name}/{file.name}" if rotas_dir.name else file.name


# ---------------------------------------------------------------------------------------------
# people.toml


def read_people(path: Path, problems: Problems) -> dict[str, Person] | None:
    """The people of `path`, reporting problems; None when the file cannot be read at all."""
    data = read_toml(path, problems, missing="create it: everyone paged is a [person.ID] there")
    if data is None:
        return None
    top = Table(data, "", problems, ["person"])
    people: dict[str, Person] = {}
    entries = top.data.get("person", {})
    if not isinstance(entries, dict):
        top.report("person", f"must be [person.ID] tables, not {type_name(entries)}")
        return people
    if not entries:
        problems.add("person", 'names nobody (add a [person.ID] table with name = "…" for each person)')
    for pid, raw in entries.items():
        path_ = f"person.{pid}"
        if not _PERSON_ID.fullmatch(pid):
            problems.add(path_, f'"{pid}" is not a usable id (use letters, digits, "-" and "_", e.g. "ana")')
            continue
        if not isinstance(raw, dict):
            problems.add(path_, f"must be a table [person.{pid}], not {type_name(raw)}")
            continue
        person = _person(
            pid, Table(raw, path_, problems, ["name", "phone", "telegram", "slack", "email", "language"])
        )
        if person is not None:
            people[pid] = person
    return people


def _person(pid: str, t: Table) -> Person | None:
    name = t.text("name", required='the name shown in pages and on the status page, e.g. "Ana García"')
    phone = t.text("phone")
    if phone is not None and not _PHONE.fullmatch(phone):
        t.report(
            "phone",
            f'"{phone}" is not an E.164 number (write "+" country code and number, '
            'no spaces, e.g. "+34600111222")',
        )
        phone = None
    telegram = t.integer("telegram")
    if telegram == 0:
        t.report("telegram", "0 is not a Telegram id (send /start to the bot to learn yours)")
    slack = t.text("slack")
    if slack is not None and not _SLACK_ID.fullmatch(slack):
        t.report(
            "slack", f'"{slack}" is not a Slack member id (like "U012ABCDEF": profile → ⋮ → Copy member ID)'
        )
        slack = None
    email = t.text("email")
    if email is not None and not _EMAIL.fullmatch(email):
        t.report("email", f'"{email}" is not an e-mail address')
        email = None
    language = t.parsed("language", parse_language)
    if name is None:
        return None
    return Person(pid, name, phone=phone, telegram=telegram, slack=slack, email=email, language=language)


def load_people(path: Path) -> Mapping[str, Person]:
    """`rotas/people.toml` alone; raises ConfigError listing every problem."""
    problems = Problems(label_for(path.parent, path))
    people = read_people(path, problems)
    if problems or people is None:
        raise ConfigError(problems.items)
    return MappingProxyType(people)


# ---------------------------------------------------------------------------------------------
# NAME.toml


def read_rota(
    path: Path,
    name: str,
    problems: Problems,
    people: Mapping[str, Person] | None,
    default_tz: ZoneInfo | None = None,
) -> Rota | None:
    """The rota of `path`; members are checked against `people` unless that is None (people.toml
    unreadable: its own error says so). `default_tz` (the shop's) applies when the file has none."""
    data = read_toml(path, problems)
    if data is None:
        return None
    top = Table(data, "", problems, ["timezone", "layer", "override"])
    if "timezone" in top or default_tz is None:
        tz = top.parsed(
            "timezone", parse_timezone, required='the IANA time zone of this rota, e.g. "Europe/Madrid"'
        )
    else:
        tz = default_tz
    layer_tables = top.tables("layer", ["name", "members", "rotation", "handoff", "start", "active"])
    override_tables = top.tables("override", ["who", "from", "to", "note"])
    if not layer_tables and not override_tables:
        problems.add(
            "layer", 'a rota naming nobody (add a [[layer]] with members = ["…"] from rotas/people.toml)'
        )
    layers = [_layer(i, t, people) for i, t in enumerate(layer_tables)]
    overrides = [_override(t, people, tz) for t in override_tables]
    if tz is None or None in layers or None in overrides:
        return None
    return Rota(
        name=name,
        timezone=tz,
        layers=tuple(x for x in layers if x is not None),
        overrides=tuple(x for x in overrides if x is not None),
    )


def _check_person(t: Table, where: str, pid: str, people: Mapping[str, Person] | None) -> bool:
    if people is not None and pid not in people:
        t.problems.add(
            where,
            f'unknown person "{pid}" {known_list(people, "people are [person.ID] in rotas/people.toml")}',
        )
        return False
    return True


def _layer(index: int, t: Table, people: Mapping[str, Person] | None) -> Layer | None:
    name = t.text("name") or f"layer {index + 1}"
    entries = t.texts("members", required='who takes turns, e.g. members = ["ana", "luis"]')
    members: list[str] = []
    ok = entries is not None
    if entries is not None and not entries:
        t.report("members", 'names nobody (list at least one person of rotas/people.toml, e.g. ["ana"])')
        ok = False
    for where, pid in entries or []:
        ok = _check_person(t, where, pid, people) and ok
        members.append(pid)

    many = len(members) > 1
    need = "required when a layer has more than one member"
    rotation = t.parsed(
        "rotation", _rotation, required=f'daily, weekly or a duration such as "3d"; {need}' if many else None
    )
    if rotation is None and "rotation" not in t and not many:
        rotation = _SOLO_ROTATION
    handoff: Handoff | None = None
    if rotation is not None:
        parse = parse_weekly_handoff if rotation.kind == "weekly" else _daily_handoff
        example = '"fri 18:00"' if rotation.kind == "weekly" else '"09:00"'
        handoff = t.parsed(
            "handoff", parse, required=f"when a turn passes, e.g. {example}; {need}" if many else None
        )
        if handoff is None and "handoff" not in t and not many:
            handoff = Handoff(0, 0) if rotation.kind == "weekly" else Handoff(0)
    start = _date(
        t, "start", required=f'the first day of the rotation, e.g. "2026-11-06"; {need}' if many else None
    )
    if start is None and "start" not in t and not many:
        start = _SOLO_START
    active: tuple[ActiveWindow, ...] | None = None
    spans = t.texts("active")
    if spans is not None:
        if not spans:
            t.report("active", 'is empty, so this layer is never on call (leave the key out for "always")')
            ok = False
        windows = [_parsed_at(t, where, text, parse_active) for where, text in spans]
        ok = ok and None not in windows
        active = tuple(w for w in windows if w is not None)
    if not ok or rotation is None or handoff is None or start is None:
        return None
    return Layer(name, tuple(members), rotation, handoff, start, active)


def _rotation(text: str) -> Rotation:
    if text == "daily":
        return Rotation("daily", 1)
    if text == "weekly":
        return Rotation("weekly", 7)
    try:
        every = parse_duration(text)
    except ValueError:
        raise ValueError(
            f'"{text}" is not a rotation (write daily, weekly or a duration such as "3d" or "12h")'
        ) from None
    if every.total_seconds() <= 0:
        raise ValueError(f'"{text}" is too short (a turn must last more than 0s)')
    if every.total_seconds() % 86400 == 0:
        return Rotation("days", every.days)
    return Rotation("duration", every=every)


def _daily_handoff(text: str) -> Handoff:
    try:
        return Handoff(parse_clock(text))
    except ValueError as exc:
        raise ValueError(f'{exc}; only a weekly rotation hands off on a day ("fri 18:00")') from None


def _parsed_at(t: Table, where: str, text: str, parse: Any) -> Any:
    try:
        return parse(text)
    except ValueError as exc:
        t.problems.add(where, str(exc))
        return None


def _date(t: Table, key: str, required: str | None = None) -> date | None:
    """A TOML date (`2026-11-06`) or the same in quotes."""
    value = t.data.get(key)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return t.parsed(key, parse_date, required)


def local_datetime(t: Table, key: str, tz: ZoneInfo | None, required: str) -> datetime | None:
    """`"2026-12-05 18:00"` (or a TOML local date-time) in `tz`, made aware."""
    value = t.data.get(key)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            t.report(key, 'must be a local time without offset, e.g. "2026-12-05 18:00"')
            return None
        wall: datetime | None = value
    else:
        wall = t.parsed(key, parse_local_datetime, required)
    if wall is None or tz is None:
        return None
    return localize(wall, tz)


def local_span(
    t: Table, tz: ZoneInfo | None, what: str, begins: str, ends: str
) -> tuple[datetime, datetime] | None:
    """`from` and `to` in `tz`, `to` after `from`; None after a problem. `begins` and `ends` say
    what a missing one is for; `what` names the span in the problem ("an override")."""
    start = local_datetime(t, "from", tz, required=begins)
    end = local_datetime(t, "to", tz, required=ends)
    if start is None or end is None:
        return None
    if end <= start:
        t.report("to", f"is not after from ({what} must end after it begins)")
        return None
    return start, end


def _override(t: Table, people: Mapping[str, Person] | None, tz: ZoneInfo | None) -> Override | None:
    who = t.text("who", required='the person on call instead, e.g. who = "luis"')
    if who is not None and not _check_person(t, t.at("who"), who, people):
        who = None
    span = local_span(
        t,
        tz,
        "an override",
        'when it begins, e.g. "2026-12-05 18:00"',
        'when it ends, e.g. "2026-12-07 09:00"',
    )
    note = t.text("note") or ""
    if who is None or span is None:
        return None
    return Override(who, *span, note)


def load_rota(
    path: Path, name: str, people: Mapping[str, Person] | None = None, default_tz: ZoneInfo | None = None
) -> Rota:
    """One rota file alone; raises ConfigError listing every problem."""
    problems = Problems(label_for(path.parent, path))
    rota = read_rota(path, name, problems, people, default_tz)
    if problems or rota is None:
        raise ConfigError(problems.items)
    return rota


def rota_files(rotas_dir: Path) -> dict[str, Path]:
    """Rota name (file stem) -> file, for every `*.toml` but people.toml, in name order.
    Hidden files are skipped: editors keep lock and backup files such as `.#weekend.toml`."""
    return {
        p.stem: p
        for p in sorted(rotas_dir.glob("*.toml"))
        if p.name != PEOPLE_FILE and not p.name.startswith((".", "#"))
    }
