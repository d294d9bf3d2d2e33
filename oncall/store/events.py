"""The events table: storing a normalised `Event` once, and reading it back."""

from __future__ import annotations

import json

from oncall.core.models import Customer, Event, Order, Ticket
from oncall.store.connection import Connection, Row, as_datetime

COLUMNS = (
    "source, dedup_key, kind, external_type, received_at, occurred_at, summary, severity,"
    " customer_name, customer_email, customer_phone, customer_language,"
    " order_id, order_number, order_amount, order_currency,"
    " ticket_id, ticket_priority, ticket_status, ticket_subject, tags"
)
_INSERT = (
    f"INSERT INTO events ({COLUMNS}, raw) VALUES ({', '.join('?' * 22)})"
    " ON CONFLICT (source, dedup_key) DO NOTHING RETURNING id"
)
_INSERT_SQLITE = _INSERT.removesuffix(" RETURNING id")
_FIND = "SELECT id FROM events WHERE source = ? AND dedup_key = ?"


def insert_event(conn: Connection, event: Event, raw_body: bytes) -> tuple[int, bool]:
    """(id, duplicate): a (source, dedup_key) already stored returns the first one's id."""
    c, o, t = event.customer, event.order, event.ticket
    values = (
            event.source, event.dedup_key, event.kind, event.external_type, event.received_at,
            event.occurred_at, event.summary, event.severity,
            c.name, c.email, c.phone, c.language,
            o.id, o.number, o.amount, o.currency,
            t.id, t.priority, t.status, t.subject,
            json.dumps(list(event.tags)) if event.tags else "[]", raw_body,
    )  # fmt: skip
    if conn.dialect == "sqlite":
        # Cheaper than RETURNING: rowcount says whether the row was new, lastrowid is its id.
        cursor = conn.raw.execute(_INSERT_SQLITE, values)
        if cursor.rowcount == 1:
            return int(cursor.lastrowid), False
    else:
        row = conn.fetchone(_INSERT, values)
        if row is not None:
            return int(row[0]), False
    existing = conn.fetchone(_FIND, (event.source, event.dedup_key))
    assert existing is not None  # the conflict that skipped the insert is this row
    return int(existing[0]), True


def event_from_row(row: Row) -> Event:
    """An `Event` from a row selected as `SELECT id, {COLUMNS} FROM events`."""
    (
        id_, source, dedup_key, kind, external_type, received_at, occurred_at, summary, severity,
        c_name, c_email, c_phone, c_language, o_id, o_number, o_amount, o_currency,
        t_id, t_priority, t_status, t_subject, tags,
    ) = tuple(row)  # fmt: skip
    return Event(
        id=int(id_),
        source=source,
        dedup_key=dedup_key,
        kind=kind,
        external_type=external_type,
        received_at=as_datetime(received_at),
        occurred_at=as_datetime(occurred_at) if occurred_at is not None else None,
        summary=summary,
        severity=severity,
        customer=Customer(c_name, c_email, c_phone, c_language),
        order=Order(o_id, o_number, o_amount, o_currency),
        ticket=Ticket(t_id, t_priority, t_status, t_subject),
        tags=tuple(json.loads(tags)) if tags and tags != "[]" else (),  # mostly none: no parsing
    )


def get_event(conn: Connection, event_id: int) -> Event | None:
    row = conn.fetchone(f"SELECT id, {COLUMNS} FROM events WHERE id = ?", (event_id,))
    return event_from_row(row) if row is not None else None


def get_raw_body(conn: Connection, event_id: int) -> bytes | None:
    row = conn.fetchone("SELECT raw FROM events WHERE id = ?", (event_id,))
    return bytes(row[0]) if row is not None else None


def count_events(conn: Connection) -> int:
    row = conn.fetchone("SELECT COUNT(*) FROM events")
    return int(row[0]) if row is not None else 0
