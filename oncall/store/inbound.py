"""What inbound actions (Telegram, Slack, Twilio) remember: deliveries already handled, and the
help texts sent to each number (`paging_inbound`, `paging_help`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from oncall.store.connection import Connection


def first_time(conn: Connection, source: str, delivery_id: str, now: datetime) -> bool:
    """True the first time `(source, delivery_id)` is seen; a redelivery is False."""
    cur = conn.execute(
        "INSERT INTO paging_inbound (source, delivery_id, seen_at) VALUES (?, ?, ?)"
        " ON CONFLICT (source, delivery_id) DO NOTHING",
        (source, delivery_id, now),
    )
    return int(cur.rowcount) == 1


def help_allowed(conn: Connection, number: str, now: datetime, per_hour: int) -> bool:
    """Records a help text to `number` unless `per_hour` went to it in the last hour."""
    since = now - timedelta(hours=1)
    row = conn.fetchone("SELECT COUNT(*) FROM paging_help WHERE number = ? AND sent_at > ?", (number, since))
    if row is not None and int(row[0]) >= per_hour:
        return False
    conn.execute("DELETE FROM paging_help WHERE number = ? AND sent_at <= ?", (number, since))
    conn.execute("INSERT INTO paging_help (number, sent_at) VALUES (?, ?)", (number, now))
    return True
