"""The store, on SQLite and on PostgreSQL: events kept exactly once, committed before any
answer, migrations applied once, and a store that cannot write says so (StoreUnavailable)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oncall.core.models import Customer, Event, Order, Ticket
from oncall.store import Connection, Database, StoreUnavailable, open_database
from oncall.store.database import to_pyformat
from oncall.store.events import count_events, get_event, get_raw_body
from oncall.store.migrations_runner import available
from tests.fixtures.databases import postgres_url

RECEIVED = datetime(2026, 11, 28, 22, 10, 3, 250000, tzinfo=UTC)


def event(key: str, kind: str = "payment_failed") -> Event:
    return Event(
        source="stripe",
        kind=kind,
        dedup_key=key,
        received_at=RECEIVED,
        occurred_at=RECEIVED - timedelta(seconds=3),
        summary="Stripe payment failed, 189.90 EUR",
        customer=Customer("Lucía Fernández", "lucia@example.com", "+34611222333", "es"),
        order=Order("1042", "1042", 189.9, "EUR"),
        ticket=Ticket(None, None, None, None),
        tags=("livemode",),
        external_type="payment_intent.payment_failed",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/oncall.db"
    else:
        with postgres_url() as pg:
            yield pg


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = open_database(url)
    database.migrate()
    yield database
    database.close()


async def test_the_same_delivery_twenty_times_at_once_is_one_event(db: Database) -> None:
    results = await asyncio.gather(*(db.store_event(event("evt_1"), b"{}") for _ in range(20)))
    ids = {event_id for event_id, _ in results}
    assert len(ids) == 1
    assert sorted(duplicate for _, duplicate in results) == [False] + [True] * 19
    assert db.transaction_sync(count_events) == 1


async def test_an_event_reads_back_as_it_was_stored_with_aware_times(db: Database) -> None:
    event_id, _ = await db.store_event(event("evt_2"), b'{"raw": "body"}')
    stored = db.transaction_sync(lambda conn: get_event(conn, event_id))
    assert stored == dataclasses.replace(event("evt_2"), id=event_id)
    assert stored is not None and stored.received_at.utcoffset() == timedelta(0)
    assert db.transaction_sync(lambda conn: get_raw_body(conn, event_id)) == b'{"raw": "body"}'


async def test_many_concurrent_events_are_all_committed_and_a_failing_unit_spoils_only_itself(
    db: Database,
) -> None:
    def fails(conn: Connection) -> None:
        conn.execute("UPDATE events SET summary = ? WHERE dedup_key = ?", ("changed", "evt_0"))
        raise ValueError("this unit of work is wrong")

    first = await db.store_event(event("evt_0"), b"{}")
    work = [db.store_event(event(f"evt_{i}"), b"{}") for i in range(1, 200)]
    results = await asyncio.gather(db.transaction(fails), *work, return_exceptions=True)
    assert isinstance(results[0], ValueError)
    assert all(isinstance(r, tuple) and r[1] is False for r in results[1:])
    assert db.transaction_sync(count_events) == 200
    assert db.transactions < db.units  # grouped: fewer commits than units of work
    stored = db.transaction_sync(lambda conn: get_event(conn, first[0]))
    assert stored is not None and stored.summary == "Stripe payment failed, 189.90 EUR"


def test_a_sync_transaction_that_raises_is_rolled_back(db: Database) -> None:
    def half(conn: Connection) -> None:
        from oncall.store.events import insert_event

        insert_event(conn, event("evt_x"), b"{}")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        db.transaction_sync(half)
    assert db.transaction_sync(count_events) == 0


def test_migrations_are_applied_once_and_recorded(url: str) -> None:
    first = open_database(url)
    try:
        applied = first.migrate()
        assert applied[0] == "0001_events"
        assert first.migrate() == []
        assert first.pending_migrations() == []
        names = first.transaction_sync(
            lambda conn: [r[0] for r in conn.fetchall("SELECT name FROM schema_migrations ORDER BY version")]
        )
        assert names == applied
    finally:
        first.close()


def test_each_dialect_gets_its_own_variant_of_a_migration(tmp_path: Path) -> None:
    for name in (
        "0001_a.sqlite.sql",
        "0001_a.postgresql.sql",
        "0002_b.sql",
        "0003_c.postgresql.sql",
        "notes.txt",
    ):
        (tmp_path / name).write_text("SELECT 1;")
    assert [m.path.name for m in available("sqlite", tmp_path)] == ["0001_a.sqlite.sql", "0002_b.sql"]
    assert [m.path.name for m in available("postgresql", tmp_path)] == [
        "0001_a.postgresql.sql", "0002_b.sql", "0003_c.postgresql.sql",
    ]  # fmt: skip


def test_events_survive_closing_and_reopening(url: str) -> None:
    db = open_database(url)
    db.migrate()
    event_id, _ = db.store_event_sync(event("evt_keep"), b"{}")
    db.close()
    again = open_database(url)
    try:
        stored = again.transaction_sync(lambda conn: get_event(conn, event_id))
        assert stored is not None and stored.dedup_key == "evt_keep"
    finally:
        again.close()


def test_question_marks_become_psycopg_placeholders_outside_quotes() -> None:
    assert to_pyformat("SELECT '?', x FROM t WHERE a = ? AND b LIKE 'it''s ?%' AND c = ? || '%'") == (
        "SELECT '?', x FROM t WHERE a = %s AND b LIKE 'it''s ?%' AND c = %s || '%'"
    )
    assert to_pyformat("SELECT 5 % 2, ?") == "SELECT 5 %% 2, %s"


async def test_a_locked_sqlite_database_is_unavailable_not_an_error_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "oncall.db"
    db = open_database(f"sqlite:///{path}?timeout=0.05")
    db.migrate()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            await db.store_event(event("evt_locked"), b"{}")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (await db.store_event(event("evt_locked"), b"{}"))[1] is False
    db.close()


async def test_an_unreachable_postgresql_is_unavailable() -> None:
    db = open_database("postgresql://nobody@127.0.0.1:1/none", timeout=1)
    with pytest.raises(StoreUnavailable, match="cannot open the postgresql database"):
        await db.store_event(event("evt_1"), b"{}")
    db.close()


async def test_a_missing_sqlite_directory_is_unavailable(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/gone/oncall.db")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        await db.ping()
    db.close()


def test_the_url_is_described_without_its_password() -> None:
    db = open_database("postgresql://shop:s3cret@db.example:6543/oncall")
    assert "s3cret" not in repr(db) and db.describe() == "db.example:6543/oncall"
