"""Send slots shared by instances (PostgreSQL): the per-chat rate limit of each provider
(Telegram 1/s per chat, Slack 1/s per channel, Twilio 1/s per sender) holds for all instances
together, not for each. A slot is taken in one statement: the row lock orders two instances
asking at once. Times are wall-clock seconds (each instance's own clock; hosts keep them within
milliseconds by NTP). SQLite runs one instance, whose own limiter is enough.
"""

from __future__ import annotations

from oncall.store.connection import Connection

_TAKE = (
    "INSERT INTO send_slots (key, next_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
    " SET next_at = GREATEST(send_slots.next_at, ?) + ? RETURNING next_at"
)


def take_slot(conn: Connection, key: str, not_before: float, interval: float) -> float:
    """The first free slot of `key` at or after `not_before`, taken; the next one is then
    `interval` later."""
    row = conn.fetchone(_TAKE, (key, not_before + interval, not_before, interval))
    assert row is not None  # an upsert with RETURNING always returns its row
    return float(row[0]) - interval
