"""The one clock. oncall's root — `create_app()`, `oncall serve` and each CLI command — hands a
`Clock` to every part it builds (the service, the scheduler, the web layer, reassurance), and
each part asks it for now; nothing else reads the system time, so a test runs any part at
"Saturday 23:10" by passing a clock that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]  # an aware datetime in UTC


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)
