"""WHEN on the command line (SPEC §6), one reading for `oncall who --at` and `oncall simulate --at`.

ISO 8601 (`2026-11-28T23:10`), in the shop's timezone unless it carries an offset. A wall time
the clocks skip is read as the first instant after the jump, one they repeat as its first
occurrence: the rota rule of SPEC §2.2, so that `who` and `simulate` agree about the same WHEN.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from oncall.core.calendar import local_to_utc

# Rotas, holidays and escalations are computed a year or more past WHEN; far-off years would
# overflow `datetime` there, and nobody plans a rota for them.
FIRST_YEAR, LAST_YEAR = 1970, 2999


def parse_when(text: str, tz: ZoneInfo) -> datetime:
    """The UTC instant of WHEN `text`; ValueError with a message for the owner when it is not one."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time such as 2026-11-28T23:10 or 2026-11-28T23:10+01:00"
        ) from None
    if not FIRST_YEAR <= when.year <= LAST_YEAR:
        raise ValueError(f"{text!r}: the year must be between {FIRST_YEAR} and {LAST_YEAR}")
    if when.tzinfo is None:
        return local_to_utc(when, tz)
    return when.astimezone(UTC)
