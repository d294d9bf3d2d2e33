"""Durable storage: SQLite by default, PostgreSQL for several instances.

connection   what a unit of work sees (`Connection`, rows, the store's errors)
writer       the one thread that runs units of work, with group commit
database     `Database` = the writer + storing an event + migrating; `open_database`
migrations_runner, migrations/   the schema, forward only
events, incidents, codec, pages, routes, timers, secrets, inbound, reassurances, promises,
reports, sessions, gauges   the tables, one module per idea; all SQL of oncall lives in them
"""

from oncall.store.connection import Connection, MigrationError, Row, StoreError, StoreUnavailable
from oncall.store.database import Database, open_database

__all__ = [
    "Connection",
    "Database",
    "MigrationError",
    "Row",
    "StoreError",
    "StoreUnavailable",
    "open_database",
]
