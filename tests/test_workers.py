"""`oncall serve` with intake worker processes (`oncall.web.workers`): the same server from the
outside — webhooks stored before their 2xx and counted once in /metrics, every other page
answered by the main process through a worker — and nothing left behind when a process dies.

These run real processes on the real clock; every wait has a deadline, none is a timing claim.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oncall.web.workers import default_count
from tests.live import TOKEN, Server, wait_for, write_config
from tests.shoptoml import always, policy, rule, rules, shop, step

RULES = rules(
    shop("person:ana", name="Tienda Test"),
    policy("direct", step("person:ana", "telegram")),
    rule("payment failures", {"kind": ["payment_failed"]}, "direct", group_by=["order"], hold="1h"),
)
PEOPLE = """
[person.ana]
name = "Ana García"
telegram = 123456789
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def failure(n: int) -> dict[str, object]:
    return {"id": f"pay-{n}", "kind": "payment_failed", "summary": "Card declined", "order": {"id": f"o{n}"}}


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    # The parent may reap the process between any two looks, so /proc is read once
    # and its absence means gone. A zombie (exited, not yet reaped) is not alive
    # either; the state follows the name, which is in parentheses and may hold spaces.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def metric(server: Server, line_start: str) -> float | None:
    text = httpx.get(f"{server.url}/metrics", headers=AUTH, timeout=5).text
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    write_config(tmp_path, RULES, {"people": PEOPLE, "weekend": always("ana")})
    s = Server(tmp_path, args=("--workers", "2"))
    yield s
    s.stop()


def test_one_fewer_worker_than_cores_at_most_four_and_none_on_one_core() -> None:
    assert default_count(1) == 0
    assert default_count(2) == 1
    assert default_count(5) == 4
    assert default_count(64) == 4


def test_a_webhook_taken_by_a_worker_is_stored_before_its_202_and_counted_once(server: Server) -> None:
    server.start()
    assert len(children(server.pid or 0)) == 2
    answers = [server.post(failure(n)) for n in range(6)]
    assert [a.status_code for a in answers] == [202] * 6
    ids = sorted(a.json()["event_id"] for a in answers)
    # Each 202 came after the commit: the rows are there the moment the answers are.
    assert [r[0] for r in server.query("SELECT id FROM events ORDER BY id")] == ids
    again = server.post(failure(0))
    assert again.status_code == 200 and again.json() == {
        "status": "duplicate",
        "event_id": answers[0].json()["event_id"],
    }
    bad = httpx.post(f"{server.url}/webhooks/generic", content=b"{}", headers={"X-Signature": "nope"})
    assert bad.status_code == 401
    accepted = 'oncall_webhooks_total{source="generic",outcome="accepted"}'
    assert wait_for(lambda: metric(server, accepted) == 6, 10), metric(server, accepted)
    assert metric(server, 'oncall_webhooks_total{source="generic",outcome="duplicate"}') == 1
    assert metric(server, 'oncall_webhooks_total{source="generic",outcome="unauthorized"}') == 1
    assert metric(server, 'oncall_events_total{source="generic",kind="payment_failed"}') == 6
    # Routed by the main process into one held incident per order.
    assert wait_for(lambda: len(server.incidents()) == 6, 10)
    assert {i["state"] for i in server.incidents()} == {"held"}


def test_every_other_request_is_answered_by_the_main_process_through_a_worker(server: Server) -> None:
    server.start()
    server.post(failure(1))
    held = httpx.get(f"{server.url}/api/incidents?state=held&limit=1", headers=AUTH, timeout=5)
    assert held.status_code == 200 and len(held.json()["items"]) == 1  # the query string got through
    assert httpx.get(f"{server.url}/api/incidents", timeout=5).status_code == 401  # no token
    missing = httpx.get(f"{server.url}/nowhere", timeout=5)
    assert missing.status_code == 404 and missing.json() == {"error": "no such endpoint: GET /nowhere"}
    assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
    page = httpx.get(f"{server.url}/", headers=AUTH, timeout=5)
    assert page.status_code == 200 and "Tienda Test" in page.text
    # A body goes through too: Telegram's webhook without its secret header is refused by the app.
    tg = httpx.post(f"{server.url}/telegram/webhook", json={"update_id": 1}, timeout=5)
    assert tg.status_code in (401, 403), tg.text


def test_a_worker_that_dies_is_replaced_and_the_port_keeps_answering(server: Server) -> None:
    server.start()
    main = server.pid or 0
    first, second = children(main)
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: not alive(first) and len(children(main)) == 2, 20), server.tail()
    assert first not in children(main) and second in children(main)
    assert "intake worker 1 (pid" in server.tail() or "intake worker 2 (pid" in server.tail()
    answers = [server.post(failure(n)).status_code for n in range(10)]
    assert answers == [202] * 10


def test_killing_the_main_process_leaves_nothing_on_the_port(server: Server) -> None:
    server.start()
    workers = children(server.pid or 0)
    server.kill()  # SIGKILL: no shutdown at all
    assert wait_for(lambda: not any(alive(w) for w in workers), 10)
    with socket.socket() as probe:  # the port is free again: a restart can listen on it
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.port))
    server.start()
    assert server.post(failure(7)).status_code == 202


def test_sigterm_stops_the_workers_then_the_main_process(server: Server) -> None:
    server.start()
    workers = children(server.pid or 0)
    assert server.post(failure(3)).status_code == 202
    code = server.terminate()
    assert code in (0, -signal.SIGTERM)
    assert not any(alive(w) for w in workers)
    assert "Traceback" not in server.tail()
    assert server.query("SELECT count(*) FROM events") == [(1,)]


def test_workers_zero_is_one_process(tmp_path: Path) -> None:
    write_config(tmp_path, RULES, {"people": PEOPLE, "weekend": always("ana")})
    with Server(tmp_path, args=("--workers", "0")) as one:
        assert children(one.pid or 0) == []
        assert one.post(failure(1)).status_code == 202
