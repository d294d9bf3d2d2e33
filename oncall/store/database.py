"""The `Database` the rest of oncall opens: the writer (`oncall.store.writer`) with the two
pieces of work every caller needs by name — storing a webhook's event and migrating the schema.

    db = open_database(url)      lazy: the connection is made on first use
    db.migrate()                 pending migrations (`oncall.store.migrations_runner`)
    await db.store_event(e, raw) once per (source, dedup_key) (`oncall.store.events`)

The writer itself imports neither: it only runs units of work.
"""

from __future__ import annotations

from oncall.clock import Clock, system_clock
from oncall.core.models import Event
from oncall.store.connection import Connection, StoreUnavailable, to_pyformat
from oncall.store.events import insert_event
from oncall.store.migrations_runner import apply_migrations, pending
from oncall.store.writer import Writer

# Connection, StoreUnavailable and to_pyformat are `oncall.store.connection`'s, named here too for
# callers that import all they need of the store from this module.
__all__ = ["Connection", "Database", "StoreUnavailable", "open_database", "to_pyformat"]


class Database(Writer):
    """SQLite or PostgreSQL, written by one thread. Open with `open_database(url)`."""

    async def store_event(self, event: Event, raw_body: bytes) -> tuple[int, bool]:
        """Stores a normalised event once per (source, dedup_key): (event id, duplicate)."""
        return await self.transaction(
            lambda conn: insert_event(conn, event, raw_body), savepoint=False, urgent=True
        )

    async def store_events(self, events: list[tuple[Event, bytes]]) -> list[tuple[int, bool]]:
        """`store_event` for several, in one unit of work (the deliveries an intake worker
        passed on together): all of them are stored, or none."""

        def insert_all(conn: Connection) -> list[tuple[int, bool]]:
            return [insert_event(conn, event, raw) for event, raw in events]

        return await self.transaction(insert_all, urgent=True)

    def store_event_sync(self, event: Event, raw_body: bytes) -> tuple[int, bool]:
        return self.transaction_sync(lambda conn: insert_event(conn, event, raw_body))

    def migrate(self, clock: Clock = system_clock) -> list[str]:
        """Applies pending migrations in order; returns the names applied."""
        return self._raw_sync(lambda conn: apply_migrations(conn, clock))

    def pending_migrations(self) -> list[str]:
        return self._raw_sync(pending)


def open_database(url: str, *, timeout: float | None = None) -> Database:
    """`sqlite:///path` (`?timeout=SECONDS` to wait for a lock) or `postgresql://…`.

    Opening is lazy: the connection is made by the writer on first use, so a database that is
    down at start makes requests fail with StoreUnavailable instead of the process failing."""
    return Database(url, timeout=timeout)
