"""SQLite's log goes to disk on a thread of its own (`oncall.store.writer._Flusher`): nobody is
answered before their commit is flushed, one flush covers every commit made while the last one
ran, the writer goes on meanwhile, and a flush that fails is an unavailable store."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oncall.core.models import Event
from oncall.store import Connection, Database, StoreUnavailable, open_database

REAL_FSYNC = os.fsync
AT = datetime(2026, 11, 28, 22, 10, tzinfo=UTC)


def event(n: int) -> Event:
    return Event(source="generic", kind="payment_failed", dedup_key=f"pay-{n}", received_at=AT)


@dataclass
class Disk:
    """`os.fsync` as the writer's flusher calls it: counted, and held while `gate` is shut."""

    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    calls: int = 0
    fail: bool = False

    def fsync(self, fd: int) -> None:
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.fail:
            raise OSError(errno.EIO, "Input/output error")
        REAL_FSYNC(fd)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    d = Disk()
    monkeypatch.setattr(os, "fsync", d.fsync)  # the flusher's, and only the flusher fsyncs here
    yield d
    d.gate.set()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'oncall.db'}")
    database.migrate()
    yield database
    database.close()


async def _entered(disk: Disk) -> None:
    assert await asyncio.to_thread(disk.entered.wait, 10)


async def test_a_stored_event_is_answered_only_once_its_commit_is_on_disk(db: Database, disk: Disk) -> None:
    disk.gate.set()
    await db.ping()  # the connection and its log exist
    disk.gate.clear()
    disk.entered.clear()
    stored = asyncio.ensure_future(db.store_event(event(1), b"{}"))
    await _entered(disk)  # committed; its flush is under way
    assert not stored.done()

    def count(conn: Connection) -> int:
        conn.no_flush_needed()  # a read: answered without waiting for the disk
        row = conn.fetchone("SELECT COUNT(*) FROM events")
        return int(row[0]) if row is not None else 0

    assert await db.transaction(count) == 1  # committed, and the writer went on meanwhile
    disk.gate.set()
    assert await stored == (1, False)


async def test_one_flush_covers_every_commit_made_while_the_last_one_ran(db: Database, disk: Disk) -> None:
    disk.gate.set()
    await db.ping()
    before = disk.calls
    disk.gate.clear()
    disk.entered.clear()
    first = asyncio.ensure_future(db.store_event(event(1), b"{}"))
    await _entered(disk)
    units = db.units
    later = [asyncio.ensure_future(db.store_event(event(n), b"{}")) for n in range(2, 8)]
    for _ in range(10_000):  # the writer commits them while the first flush is held
        if db.units >= units + len(later):
            break
        await asyncio.sleep(0.001)
    assert db.units >= units + len(later) and not any(f.done() for f in later)
    disk.gate.set()
    results = await asyncio.gather(first, *later)
    assert [dup for _, dup in results] == [False] * 7
    assert disk.calls - before == 2  # the first commit's flush, then one for all the others


async def test_a_flush_that_fails_is_an_unavailable_store_for_those_waiting(db: Database, disk: Disk) -> None:
    disk.gate.set()
    await db.ping()
    disk.fail = True
    with pytest.raises(StoreUnavailable, match="could not be flushed to disk"):
        await db.store_event(event(1), b"{}")
    assert db.last_error is not None and "flushed" in db.last_error
    disk.fail = False
    assert (await db.store_event(event(2), b"{}"))[1] is False


async def test_work_that_lets_nothing_leave_is_answered_without_waiting_for_the_disk(
    db: Database, disk: Disk
) -> None:
    disk.gate.set()
    await db.ping()
    disk.gate.clear()
    disk.entered.clear()
    held = asyncio.ensure_future(db.store_event(event(1), b"{}"))
    await _entered(disk)

    def quiet(conn: Connection) -> int:
        conn.no_flush_needed()
        return 7

    assert await db.transaction(quiet) == 7  # while the flush is held
    disk.gate.set()
    await held


async def test_a_bug_in_the_flush_fails_those_waiting_and_the_next_commits_still_flush(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await db.ping()
    broken = [True]

    def fsync(fd: int) -> None:
        if broken[0]:
            raise RuntimeError("a bug")
        REAL_FSYNC(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreUnavailable, match="a bug"):
        await db.store_event(event(1), b"{}")
    assert "flushing the SQLite log failed" in caplog.text
    broken[0] = False
    assert (await db.store_event(event(2), b"{}"))[1] is False  # the flusher is still there


async def test_webhooks_arriving_during_a_long_transaction_commit_with_it_in_one_flush(db: Database) -> None:
    """Routing a flood is one long transaction; the webhooks that arrive meanwhile are stored in
    it and committed with it (one commit, one fsync), not after it in one of their own. One
    that fails is rolled back alone; other work waits for the next transaction, in order."""
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def routing(conn: Connection) -> str:
        inside.set()
        release.wait(10)  # a guard against a hang, not a measurement
        order.append("routing")
        return "routed"

    def failing(conn: Connection) -> None:
        conn.execute("INSERT INTO timers (name, due) VALUES ('x', ?)", (datetime(2026, 12, 5, tzinfo=UTC),))
        raise ValueError("not this one")

    def later(name: str) -> Callable[[Connection], str]:
        def fn(conn: Connection) -> str:
            order.append(name)
            return name

        return fn

    await db.store_event(event(0), b"{}")  # the writer is up
    before = db.transactions
    routed = asyncio.ensure_future(db.transaction(routing))
    await asyncio.to_thread(inside.wait, 10)
    stored = asyncio.ensure_future(db.store_events([(event(1), b"{}"), (event(2), b"{}")]))
    scheduled = asyncio.ensure_future(db.transaction(later("scheduler")))  # not urgent: waits
    await asyncio.sleep(0)
    bad = asyncio.ensure_future(db.transaction(failing, urgent=True))
    one = asyncio.ensure_future(db.store_event(event(3), b"{}"))
    await asyncio.sleep(0.05)  # all four queued behind the routing (this is not a measurement)
    release.set()
    assert await routed == "routed"
    assert [event_id for event_id, _ in await stored] == [2, 3] and (await one)[0] == 4
    with pytest.raises(ValueError, match="not this one"):
        await bad
    assert await scheduled == "scheduler" and order == ["routing", "scheduler"]
    # Routing with the three webhooks' units, then the scheduler's: two commits (not routing,
    # the webhooks, then the scheduler).
    assert db.transactions - before == 2
    rows = await db.transaction(lambda conn: conn.fetchall("SELECT name FROM timers"))
    assert rows == []  # the failing unit's work was rolled back, the others' kept
    count = await db.transaction(lambda conn: conn.fetchone("SELECT count(*) FROM events"))
    assert count is not None and count[0] == 4
