"""What the closed-hours report reads (`core.report`): the incidents opened in a span and the
promises made in it."""

from __future__ import annotations

from datetime import datetime

from oncall.core.incident import Incident
from oncall.core.promises import Promise
from oncall.store import promises
from oncall.store.codec import incident_from_json
from oncall.store.connection import Connection


def incidents_opened(conn: Connection, start: datetime, end: datetime) -> list[Incident]:
    """Incidents opened in [start, end), without their events (the report counts none)."""
    rows = conn.fetchall(
        "SELECT id, data FROM incidents"
        " WHERE created_at >= ? AND created_at < ? AND data <> '{}' ORDER BY id",
        (start, end),
    )
    return [incident_from_json(int(r[0]), r[1], "[]") for r in rows]


def figures(conn: Connection, start: datetime, end: datetime) -> tuple[list[Incident], list[Promise]]:
    return incidents_opened(conn, start, end), promises.made_between(conn, start, end)
