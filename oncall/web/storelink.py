"""How intake worker processes store events: one Unix-socket link to the main process.

`oncall serve` with workers (`oncall.web.workers`) runs the webhook endpoints in worker
processes, so that verifying, parsing and answering use every core, while the main process
stays the database's only writer (SQLite has one writer; one writer also keeps PostgreSQL's
round trips batched). A worker answers 2xx only after the main process replied that the
event is committed, exactly as in one process.

Frames are a 4-byte big-endian length and a pickle. The socket lives in a directory only the
server's user can enter (`workers.run_dir`), and only the server's own workers connect to it:
pickle is safe here and is the cheapest way to move an `Event` and its raw body.

  worker → main   ("S", request id, event, raw body)     store this event (its fields, flat)
                  ("W", {(source, outcome, kind): n})     webhooks answered (for /metrics)
  main → worker   (request id, event id, duplicate, None, "")
                  (request id, 0, False, "unavailable" | "error", message)

Frames going each way are gathered while the event loop is busy and written together: a
flood costs one `write` per loop turn, not one per event.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import struct
from collections.abc import Callable
from typing import Any, Protocol, cast

from oncall.core.models import Customer, Event, Order, Ticket
from oncall.metrics import METRICS
from oncall.store import StoreError, StoreUnavailable

log = logging.getLogger("oncall.workers")

_LEN = struct.Struct("!I")
_MAX_FRAME = 64 * 1024 * 1024  # far above ONCALL_MAX_BODY_BYTES' sensible values; a guard only


def _flat(e: Event) -> tuple[Any, ...]:
    """An event as plain values: pickling the dataclasses themselves costs ten times more."""
    c, o, t = e.customer, e.order, e.ticket
    return (
        e.source, e.kind, e.dedup_key, e.received_at, e.summary, e.occurred_at, e.severity,
        c.name, c.email, c.phone, c.language, o.id, o.number, o.amount, o.currency,
        t.id, t.priority, t.status, t.subject, e.tags, e.external_type,
    )  # fmt: skip


def _event(v: tuple[Any, ...]) -> Event:
    return Event(
        v[0], v[1], v[2], v[3], v[4], v[5], v[6],
        Customer(v[7], v[8], v[9], v[10]), Order(v[11], v[12], v[13], v[14]),
        Ticket(v[15], v[16], v[17], v[18]), v[19], v[20],
    )  # fmt: skip


class _Framed(asyncio.Protocol):
    """Length-prefixed pickles both ways, writes gathered per loop turn."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._out: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        start = 0
        while len(buf) - start >= 4:
            (size,) = _LEN.unpack_from(buf, start)
            if size > _MAX_FRAME:
                log.error("store link: a frame of %d bytes; closing the link", size)
                if self.transport is not None:
                    self.transport.close()
                return
            if len(buf) - start - 4 < size:
                break
            frame = pickle.loads(buf[start + 4 : start + 4 + size])
            start += 4 + size
            self.frame_received(frame)
        del buf[:start]
        self.frames_done()

    def frame_received(self, frame: Any) -> None:
        raise NotImplementedError

    def frames_done(self) -> None:
        """Every whole frame of what arrived has been handed to `frame_received`."""

    def send(self, frame: Any) -> None:
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out += (_LEN.pack(len(data)), data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))


# -- the main process ----------------------------------------------------------------------------


class Store(Protocol):
    async def store_event(self, event: Event, raw_body: bytes) -> tuple[int, bool]: ...

    async def store_events(self, events: list[tuple[Event, bytes]]) -> list[tuple[int, bool]]: ...


