"""Named timers (the morning digest) and the earliest time any timer falls due (incidents,
named timers, promises, lapsed page claims)."""

from __future__ import annotations

from datetime import datetime

from oncall.store.connection import Connection, as_datetime, skip_locked
from oncall.store.pages import QUEUE_LEASE


def next_due(conn: Connection) -> datetime | None:
    """The earliest time any timer (incident, named or promise) falls due."""
    a = conn.fetchone("SELECT MIN(wake_at) FROM incidents WHERE wake_at IS NOT NULL")
    b = conn.fetchone("SELECT MIN(due) FROM timers")
    c = conn.fetchone("SELECT MIN(sent_at) FROM pages WHERE state = 'queued'")
    d = conn.fetchone("SELECT MIN(wake_at) FROM promises WHERE wake_at IS NOT NULL")
    times = [as_datetime(r[0]) for r in (a, b, d) if r is not None and r[0] is not None]
    if c is not None and c[0] is not None:
        times.append(as_datetime(c[0]) + QUEUE_LEASE)  # when a dead claim may be taken again
    return min(times, default=None)


def set_timer(conn: Connection, name: str, due: datetime) -> None:
    """Schedules `name` at `due`, or earlier if it is already due sooner."""
    row = conn.fetchone("SELECT due FROM timers WHERE name = ?", (name,))
    if row is None:
        conn.execute("INSERT INTO timers (name, due) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, due))
    elif as_datetime(row[0]) > due:
        conn.execute("UPDATE timers SET due = ? WHERE name = ?", (due, name))


def take_timer(conn: Connection, name: str, now: datetime) -> datetime | None:
    """Removes and returns the due time of `name` if it is due at `now`."""
    row = conn.fetchone(skip_locked(conn, "SELECT due FROM timers WHERE name = ? AND due <= ?"), (name, now))
    if row is None:
        return None
    conn.execute("DELETE FROM timers WHERE name = ?", (name,))
    return as_datetime(row[0])
