"""Secrets the paging part keeps in the database, shared by every instance (`paging_secrets`)."""

from __future__ import annotations

import base64
from datetime import datetime

from oncall.acktoken import new_key
from oncall.store.connection import Connection


def load_or_create_key(conn: Connection, now: datetime) -> bytes:
    """The ack-link key: made by whichever instance asks first, the same for all afterwards."""
    value = base64.b64encode(new_key()).decode()
    conn.execute(
        "INSERT INTO paging_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        ("ack_key", value, now),
    )
    row = conn.fetchone("SELECT value FROM paging_secrets WHERE name = ?", ("ack_key",))
    assert row is not None
    return base64.b64decode(str(row[0]))
