"""Parsers for the small value formats of the files: each takes the text the owner wrote and
returns a model value or raises `ValueError` with a message fit to show them."""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from oncall.core.calendar import local_to_utc
from oncall.core.durations import parse_clock
from oncall.core.models import DAYS, ActiveWindow, Handoff, Target, Window

_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
_SPAN = re.compile(r"\s*(\S+)\s*-\s*(\S+)\s*")


@cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def parse_timezone(text: str) -> ZoneInfo:
    try:
        if text.strip() != text or not text or text.startswith("/"):
            raise ValueError
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(text, _zones(), n=1)
        hint = f'did you mean "{close[0]}"?' if close else 'an IANA name such as "Europe/Madrid"'
        raise ValueError(f'unknown time zone "{text}" ({hint})') from None


def parse_language(text: str) -> str:
    if not _LANGUAGE.fullmatch(text):
        raise ValueError(f'"{text}" is not a language code (write e.g. "es", "en", "pt-BR")')
    return text


def parse_day(text: str) -> int:
    day = text.strip().lower()
    if day not in DAYS:
        close = difflib.get_close_matches(day, DAYS, n=1)
        hint = f'did you mean "{close[0]}"?' if close else f"days are {' '.join(DAYS)}"
        raise ValueError(f'"{text}" is not a day ({hint})')
    return DAYS.index(day)


def parse_window(text: str) -> Window:
    """`"09:00-14:00"`; the end may be `"24:00"`; a span past midnight is two spans."""
    m = _SPAN.fullmatch(text)
    if m is None:
        raise ValueError(f'"{text}" is not a time span (write "HH:MM-HH:MM", e.g. "09:00-14:00")')
    start = parse_clock(m.group(1), allow_24=False)
    end = parse_clock(m.group(2), allow_24=True)
    if end <= start:
        raise ValueError(
            f'"{text}" ends before it starts (a span past midnight is two: "…-24:00" and "00:00-…")'
        )
    return Window(start, end)


def parse_active(text: str) -> ActiveWindow:
    """`"fri 18:00-24:00"` or a whole day `"sat"`."""
    day, _, span = text.strip().partition(" ")
    weekday = parse_day(day)
    if not span.strip():
        return ActiveWindow(weekday, Window(0, 1440))
    try:
        return ActiveWindow(weekday, parse_window(span))
    except ValueError as exc:
        raise ValueError(f'{exc} in "{text}" (write e.g. "fri 18:00-24:00" or "sat")') from None


def parse_weekly_handoff(text: str) -> Handoff:
    """`"fri 18:00"`."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f'"{text}" is not a day and time (write e.g. "fri 18:00")')
    return Handoff(minute=parse_clock(parts[1]), weekday=parse_day(parts[0]))


def parse_date(text: str) -> date:
    """`"2026-12-24"`."""
    try:
        if len(text.strip()) == 10:
            return date.fromisoformat(text.strip())
    except ValueError:
        pass
    raise ValueError(f'"{text}" is not a date (write "YYYY-MM-DD", e.g. "2026-12-24")')


def parse_local_datetime(text: str) -> datetime:
    """`"2026-12-01 02:00"`: a wall time without zone; the file's timezone applies."""
    try:
        value = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        raise ValueError(
            f'"{text}" is not a date and time (write "YYYY-MM-DD HH:MM", e.g. "2026-12-01 02:00")'
        ) from None
    return value


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive local time in `tz`, made aware by the SPEC §2.2 rule the rota resolver uses: a
    time that occurs twice is its first occurrence; a time the clocks jump over is the first
    instant after the jump."""
    return local_to_utc(wall, tz).astimezone(tz)


def parse_target(text: str) -> Target:
    kind, sep, name = text.partition(":")
    if not sep or kind not in ("rota", "person") or not name.strip():
        raise ValueError(f'"{text}" is not a target (write "rota:NAME" or "person:ID")')
    return Target("rota" if kind == "rota" else "person", name.strip())
