"""One database, SQLite or PostgreSQL, behind a single writer thread with group commit.

Every piece of work is a function `fn(conn)` run inside a transaction by one thread that owns
the connection. Work queued while a commit is in progress is run together in the next
transaction, each unit in its own savepoint, and all of it is committed at once: one fsync for
many webhooks, and SQLite never sees two writers ("database is locked" cannot happen between
our own callers). A caller is answered only after the transaction holding its work committed
and, on SQLite, its log is on disk (fsync'd by a thread of its own while the writer goes on
with the next transaction).

    await db.transaction(fn)     from the event loop; never blocks it
    db.transaction_sync(fn)      from the CLI or any other thread

The writer runs units of work and knows nothing of what they do: the tables are the business
of the modules beside it (`events`, `incidents`, …), which take the `Connection` it hands them.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import queue
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

from oncall.store.connection import Connection, Dialect, Row, StoreError, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("oncall.store")

_BATCH_MAX = 512


def _pg_row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = {col.name: i for i, col in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


@dataclass(slots=True)
class _Job:
    fn: Callable[[Connection], Any]
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | concurrent.futures.Future[Any]
    savepoint: bool = True  # False for work that cannot fail on its own (saves two statements)
    raw: bool = False  # runs outside any transaction (migrations)
    urgent: bool = False  # someone waits to answer (a webhook): committed before other work
    result: Any = None
    error: BaseException | None = field(default=None)


_STOP = object()


def _psycopg() -> Any:
    """psycopg, imported when a PostgreSQL store is opened: a SQLite server (and an intake
    worker, which has no store) does not carry its ~8 MB."""
    import psycopg

    return psycopg


def _is_pg_error(exc: BaseException, *names: str) -> bool:
    pg = sys.modules.get("psycopg")  # not imported: no PostgreSQL error can have been raised
    return pg is not None and isinstance(exc, tuple(getattr(pg, n) for n in names))


def _is_unavailable(exc: BaseException) -> bool:
    """Whether an error means "the database cannot take writes now" rather than "this work is wrong"."""
    if isinstance(exc, StoreUnavailable):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(
            s in text
            for s in ("locked", "busy", "readonly", "read-only", "disk", "i/o", "unable to open", "full")
        )
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
        return False
    return isinstance(exc, sqlite3.DatabaseError) or _is_pg_error(exc, "OperationalError", "InterfaceError")


def _take_waiting(q: queue.SimpleQueue[Any], first: Any, limit: int = sys.maxsize) -> tuple[list[Any], bool]:
    """`first` and what waits behind it in `q`, up to `limit` items; and whether `_STOP` was
    among them (the caller finishes these, then stops)."""
    items = [first]
    while len(items) < limit:
        try:
            nxt = q.get_nowait()
        except queue.Empty:
            break
        if nxt is _STOP:
            return items, True
        items.append(nxt)
    return items, False


class _Flusher:
    """SQLite: puts the log on disk (fsync) after the writer committed, then answers the work
    of those commits, on a thread of its own. The writer starts its next transaction
    meanwhile, and one fsync covers every commit made while the last one ran (the log is
    written in order): what synchronous=FULL does at every commit, without the writer waiting
    for the disk. Nobody is answered before their commit is on disk."""

    def __init__(self, path: str, writer: Writer) -> None:
        self._wal = path + "-wal"
        self._writer = writer
        self._fd: int | None = None
        self._queue: queue.SimpleQueue[list[_Job] | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="oncall-db-flush", daemon=True)
        self._thread.start()

    def submit(self, batch: list[_Job]) -> None:
        """Answers `batch`, committed, once the log is on disk."""
        self._queue.put(batch)

    def stop(self) -> None:
        """Flushes and answers what was submitted, then ends the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        _name_os_thread(b"oncall-db-sync")
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            waiting, stop = _take_waiting(self._queue, first)
            batches = cast(list[list[_Job]], waiting)
            try:
                self._fsync()
            except Exception as exc:  # committed, maybe not on disk: nobody is told it is
                if not isinstance(exc, StoreUnavailable):  # a bug: this thread must go on
                    log.exception("flushing the SQLite log failed")
                    exc = StoreUnavailable(f"the SQLite log could not be flushed to disk: {exc}")
                self._writer.last_error = str(exc)
                for batch in batches:
                    for job in batch:
                        job.result, job.error = None, exc
            for batch in batches:
                Writer._deliver(batch)
        self._close()

    def _fsync(self) -> None:
        try:
            inode = os.stat(self._wal).st_ino
            if self._fd is None or os.fstat(self._fd).st_ino != inode:
                self._close()
                self._fd = os.open(self._wal, os.O_RDONLY)
            os.fsync(self._fd)
        except OSError as exc:
            raise StoreUnavailable(f"the SQLite log could not be flushed to disk: {exc}") from exc

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class Writer:
    """SQLite or PostgreSQL, written by one thread: runs units of work (see the module doc)."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # the message never repeats the URL, which may hold a password
            raise StoreError(f"the database URL is not a URL: {exc}") from None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.url = url
        if parts.scheme == "sqlite":
            self.dialect: Dialect = "sqlite"
            # sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory:
            self._path = unquote(url.split("://", 1)[1].split("?", 1)[0][1:])
            self._timeout = float(query.get("timeout", timeout if timeout is not None else 5.0))
        elif parts.scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            self._path = ""
            self._timeout = float(timeout if timeout is not None else 5.0)
        else:
            raise StoreError(
                f"unsupported database URL scheme {parts.scheme!r} (use sqlite:/// or postgresql://)"
            )
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        # Taken from the queue while looking for webhooks to commit with a transaction (`_absorb`),
        # not run yet: run before anything still in the queue, in order.
        self._held: collections.deque[_Job | object] = collections.deque()
        self._conn: Connection | None = None
        self._flusher: _Flusher | None = None  # SQLite on disk: flushes the log after commits
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Committed transactions and the units of work in them (units/transactions = batching).
        self.transactions = 0
        self.units = 0
        self.unflushed = 0  # of those, committed without waiting for the disk (`no_flush_needed`)
        # Why the last transaction could not run (locked, disk full, server down), until one
        # commits: what /readyz tells when the store does not answer in time.
        self.last_error: str | None = None

    def __repr__(self) -> str:  # never the password of a PostgreSQL URL
        return f"<Database {self.dialect} {self.describe()}>"

    def describe(self) -> str:
        """The database's location without credentials, for logs."""
        if self.dialect == "sqlite":
            return self._path
        p = urlsplit(self.url)
        return f"{p.hostname or 'localhost'}:{p.port or 5432}{p.path}"

    # -- connection ------------------------------------------------------------------------------

    def _connect(self) -> Connection:
        if self.dialect == "sqlite":
            if self._path not in ("", ":memory:"):
                parent = Path(self._path).parent
                if not parent.is_dir():
                    raise StoreUnavailable(f"directory {parent} of the SQLite database does not exist")
            raw = sqlite3.connect(
                self._path,
                timeout=self._timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                detect_types=sqlite3.PARSE_DECLTYPES,
                check_same_thread=False,
            )
            raw.row_factory = sqlite3.Row
            raw.execute("PRAGMA journal_mode=WAL")
            # NORMAL: SQLite itself does not flush at each commit; the WAL is flushed after each
            # commit that anybody waits on (`_Flusher`), before answering: as FULL, but a
            # commit that answers nobody (`no_flush_needed`) need not wait for the disk.
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute("PRAGMA foreign_keys=ON")
            # Statement journals (a savepoint's, a multi-row insert's) and sorts in memory: on
            # disk SQLite opened, unlinked and wrote a file in /var/tmp about 60 times a second
            # in a flood, and a full or read-only /var/tmp would fail webhooks.
            raw.execute("PRAGMA temp_store=MEMORY")
            return Connection(raw, "sqlite")
        pg = _psycopg().connect(self.url, autocommit=True, connect_timeout=max(1, int(self._timeout)))
        pg.row_factory = _pg_row_factory
        return Connection(pg, "postgresql")

    def _connection(self) -> Connection:
        if self._conn is None:
            try:
                self._conn = self._connect()
            except StoreError:
                raise
            except Exception as exc:
                if not isinstance(exc, (sqlite3.Error, OSError)) and not _is_pg_error(exc, "Error"):
                    raise
                raise StoreUnavailable(
                    f"cannot open the {self.dialect} database: {exc}{self._disk()}"
                ) from exc
        return self._conn

    def _disk(self) -> str:
        """SQLite says "disk I/O error" when it cannot create its WAL on a full disk: say so."""
        if self.dialect != "sqlite" or self._path in ("", ":memory:"):
            return ""
        try:
            free = shutil.disk_usage(Path(self._path).parent).free
        except OSError:
            return ""
        return f" (the disk holding it is full: {free} bytes free)" if free < 1024 * 1024 else ""

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # closing a broken connection may fail too; it is gone either way
            with contextlib.suppress(Exception):
                conn.raw.close()

    # -- the writer ------------------------------------------------------------------------------

    def _ensure_writer(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the database is closed")
            if self._thread is None:
                if self.dialect == "sqlite" and self._path not in ("", ":memory:"):
                    self._flusher = _Flusher(self._path, self)
                self._thread = threading.Thread(target=self._writer, name="oncall-db-writer", daemon=True)
                self._thread.start()

    def _writer(self) -> None:
        _name_os_thread(b"oncall-db")
        while True:
            first = self._held.popleft() if self._held else self._queue.get()
            if first is _STOP:
                break
            jobs, stop = self._take_held(first)
            if not stop and len(jobs) < _BATCH_MAX:
                more, stop = _take_waiting(self._queue, None, _BATCH_MAX - len(jobs) + 1)
                jobs += more[1:]
            batch: list[_Job] = []
            for job in cast(list[_Job], jobs):
                if job.raw:  # raw work runs alone, after the batch so far
                    if batch:
                        self._run_batch(batch)
                        batch = []
                    self._run_raw(job)
                else:
                    batch.append(job)
            urgent = [job for job in batch if job.urgent]
            if urgent and len(urgent) < len(batch):
                # Webhooks waiting for their 2xx are not held up by routing or the scheduler:
                # their own commit first (one more fsync), then the rest.
                self._run_batch(urgent)
                batch = [job for job in batch if not job.urgent]
            if batch:
                self._run_batch(batch)
            if stop:
                break
        if self._flusher is not None:
            self._flusher.stop()  # every commit answered, on disk, before the connection closes
        self._drop_connection()

    def _take_held(self, first: object) -> tuple[list[Any], bool]:
        """`first` and the held work behind it, up to `_BATCH_MAX`; and whether `_STOP` was
        among it (`_take_waiting` for `_held`)."""
        items = [first]
        held = self._held
        while held and len(items) < _BATCH_MAX:
            nxt = held.popleft()
            if nxt is _STOP:
                return items, True
            items.append(nxt)
        return items, False

    def _absorb(self, conn: Connection, batch: list[_Job]) -> None:
        """Runs the webhooks that queued up meanwhile in this transaction, before it commits,
        each in its own savepoint: they would otherwise wait for this commit and then make one
        of their own. A flood's routing transaction and the webhooks that arrived during it
        are thus one commit and one fsync, and a webhook waits for no commit but its own.
        Other work is held back, in order, for the next transaction; nothing is taken past
        work that must run alone (a migration) or the end."""
        raw = conn.raw
        taken = 0
        while taken < _BATCH_MAX:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return
            if nxt is _STOP or cast(_Job, nxt).raw:
                self._held.append(nxt)
                return
            job = cast(_Job, nxt)
            if not job.urgent:
                self._held.append(job)
                continue
            taken += 1
            batch.append(job)  # answered with the batch (or told of its failure, with it)
            job.result, job.error = None, None
            raw.execute("SAVEPOINT job")
            try:
                job.result = job.fn(conn)
            except Exception as exc:
                if _is_unavailable(exc):
                    raise
                raw.execute("ROLLBACK TO SAVEPOINT job")
                job.error = exc
            raw.execute("RELEASE SAVEPOINT job")

    def _run_raw(self, job: _Job) -> None:
        try:
            job.result = job.fn(self._connection())
        except BaseException as exc:
            job.error = exc if not _is_unavailable(exc) else self._unavailable(exc)
        self._deliver([job])

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        self._drop_connection()
        if isinstance(exc, StoreUnavailable):
            return exc
        return StoreUnavailable(f"the {self.dialect} database cannot take writes: {exc}")

    def _run_batch(self, batch: list[_Job], isolate_all: bool = False) -> None:
        retry = False
        flush: _Flusher | None = None  # answered by the flusher, once the commit is on disk
        try:
            conn = self._connection()
            raw = conn.raw
            raw.execute("BEGIN IMMEDIATE" if conn.dialect == "sqlite" else "BEGIN")
            conn.unsynced = 0
            alone = len(batch) == 1
            for job in batch:
                job.result, job.error = None, None
                if alone or not (job.savepoint or isolate_all):
                    try:
                        job.result = job.fn(conn)
                    except Exception as exc:
                        if _is_unavailable(exc):
                            raise
                        if not alone:  # cannot undo it alone: redo the batch with savepoints
                            retry = True
                            raise
                        job.error = exc
                    continue
                raw.execute("SAVEPOINT job")
                try:
                    job.result = job.fn(conn)
                except Exception as exc:
                    if _is_unavailable(exc):
                        raise
                    raw.execute("ROLLBACK TO SAVEPOINT job")
                    job.error = exc
                raw.execute("RELEASE SAVEPOINT job")
            if alone and batch[0].error is not None:
                raw.execute("ROLLBACK")
            else:
                self._absorb(conn, batch)
                if conn.unsynced >= len(batch):
                    _commit_unflushed(conn)
                    self.unflushed += 1
                else:
                    raw.execute("COMMIT")
                    flush = self._flusher
            self.transactions += 1
            self.units += len(batch)
            self.last_error = None
        except BaseException as exc:
            failure = self._unavailable(exc) if _is_unavailable(exc) else exc
            if isinstance(failure, StoreUnavailable):
                self.last_error = str(failure)
            if self._conn is not None:
                try:
                    self._conn.raw.execute("ROLLBACK")
                except Exception:
                    self._drop_connection()
            if retry and not isolate_all and not _is_unavailable(exc):
                self._run_batch(batch, isolate_all=True)
                return
            for job in batch:
                job.result, job.error = None, failure
            flush = None
        if flush is not None:
            flush.submit(batch)
        else:
            self._deliver(batch)

    @staticmethod
    def _deliver(batch: list[_Job]) -> None:
        """Hands results back: one wake-up per event loop per batch, not one per job."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            if job.loop is None:
                fut = cast(concurrent.futures.Future[Any], job.future)
                if job.error is not None:
                    fut.set_exception(job.error)
                else:
                    fut.set_result(job.result)
            else:
                by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, jobs)

    # -- public API ------------------------------------------------------------------------------

    def _submit(self, job: _Job) -> None:
        if self._closed:
            raise StoreUnavailable("the database is closed")
        self._ensure_writer()
        self._queue.put(job)

    async def transaction(
        self, fn: Callable[[Connection], T], *, savepoint: bool = True, urgent: bool = False
    ) -> T:
        """Runs `fn(conn)` in a transaction on the writer thread; returns once it committed.
        `urgent` work (a webhook waiting for its answer) is committed ahead of other work."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._submit(_Job(fn, loop, fut, savepoint=savepoint, urgent=urgent))
        return await fut

    def others_waiting(self) -> bool:
        """Whether work is queued behind the transaction running now: long work (routing a
        backlog) ends what it does (webhooks are then committed with it, `_absorb`, and other
        work goes next)."""
        return bool(self._held) or not self._queue.empty()

    def transaction_sync(self, fn: Callable[[Connection], T]) -> T:
        """`transaction` for code outside the event loop (CLI, other threads)."""
        if threading.current_thread() is self._thread:
            raise StoreError("transaction_sync called from inside a transaction")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._submit(_Job(fn, None, fut))
        return fut.result()

    def _raw_sync(self, fn: Callable[[Connection], T]) -> T:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._submit(_Job(fn, None, fut, raw=True))
        return fut.result()

    async def ping(self) -> None:
        """Raises StoreUnavailable unless the database takes a write through the writer."""
        await self.transaction(_probe)

    def close(self) -> None:
        """Finishes queued work, then closes the connection. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
        else:
            self._drop_connection()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _commit_unflushed(conn: Connection) -> None:
    """COMMIT without waiting for the disk (see `Connection.no_flush_needed`): SQLite runs
    with synchronous=NORMAL and the writer flushes only other commits; PostgreSQL is told so
    for this transaction."""
    if conn.dialect == "postgresql":
        conn.raw.execute("SET LOCAL synchronous_commit = off")
    conn.raw.execute("COMMIT")


def _probe(conn: Connection) -> None:
    if conn.dialect == "sqlite":
        # Rewriting user_version (unused otherwise) writes a page: a full disk or a file-size
        # limit fails here as it fails a webhook, where `SELECT 1` would still succeed.
        row = conn.fetchone("PRAGMA user_version")
        conn.execute(f"PRAGMA user_version = {int(row[0]) if row else 0}")
    else:
        conn.fetchone("SELECT 1")


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        fut = cast(asyncio.Future[Any], job.future)
        if fut.done():  # the waiter was cancelled (client went away); the work is committed anyway
            continue
        if job.error is not None:
            fut.set_exception(job.error)
        else:
            fut.set_result(job.result)


def _name_os_thread(name: bytes) -> None:
    """Shows the writer by name in `top -H` and /proc (Linux only; elsewhere a no-op)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)  # PR_SET_NAME
