"""Promises in the store (migration 0008): one row per incident and customer reassured, its
deadline, its state (open, kept, broken), its timer `wake_at`, and the claims of its `_late`
and `_resolved` messages (see `oncall.core.promises`, `oncall.service.promises`).

Every function takes the `Connection` of a transaction. Promises several instances could race
for are read locked on PostgreSQL, always after their incident (as an ack or a resolve locks
them), so two writers never wait for each other in a circle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from oncall.core.customer_text import CustomerContact
from oncall.core.promises import Promise
from oncall.store.connection import Connection, Row, as_datetime

FollowUp = Literal["late", "resolved"]

_FIELDS = (
    "incident_id, customer, name, message, made_at, deadline, state, reminded_at, escalated_at,"
    " ticket, contacted_at, settled_at"
)


def _dt(value: Any) -> datetime | None:
    return as_datetime(value) if value is not None else None


def _from_row(r: Row) -> Promise:
    return Promise(
        incident_id=int(r[0]),
        customer=str(r[1]),
        name=str(r[2]),
        message=str(r[3]),
        made_at=as_datetime(r[4]),
        deadline=as_datetime(r[5]),
        state=r[6],
        reminded=r[7] is not None,
        escalated=r[8] is not None,
        ticket=r[9],
        contacted_at=_dt(r[10]),
        settled_at=_dt(r[11]),
    )


def _lock(conn: Connection, sql: str) -> str:
    return sql + " FOR UPDATE" if conn.dialect == "postgresql" else sql


def record(conn: Connection, p: Promise, contact: CustomerContact, wake_at: datetime | None) -> bool:
    """The promise a reassurance just made; False when this incident already promised this
    customer something (a replay of the same send)."""
    cur = conn.execute(
        "INSERT INTO promises (incident_id, customer, name, message, contact, ticket, made_at, deadline,"
        " state, wake_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)"
        " ON CONFLICT (incident_id, customer) DO NOTHING",
        (
            p.incident_id,
            p.customer,
            p.name,
            p.message,
            json.dumps(asdict(contact), ensure_ascii=False),
            p.ticket,
            p.made_at,
            p.deadline,
            wake_at,
        ),
    )
    return bool(cur.rowcount == 1)


def save(
    conn: Connection, p: Promise, wake_at: datetime | None, now: datetime, settled_by: str | None = None
) -> None:
    """Writes what the core decided about `p` at `now` (its state, reminder, escalation, timer)."""
    conn.execute(
        "UPDATE promises SET state = ?, settled_at = ?, settled_by = COALESCE(?, settled_by),"
        " contacted_at = ?, reminded_at = CASE WHEN ? THEN COALESCE(reminded_at, ?) END,"
        " escalated_at = CASE WHEN ? THEN COALESCE(escalated_at, ?) END, wake_at = ?"
        " WHERE incident_id = ? AND customer = ?",
        (
            p.state,
            p.settled_at,
            settled_by,
            p.contacted_at,
            p.reminded,
            now,
            p.escalated,
            now,
            wake_at,
            p.incident_id,
            p.customer,
        ),
    )


def due_incidents(conn: Connection, now: datetime, limit: int = 500) -> list[int]:
    """The incidents with a promise whose timer is due at `now`, the most overdue first. Not
    locked: the caller locks each incident, then its promises (`due_of`), in the order every
    other writer of promises takes them, so two never wait for each other."""
    rows = conn.fetchall(
        "SELECT incident_id, MIN(wake_at) AS first FROM promises WHERE wake_at <= ?"
        " GROUP BY incident_id ORDER BY first, incident_id LIMIT ?",
        (now, limit),
    )
    return [int(r[0]) for r in rows]


def due_of(conn: Connection, incident_id: int, now: datetime) -> list[Promise]:
    """The incident's promises due at `now`, locked (read again once the incident is held:
    another instance may have just handled them)."""
    sql = f"SELECT {_FIELDS} FROM promises WHERE incident_id = ? AND wake_at <= ? ORDER BY wake_at, customer"
    return [_from_row(r) for r in conn.fetchall(_lock(conn, sql), (incident_id, now))]


def next_due(conn: Connection) -> datetime | None:
    row = conn.fetchone("SELECT MIN(wake_at) FROM promises WHERE wake_at IS NOT NULL")
    return as_datetime(row[0]) if row is not None and row[0] is not None else None


def of_incident(conn: Connection, incident_id: int, *, lock: bool = False) -> list[Promise]:
    sql = f"SELECT {_FIELDS} FROM promises WHERE incident_id = ? ORDER BY made_at, customer"
    rows = conn.fetchall(_lock(conn, sql) if lock else sql, (incident_id,))
    return [_from_row(r) for r in rows]


def of_incidents(conn: Connection, ids: Sequence[int]) -> dict[int, list[Promise]]:
    out: dict[int, list[Promise]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT {_FIELDS} FROM promises WHERE incident_id IN ({marks}) ORDER BY made_at, customer"
        for r in conn.fetchall(sql, chunk):
            out[int(r[0])].append(_from_row(r))
    return out


def open_for_ticket(conn: Connection, ticket: str) -> list[int]:
    """The incidents with an open promise to the customer of helpdesk ticket `ticket`
    ("zendesk:123"); not locked (see `due_incidents`)."""
    rows = conn.fetchall(
        "SELECT DISTINCT incident_id FROM promises WHERE ticket = ? AND state = 'open' ORDER BY incident_id",
        (ticket,),
    )
    return [int(r[0]) for r in rows]


def made_between(conn: Connection, start: datetime, end: datetime) -> list[Promise]:
    rows = conn.fetchall(
        f"SELECT {_FIELDS} FROM promises WHERE made_at >= ? AND made_at < ? ORDER BY made_at",
        (start, end),
    )
    return [_from_row(r) for r in rows]


def contacts(conn: Connection, incident_id: int, customers: Iterable[str]) -> dict[str, CustomerContact]:
    """How reassurance reached these customers of the incident (for `_late` / `_resolved`)."""
    wanted = list(customers)
    if not wanted:
        return {}
    marks = ", ".join("?" * len(wanted))
    rows = conn.fetchall(
        f"SELECT customer, contact FROM promises WHERE incident_id = ? AND customer IN ({marks})",
        (incident_id, *wanted),
    )
    return {str(r[0]): CustomerContact(**json.loads(r[1])) for r in rows}


def claim_follow_up(conn: Connection, incident_id: int, customer: str, kind: FollowUp) -> bool:
    """Takes the one send of the `_late` or `_resolved` message to this customer; False when
    it was taken already (by this or another instance)."""
    column = "late" if kind == "late" else "resolved"
    cur = conn.execute(
        f"UPDATE promises SET {column} = 'sending'"
        f" WHERE incident_id = ? AND customer = ? AND {column} IS NULL",
        (incident_id, customer),
    )
    return bool(cur.rowcount == 1)


def follow_up_outcome(
    conn: Connection, incident_id: int, customer: str, kind: FollowUp, outcome: str
) -> None:
    column = "late" if kind == "late" else "resolved"
    conn.execute(
        f"UPDATE promises SET {column} = ? WHERE incident_id = ? AND customer = ?",
        (outcome, incident_id, customer),
    )


def follow_ups(conn: Connection, incident_id: int) -> dict[str, tuple[str | None, str | None]]:
    """customer -> (late, resolved) outcomes, for tests and the API."""
    rows = conn.fetchall(
        "SELECT customer, late, resolved FROM promises WHERE incident_id = ?", (incident_id,)
    )
    return {str(r[0]): (r[1], r[2]) for r in rows}


def counts(conn: Connection) -> dict[str, int]:
    """Promises by state, for /metrics."""
    out = {"open": 0, "kept": 0, "broken": 0}
    for r in conn.fetchall("SELECT state, COUNT(*) FROM promises GROUP BY state"):
        out[str(r[0])] = int(r[1])
    return out
