"""A real `oncall serve`, killed with SIGKILL during a hold and restarted, pages exactly once.

The live server runs on the real clock, so the hold is 3 seconds: the webhook is stored and the
incident held, the process is killed before the hold ends, and the restarted process finds the
due timer in the store and pages — once, in the log (console channel) and in the store.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from oncall.sources import generic

SECRET = b"restart-test-secret"
TOKEN = "restart-admin"

RULES = """
[shop]
name = "Tienda Test"
timezone = "Europe/Madrid"
language = "es"
fallback = "person:ana"

[[policy]]
name = "direct"
  [[policy.step]]
  notify = ["person:ana"]
  via = ["telegram"]
  ack_within = "10m"

[[rule]]
name = "payment failures"
match = { kind = ["payment_failed"] }
group_by = ["kind"]
hold = "3s"
policy = "direct"
"""

PEOPLE = """
[person.ana]
name = "Ana García"
telegram = 123456789
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.db = tmp / "oncall.db"
        self.log = tmp / "serve.log"
        (tmp / "rotas").mkdir()
        (tmp / "escalation_rules.toml").write_text(RULES, encoding="utf-8")
        (tmp / "rotas" / "people.toml").write_text(PEOPLE, encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("ONCALL_")
        } | {
            "ONCALL_DATABASE_URL": f"sqlite:///{self.db}",
            "ONCALL_RULES_FILE": str(self.tmp / "escalation_rules.toml"),
            "ONCALL_ROTAS_DIR": str(self.tmp / "rotas"),
            "ONCALL_GENERIC_SECRET": SECRET.decode(),
            "ONCALL_ADMIN_TOKEN": TOKEN,
            "ONCALL_PUBLIC_URL": self.url,
        }  # fmt: skip
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oncall.cli", "serve", "--port", str(self.port)],
            cwd=self.tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("oncall serve did not start:\n" + self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def pages(self) -> list[tuple[str, str, str]]:
        with sqlite3.connect(self.db) as conn:
            return [tuple(r) for r in conn.execute("SELECT key, state, sent_via FROM pages ORDER BY key")]

    def incidents(self) -> list[dict[str, object]]:
        r = httpx.get(f"{self.url}/api/incidents", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        items: list[dict[str, object]] = r.json()["items"]
        return items


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.stop()


def wait_for(predicate: object, seconds: float) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_a_server_killed_during_the_hold_pages_exactly_once_after_restart(server: Server) -> None:
    server.start()
    body = json.dumps(
        {
            "id": "pay-1",
            "kind": "payment_failed",
            "summary": "Card declined",
            "order": {"id": "o1", "amount": 20},
        }
    ).encode()
    r = httpx.post(
        f"{server.url}/webhooks/generic", content=body, headers=generic.sign(body, SECRET, datetime.now(UTC))
    )
    assert r.status_code == 202, r.text
    assert wait_for(lambda: [i["state"] for i in server.incidents()] == ["held"], 3)
    server.kill()
    assert server.pages() == []  # killed during the hold: nobody paged yet

    server.start()
    assert wait_for(lambda: any(p[1] == "sent" for p in server.pages()), 10), server.log.read_text()
    time.sleep(0.5)  # anything that would page a second time has had its chance
    assert server.pages() == [("1:1:1:ana:telegram", "sent", "console")]
    assert server.log.read_text().count("PAGE console:") == 1
    [incident] = server.incidents()
    assert incident["state"] == "triggered"
