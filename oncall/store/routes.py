"""What became of each stored event: claimed for routing once, and a record per rule it
matched (`event_routes`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from oncall.core.models import Event
from oncall.store.connection import Connection, as_datetime, skip_locked
from oncall.store.events import COLUMNS, event_from_row


def claim_unrouted(conn: Connection, limit: int = 200) -> list[Event]:
    rows = conn.fetchall(
        skip_locked(conn, f"SELECT id, {COLUMNS} FROM events WHERE routed_at IS NULL ORDER BY id LIMIT ?"),
        (limit,),
    )
    return [event_from_row(r) for r in rows]


def mark_routed(conn: Connection, event_id: int, now: datetime) -> None:
    conn.execute("UPDATE events SET routed_at = ? WHERE id = ?", (now, event_id))


def mark_routed_many(conn: Connection, event_ids: list[int], now: datetime) -> None:
    """`mark_routed` for a batch of events, in one statement per 500."""
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        conn.execute(f"UPDATE events SET routed_at = ? WHERE id IN ({marks})", (now, *chunk))


Route = tuple[int, str, str, int | None, str | None, datetime]  # record_route's arguments


def record_routes(conn: Connection, records: list[Route]) -> None:
    """`record_route` for many, in one statement."""
    if records:
        conn.executemany(
            "INSERT INTO event_routes (event_id, rule, action, incident_id, note, routed_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            records,
        )


def record_route(
    conn: Connection,
    event_id: int,
    rule: str,
    action: str,
    incident_id: int | None,
    note: str | None,
    now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO event_routes (event_id, rule, action, incident_id, note, routed_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (event_id, rule, action, incident_id, note, now),
    )


@dataclass(frozen=True, slots=True)
class RouteRow:
    event_id: int
    rule: str
    action: str
    note: str | None
    routed_at: datetime
    summary: str


def maintenance_routes(conn: Connection, limit: int = 100) -> list[RouteRow]:
    """Events stored during a maintenance window (listed, nobody paged), newest first."""
    rows = conn.fetchall(
        "SELECT r.event_id, r.rule, r.action, r.note, r.routed_at, e.summary FROM event_routes r"
        " JOIN events e ON e.id = r.event_id WHERE r.action = 'maintenance' ORDER BY r.event_id DESC LIMIT ?",
        (limit,),
    )
    return [RouteRow(int(r[0]), r[1], r[2], r[3], as_datetime(r[4]), r[5]) for r in rows]
