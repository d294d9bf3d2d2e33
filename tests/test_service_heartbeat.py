"""ONCALL_HEARTBEAT_URL is fetched while the scheduler is healthy, and only then (SPEC §5)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oncall.scheduler import Heartbeat, Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store.database import open_database


class DeadMansSwitch:
    """A real local HTTP endpoint counting the pings it gets."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ping/abc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def switch() -> Iterator[DeadMansSwitch]:
    s = DeadMansSwitch()
    yield s
    s.close()


async def test_the_heartbeat_is_fetched_only_while_the_scheduler_is_healthy(
    switch: DeadMansSwitch, tmp_path: Path
) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'hb.db'}")
    service = Service(db, lambda: None, {}, Settings(_env_file=None))  # type: ignore[call-arg]
    scheduler = Scheduler(service)
    heartbeat = Heartbeat(switch.url, scheduler)
    try:
        assert await heartbeat.beat() is False  # not started yet: not healthy
        assert switch.hits == []
        scheduler.healthy = True
        assert await heartbeat.beat() is True
        assert switch.hits == ["/ping/abc"]
        scheduler.healthy = False  # e.g. the store is down: the switch must notice
        assert await heartbeat.beat() is False
        assert switch.hits == ["/ping/abc"]
    finally:
        await service.aclose()
        await db.aclose()
