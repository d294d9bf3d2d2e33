"""Named timers (the morning digest) and the earliest time any timer falls due (incidents,
named timers, promises, lapsed page claims)."""

from __future__ import annotations

from datetime import datetime

from oncall.store.connection import Connection, Row, as_datetime, skip_locked
from oncall.store.pages import QUEUE_LEASE

# The earliest due time of each kind, in one statement (one round trip on PostgreSQL).
_DUE = (
    "SELECT (SELECT MIN(wake_at) FROM incidents WHERE wake_at IS NOT NULL),"
    " (SELECT MIN(due) FROM timers),"
    " (SELECT MIN(sent_at) FROM pages WHERE state = 'queued'),"
    " (SELECT MIN(wake_at) FROM promises WHERE wake_at IS NOT NULL)"
)
_CLAIMABLE = " EXISTS (SELECT 1 FROM pages WHERE state = 'pending' OR (state = 'queued' AND sent_at < ?))"


def next_due(conn: Connection) -> datetime | None:
    """The earliest time any timer (incident, named or promise) falls due."""
    return _earliest(conn.fetchone(_DUE))


def ahead(conn: Connection, now: datetime) -> tuple[datetime | None, bool]:
    """`next_due`, and whether any page waits to be claimed at `now` (`claim_pending_pages`
    would take one): what the scheduler must do next, read in the transaction that just
    routed, rather than by a transaction of its own for each."""
    row = conn.fetchone(_DUE + "," + _CLAIMABLE, (now - QUEUE_LEASE,))
    assert row is not None
    return _earliest(row), bool(row[4])


def _earliest(row: Row | None) -> datetime | None:
    if row is None:
        return None
    times = [as_datetime(v) for v in (row[0], row[1], row[3]) if v is not None]
    if row[2] is not None:
        times.append(as_datetime(row[2]) + QUEUE_LEASE)  # when a dead claim may be taken again
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
