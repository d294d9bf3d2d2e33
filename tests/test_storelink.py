"""The store link between intake workers and the main process (`oncall.web.storelink`): what
workers send together is committed together, each delivery gets its own answer, one that
cannot be stored does not refuse the others, and a link that closes fails what waits on it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from oncall.core.models import Customer, Event, Order, Ticket
from oncall.metrics import METRICS
from oncall.store import Database, StoreError, StoreUnavailable, open_database
from oncall.store.events import get_event, get_raw_body
from oncall.web.storelink import LinkServer, RemoteStore

AT = datetime(2026, 11, 28, 22, 10, tzinfo=UTC)


def event(n: int) -> Event:
    return Event(
        source="generic", kind="payment_failed", dedup_key=f"pay-{n}", received_at=AT, summary=f"#{n}"
    )


class Refusing(Database):
    """A store on which the event `pay-13` cannot be written (a bug), or nothing can (disk)."""

    down = False

    async def store_events(self, events: list[tuple[Event, bytes]]) -> list[tuple[int, bool]]:
        if self.down:
            raise StoreUnavailable("disk full")
        if any(e.dedup_key == "pay-13" for e, _ in events):
            raise ValueError("cannot store pay-13")
        return await super().store_events(events)

    async def store_event(self, event: Event, raw_body: bytes) -> tuple[int, bool]:
        if event.dedup_key == "pay-13":
            raise ValueError("cannot store pay-13")
        return await super().store_event(event, raw_body)


@contextlib.asynccontextmanager
async def linked(
    tmp_path: Path, db: Database | None = None
) -> AsyncIterator[tuple[Database, LinkServer, RemoteStore, list[int], list[str]]]:
    """A migrated store (`db`, else SQLite in `tmp_path`) behind a link server, and a worker's
    end connected to it; all closed afterwards."""
    db = db or open_database(f"sqlite:///{tmp_path / 'oncall.db'}")
    db.migrate()
    woken: list[int] = []
    lost: list[str] = []
    server = LinkServer(db, woken.append)
    path = str(tmp_path / "store.sock")
    await server.start(path)
    client = RemoteStore(on_lost=lambda: lost.append("lost"))
    await client.connect(path)
    try:
        yield db, server, client, woken, lost
    finally:
        client.close()
        await server.close()
        db.close()


async def test_deliveries_sent_together_are_committed_together_and_each_gets_its_id(tmp_path: Path) -> None:
    async with linked(tmp_path) as (db, _server, client, woken, _):
        transactions = db.transactions
        answers = await asyncio.gather(*(client.store_event(event(n), b"{}") for n in range(20)))
        assert [dup for _, dup in answers] == [False] * 20
        assert len({i for i, _ in answers}) == 20
        assert db.transactions - transactions < 20  # gathered: far fewer commits than deliveries
        assert sorted(woken) == sorted(i for i, _ in answers)  # the router is woken for each new one
        again = await client.store_event(event(3), b"{}")
        assert again == (answers[3][0], True)
        assert len(woken) == 20  # not for a duplicate


async def test_every_field_of_an_event_reaches_the_store(tmp_path: Path) -> None:
    async with linked(tmp_path) as (db, _server, client, _, _):
        full = Event(
            source="stripe", kind="payment_failed", dedup_key="evt_1", received_at=AT,
            summary="Card declined", occurred_at=AT.replace(minute=9), severity="high",
            customer=Customer("Marta López", "marta@example.com", "+34600000001", "es"),
            order=Order("o-1", "#1001", 189.9, "EUR"), ticket=Ticket("t-1", "urgent", "open", "Cobro doble"),
            tags=("vip", "es"), external_type="payment_intent.payment_failed",
        )  # fmt: skip
        event_id, _ = await client.store_event(full, b'{"raw": true}')
        stored = await db.transaction(lambda conn: get_event(conn, event_id))
        assert stored == dataclasses.replace(full, id=event_id)
        assert await db.transaction(lambda conn: get_raw_body(conn, event_id)) == b'{"raw": true}'


async def test_one_delivery_that_cannot_be_stored_does_not_refuse_the_others(tmp_path: Path) -> None:
    refusing = Refusing(f"sqlite:///{tmp_path / 'oncall.db'}")
    async with linked(tmp_path, refusing) as (_db, _server, client, _, _):
        results = await asyncio.gather(
            *(client.store_event(event(n), b"{}") for n in range(10, 16)), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1 and isinstance(failed[0], StoreError) and "pay-13" in str(failed[0])
        assert isinstance(results[3], StoreError)
        assert sum(1 for r in results if isinstance(r, tuple)) == 5
        refusing.down = True
        down = await asyncio.gather(
            *(client.store_event(event(n), b"{}") for n in range(20, 23)), return_exceptions=True
        )
        assert all(isinstance(r, StoreUnavailable) and "disk full" in str(r) for r in down)


async def test_a_link_that_closes_fails_what_waits_and_says_so(tmp_path: Path) -> None:
    async with linked(tmp_path) as (_db, server, client, _, lost):
        assert await client.store_event(event(1), b"{}") == (1, False)
        await server.close()  # the main process goes away
        for _ in range(100):
            if lost:
                break
            await asyncio.sleep(0.01)
        assert lost == ["lost"]
        with pytest.raises(StoreUnavailable, match="main process is not answering"):
            await client.store_event(event(2), b"{}")


async def test_webhook_counts_of_one_loop_turn_reach_the_main_process_metrics_as_one_frame(
    tmp_path: Path,
) -> None:
    async with linked(tmp_path) as (_db, _server, client, _, _):
        before = dict(METRICS.webhooks.get("stripe", {}))
        frames: list[Any] = []
        assert client._link is not None
        real_send = client._link.send

        def send(frame: Any) -> None:
            frames.append(frame)
            real_send(frame)

        client._link.send = send  # type: ignore[method-assign]
        for outcome in ("accepted", "accepted", "bad_signature"):
            client.count("stripe", outcome, "payment_failed" if outcome == "accepted" else None)
        for _ in range(100):
            now = METRICS.webhooks.get("stripe", {})
            if now.get("bad_signature", 0) > before.get("bad_signature", 0):
                break
            await asyncio.sleep(0.01)
        now = METRICS.webhooks["stripe"]
        assert now.get("accepted", 0) - before.get("accepted", 0) == 2
        assert now.get("bad_signature", 0) - before.get("bad_signature", 0) == 1
        assert len(frames) == 1 and frames[0][0] == "W"
