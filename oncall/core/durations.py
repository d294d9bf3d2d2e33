"""Durations ("90s", "1h30m", "3d") and clock times ("HH:MM") as the owner writes them.

Pure functions; each raises `ValueError` with a message that can be shown to a shop owner
as it is (the config loader prefixes it with the file and key path).
"""

from __future__ import annotations

import re
from datetime import timedelta

# Units in descending order, each at most once: "1h30m" yes, "30m1h" and "1h1h" no, so that a
# string has exactly one reading.
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_CLOCK = re.compile(r"(\d{2}):(\d{2})")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> timedelta:
    """`"90s"`, `"5m"`, `"2h"`, `"1h30m"`, `"3d"` -> timedelta. `"0s"` is zero."""
    m = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not text or m is None or not any(m.groups()):
        raise ValueError(
            f'"{text}" is not a duration (write a number and a unit d, h, m or s, e.g. "90s", "5m", "1h30m")'
        )
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(td: timedelta) -> str:
    """The inverse of `parse_duration`: 5400 s -> `"1h30m"`, zero -> `"0s"`.

    Sub-second parts are dropped; a negative duration is written with a leading "-".
    """
    total = int(td.total_seconds())
    if total == 0:
        return "0s"
    sign, total = ("-", -total) if total < 0 else ("", total)
    parts = []
    for unit, size in _UNITS:
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def parse_clock(text: str, allow_24: bool = False) -> int:
    """`"HH:MM"` -> minutes since local midnight. `"24:00"` (= 1440) only when `allow_24`,
    i.e. where the time is the end of a span."""
    m = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f'"{text}" is not a clock time (write "HH:MM", e.g. "09:00" or "18:30")')
    hours, minutes = int(m.group(1)), int(m.group(2))
    if hours == 24 and minutes == 0:
        if allow_24:
            return 1440
        raise ValueError(f'"{text}" is only allowed as the end of a span (write "00:00" for a start)')
    if hours > 23 or minutes > 59:
        raise ValueError(f'"{text}" is not a clock time (hours 00-23, minutes 00-59)')
    return hours * 60 + minutes
