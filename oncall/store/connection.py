"""What a unit of work sees: a `Connection` speaking SQL with `?` placeholders on SQLite and
PostgreSQL alike, rows readable by name, aware datetimes in and out, and the store's errors.

Errors, by when to catch them:

    StoreError                   anything the store refuses
    ├── StoreUnavailable         cannot reach or write the database now: retry later (→ 503)
    └── MigrationError           a migration file failed or the schema is newer than the code
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal, cast

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any]


class StoreError(Exception):
    """The store refused the work."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or written right now; the caller should retry later."""


class MigrationError(StoreError):
    """A migration could not be applied."""


# --- values: aware datetimes in, aware datetimes out, on both dialects --------------------------


def _adapt_datetime(value: datetime) -> str:
    # Stored in UTC so that text order is time order; naive values are taken as UTC.
    if value.tzinfo is UTC:  # mostly: read from the store, or the clock's (a quick way, same text)
        return value.isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _convert_timestamp(raw: bytes) -> datetime:
    value = datetime.fromisoformat(raw.decode())
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def as_datetime(value: Any) -> datetime:
    """A timestamp column as an aware datetime: PostgreSQL and SQLite's converter give one, a
    value read without the declared type is its ISO text."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


# Replaces the standard library's deprecated default adapters with explicit ones.
sqlite3.register_adapter(datetime, _adapt_datetime)
sqlite3.register_adapter(date, date.isoformat)
sqlite3.register_converter("TIMESTAMP", _convert_timestamp)
sqlite3.register_converter("TIMESTAMPTZ", _convert_timestamp)


class Row(tuple[Any, ...]):
    """A result row readable by position or by column name, like `sqlite3.Row`."""

    _names: dict[str, int]

    def __new__(cls, values: Iterable[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._names)


def _pg_row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = {col.name: i for i, col in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


_QMARK = re.compile(r"'(?:[^']|'')*'|\?|%")


def to_pyformat(sql: str) -> str:
    """`?` placeholders to psycopg's `%s` (and a literal `%` to `%%`), leaving quoted text alone."""

    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        return "%s" if token == "?" else "%%" if token == "%" else token

    return _QMARK.sub(repl, sql)


class Connection:
    """What a unit of work sees: SQL with `?` placeholders on either dialect."""

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect: Dialect = dialect
        self._sql_cache: dict[str, str] = {}
        self.unsynced = 0  # units of work in this transaction that said `no_flush_needed`

    def no_flush_needed(self) -> None:
        """This unit of work answers nobody and lets nothing leave the process: its commit
        need not wait for the disk. If every unit of a transaction says so, it is committed
        without a flush; the next flushed commit (the next webhook's, the next page's claim)
        puts it on disk with its own, because the log is written in order. A crash of the
        machine in between loses only what can be done again from what is on disk (routing
        of stored events); a crash of the process loses nothing."""
        self.unsynced += 1

    def _sql(self, sql: str) -> str:
        if self.dialect == "sqlite":
            return sql
        converted = self._sql_cache.get(sql)
        if converted is None:
            converted = self._sql_cache[sql] = to_pyformat(sql)
        return converted

    def execute(self, sql: str, params: Params = ()) -> Any:
        """Runs one statement; returns the DB-API cursor (`fetchone`, `fetchall`, `rowcount`)."""
        return self.raw.execute(self._sql(sql), params)

    def executemany(self, sql: str, params: Iterable[Params]) -> None:
        if self.dialect == "sqlite":
            self.raw.executemany(sql, params)
        else:
            with self.raw.cursor() as cur:
                cur.executemany(self._sql(sql), params)

    @contextlib.contextmanager
    def savepoint(self, name: str) -> Iterator[None]:
        """Work inside that raises is rolled back alone (and the error goes on): the rest of the
        transaction stays."""
        self.raw.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.raw.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.raw.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.raw.execute(f"RELEASE SAVEPOINT {name}")

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return cast(Row | None, self.execute(sql, params).fetchone())

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return cast(list[Row], self.execute(sql, params).fetchall())


def skip_locked(conn: Connection, sql: str) -> str:
    """`sql` claiming its rows: several instances on PostgreSQL each take rows the others are not
    working on (SQLite has one writer)."""
    return sql + " FOR UPDATE SKIP LOCKED" if conn.dialect == "postgresql" else sql