class _MainSide(_Framed):
    def __init__(self, store: Store, on_stored: Callable[[int], None]) -> None:
        super().__init__()
        self._store = store
        self._on_stored = on_stored
        self._tasks: set[asyncio.Task[None]] = set()
        self._arrived: list[tuple[int, Event, bytes]] = []

    def frame_received(self, frame: Any) -> None:
        if frame[0] == "S":
            self._arrived.append((frame[1], _event(frame[2]), frame[3]))
        elif frame[0] == "W":
            for (source, outcome, kind), n in frame[1].items():
                METRICS.webhook(source, outcome, kind, n)

    def frames_done(self) -> None:
        if self._arrived:  # what arrived together is stored together: one unit of work
            task = asyncio.ensure_future(self._store_all(self._arrived))
            self._arrived = []
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _store_all(self, arrived: list[tuple[int, Event, bytes]]) -> None:
        if len(arrived) > 1:
            try:
                results = await self._store.store_events([(event, body) for _, event, body in arrived])
            except StoreUnavailable as exc:
                for request, _, _ in arrived:
                    self.send((request, 0, False, "unavailable", str(exc)))
                return
            except Exception:  # one of them cannot be stored: each on its own, to say which
                pass
            else:
                for (request, _, _), (event_id, duplicate) in zip(arrived, results, strict=True):
                    self._stored(request, event_id, duplicate)
                return
        for request, event, body in arrived:
            try:
                event_id, duplicate = await self._store.store_event(event, body)
            except StoreUnavailable as exc:
                self.send((request, 0, False, "unavailable", str(exc)))
            except Exception as exc:  # the worker logs it and answers 503: the platform retries
                self.send((request, 0, False, "error", f"{type(exc).__name__}: {exc}"))
            else:
                self._stored(request, event_id, duplicate)

    def _stored(self, request: int, event_id: int, duplicate: bool) -> None:
        self.send((request, event_id, duplicate, None, ""))
        if not duplicate:
            self._on_stored(event_id)


class LinkServer:
    """The main process's end: stores what workers send, through the app's `Database`."""

    def __init__(self, store: Store, on_stored: Callable[[int], None]) -> None:
        self._store = store
        self._on_stored = on_stored
        self._server: asyncio.AbstractServer | None = None
        self._links: list[_MainSide] = []

    def _link(self) -> _MainSide:
        link = _MainSide(self._store, self._on_stored)
        self._links.append(link)
        return link

    async def start(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(self._link, path)

    async def close(self) -> None:
        """Stops taking links and closes those open (their workers stop taking webhooks)."""
        if self._server is not None:
            self._server.close()
        for link in self._links:
            if link.transport is not None:
                link.transport.close()
        self._links.clear()


# -- a worker process ----------------------------------------------------------------------------


class _WorkerSide(_Framed):
    def __init__(self, on_lost: Callable[[], None]) -> None:
        super().__init__()
        self.waiting: dict[int, asyncio.Future[tuple[int, bool]]] = {}
        self._on_lost = on_lost

    def frame_received(self, frame: Any) -> None:
        request, event_id, duplicate, failure, message = frame
        fut = self.waiting.pop(request, None)
        if fut is None or fut.done():
            return
        if failure is None:
            fut.set_result((event_id, duplicate))
        elif failure == "unavailable":
            fut.set_exception(StoreUnavailable(message))
        else:
            fut.set_exception(StoreError(message))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        lost = StoreUnavailable("the oncall main process is not answering")
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(lost)
        self.waiting.clear()
        self._on_lost()


class RemoteStore:
    """What `WebhookIntake` stores through in a worker: `store_event` as the `Database`'s."""

    def __init__(self, on_lost: Callable[[], None]) -> None:
        self._link: _WorkerSide | None = None
        self._next = 0
        self._on_lost = on_lost
        self._counts: dict[tuple[str, str, str | None], int] = {}

    async def connect(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        _, self._link = await loop.create_unix_connection(lambda: _WorkerSide(self._on_lost), path)

    async def store_event(self, event: Event, raw_body: bytes) -> tuple[int, bool]:
        link = self._link
        if link is None or link.transport is None:
            raise StoreUnavailable("the oncall main process is not answering")
        self._next += 1
        fut: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()
        link.waiting[self._next] = fut
        link.send(("S", self._next, _flat(event), raw_body))
        return await fut

    def count(self, source: str, outcome: str, kind: str | None, n: int = 1) -> None:
        """One answered webhook, counted in the main process's /metrics: those of one loop
        turn go as one frame of counts, not a frame each."""
        if not self._counts:
            asyncio.get_running_loop().call_soon(self._send_counts)
        key = (source, outcome, kind)
        self._counts[key] = self._counts.get(key, 0) + n

    def _send_counts(self) -> None:
        counts, self._counts = self._counts, {}
        if self._link is not None and self._link.transport is not None:
            self._link.send(("W", counts))

    def close(self) -> None:
        if self._link is not None and self._link.transport is not None:
            self._link.transport.close()
