"""Durable storage: SQLite by default, PostgreSQL for several instances (see `database`)."""

from oncall.store.database import (
    Connection,
    Database,
    MigrationError,
    Row,
    StoreError,
    StoreUnavailable,
    open_database,
)

__all__ = [
    "Connection",
    "Database",
    "MigrationError",
    "Row",
    "StoreError",
    "StoreUnavailable",
    "open_database",
]
