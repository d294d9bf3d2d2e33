"""The gauges `/metrics` reads from the store at scrape time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oncall.core.incident import STATES
from oncall.store.connection import Connection, as_datetime

PAGE_STATES = ("pending", "queued", "sending")


def read_gauges(conn: Connection, now: datetime) -> dict[str, Any]:
    """What /metrics reports from the store at `now`: incidents by state, timers waiting and
    overdue, pages not yet sent, promises by state."""
    states: dict[str, int] = {s: 0 for s in STATES}
    for row in conn.fetchall("SELECT state, COUNT(*) FROM incidents WHERE data <> '{}' GROUP BY state"):
        states[str(row[0])] = int(row[1])
    timers = conn.fetchone("SELECT COUNT(*) FROM incidents WHERE wake_at IS NOT NULL")
    named = conn.fetchone("SELECT COUNT(*) FROM timers")
    overdue = conn.fetchone(
        "SELECT COUNT(*) FROM incidents WHERE wake_at IS NOT NULL AND wake_at <= ?", (now,)
    )
    oldest = conn.fetchone("SELECT wake_at FROM incidents WHERE wake_at IS NOT NULL ORDER BY wake_at LIMIT 1")
    pages = {s: 0 for s in PAGE_STATES}
    for row in conn.fetchall(
        "SELECT state, COUNT(*) FROM pages WHERE state IN ('pending', 'queued', 'sending') GROUP BY state"
    ):
        pages[str(row[0])] = int(row[1])
    promises = {"open": 0, "kept": 0, "broken": 0}
    for row in conn.fetchall("SELECT state, COUNT(*) FROM promises GROUP BY state"):
        promises[str(row[0])] = int(row[1])
    oldest_at = as_datetime(oldest[0]) if oldest is not None and oldest[0] is not None else None
    return {
        "states": states,
        "timers": (int(timers[0]) if timers else 0) + (int(named[0]) if named else 0),
        "overdue": int(overdue[0]) if overdue else 0,
        "overdue_seconds": max(0.0, (now - oldest_at).total_seconds()) if oldest_at else 0.0,
        "pages": pages,
        "promises": promises,
    }
