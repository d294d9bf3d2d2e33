"""What customer reassurance remembers (migration 0003): one row per incident and customer in
`reassurances`, and in `reassurance_window` the last incident that sent each message to each
customer (see `oncall.reassure`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from oncall.store.connection import Connection, as_datetime


@dataclass(frozen=True, slots=True)
class Claim:
    won: bool
    duplicate: bool = False  # this incident already handled this customer: say nothing
    previous_incident: int | None = None
    previous_at: datetime | None = None


def note(
    conn: Connection, incident_id: int, key: str, message: str, state: str, detail: str, now: datetime
) -> bool:
    """Records what became of customer `key` for this incident, unless something already is."""
    cur = conn.execute(
        "INSERT INTO reassurances (incident_id, customer, message, state, detail, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, customer) DO NOTHING",
        (incident_id, key, message, state, detail, now, now),
    )
    return bool(cur.rowcount == 1)


def claim(
    conn: Connection, incident_id: int, key: str, message: str, now: datetime, window: timedelta
) -> Claim:
    """Takes the send of `message` to customer `key` for this incident: once per incident and
    customer, and not the same message to the same customer within `window`."""
    if not note(conn, incident_id, key, message, "sending", "", now):
        return Claim(won=False, duplicate=True)
    cur = conn.execute(
        "INSERT INTO reassurance_window (customer, message, incident_id, sent_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (customer, message) DO UPDATE SET incident_id = excluded.incident_id,"
        " sent_at = excluded.sent_at WHERE reassurance_window.sent_at <= ?",
        (key, message, incident_id, now, now - window),
    )
    if cur.rowcount == 1:
        return Claim(won=True)
    row = conn.fetchone(
        "SELECT incident_id, sent_at FROM reassurance_window WHERE customer = ? AND message = ?",
        (key, message),
    )
    if row is None:  # released between our upsert and this read; the next incident will try
        return Claim(won=False)
    return Claim(
        won=False,
        previous_incident=int(row[0]),
        previous_at=as_datetime(row[1]) if row[1] is not None else None,
    )


def outcome(
    conn: Connection,
    incident_id: int,
    key: str,
    state: str,
    channel: str | None,
    language: str | None,
    detail: str | None,
    attempts: int,
    now: datetime,
    release: str | None = None,
) -> None:
    """The outcome of a claimed send; `release` (the message) frees the window when nothing
    reached the customer."""
    conn.execute(
        "UPDATE reassurances SET state = ?, channel = ?, language = ?, detail = ?, attempts = ?,"
        " updated_at = ? WHERE incident_id = ? AND customer = ?",
        (state, channel, language, (detail or "")[:500], attempts, now, incident_id, key),
    )
    if release is not None:
        # Nothing reached the customer: the next incident within 12 hours may try again.
        conn.execute(
            "DELETE FROM reassurance_window WHERE customer = ? AND message = ? AND incident_id = ?",
            (key, release, incident_id),
        )
