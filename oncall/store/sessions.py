"""Status-page sessions (migration 0005): only a hash of each cookie is kept."""

from __future__ import annotations

from datetime import datetime

from oncall.store.connection import Connection


def add_session(
    conn: Connection, id_hash: str, bound: str, form_token: str, now: datetime, expires_at: datetime
) -> None:
    """A new session; expired ones are cleared on the way."""
    conn.execute("DELETE FROM status_sessions WHERE expires_at <= ?", (now,))
    conn.execute(
        "INSERT INTO status_sessions (id_hash, bound, form_token, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (id_hash, bound, form_token, now, expires_at),
    )


def find_session(conn: Connection, id_hash: str, now: datetime) -> tuple[str, str] | None:
    """(bound, form token) of a current session."""
    row = conn.fetchone(
        "SELECT bound, form_token FROM status_sessions WHERE id_hash = ? AND expires_at > ?", (id_hash, now)
    )
    return (str(row[0]), str(row[1])) if row is not None else None


def end_session(conn: Connection, id_hash: str) -> None:
    conn.execute("DELETE FROM status_sessions WHERE id_hash = ?", (id_hash,))
