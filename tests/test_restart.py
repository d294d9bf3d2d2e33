"""A real `oncall serve`, killed with SIGKILL during a hold and restarted, pages exactly once.

The live server runs on the real clock, so the hold is 3 seconds: the webhook is stored and the
incident held, the process is killed before the hold ends, and the restarted process finds the
due timer in the store and pages — once, in the log (console channel) and in the store.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from oncall.sources import generic
from tests.live import SECRET, Server, wait_for, write_config

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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    write_config(tmp_path, RULES, {"people": PEOPLE})
    s = Server(tmp_path)
    yield s
    s.stop()


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


# The weekend story at 1/300 scale (seconds for minutes): the same rule, policy and rotas shape.
WEEKEND_RULES = """
[shop]
name = "Tienda Ejemplo"
timezone = "Europe/Madrid"
language = "es"
fallback = "person:owner"

[[policy]]
name = "weekend"
repeat = 1
  [[policy.step]]
  notify = ["rota:weekend"]
  via = ["telegram", "slack"]
  ack_within = "1s"
  [[policy.step]]
  notify = ["rota:weekend"]
  via = ["sms"]
  ack_within = "1s"
  [[policy.step]]
  notify = ["rota:weekend-backup", "person:owner"]
  via = ["sms", "telegram"]
  ack_within = "1s"

[[rule]]
name = "payment failures while closed"
match = { kind = ["payment_failed"], hours = "closed" }
group_by = ["kind"]
hold = "2s"
cancel_on = ["payment_succeeded"]
policy = "weekend"
"""

ALWAYS = """
[[layer]]
name = "all"
members = ["{who}"]
rotation = "daily"
handoff = "09:00"
start = "2026-01-01"
"""

WEEKEND_ROTAS = {
    "people": """
[person.ana]
name = "Ana García"
phone = "+34600111222"
telegram = 111
slack = "U0ANA12345"
[person.luis]
name = "Luis Pérez"
phone = "+34600333444"
telegram = 222
[person.owner]
name = "Olga Dueña"
phone = "+34600777888"
telegram = 444
""",
    "weekend": ALWAYS.format(who="ana"),
    "weekend-backup": ALWAYS.format(who="luis"),
}


@pytest.mark.slow
def test_the_weekend_story_runs_end_to_end_through_oncall_serve(tmp_path: Path) -> None:
    write_config(tmp_path, WEEKEND_RULES, WEEKEND_ROTAS)
    server = Server(tmp_path)
    try:
        server.start()
        for i in range(5):  # a failure plus four more within the hold: one incident, one page
            r = server.post(
                {
                    "id": f"f{i}",
                    "kind": "payment_failed",
                    "order": {"id": f"o{i}", "amount": 37.98, "currency": "EUR"},
                }
            )
            assert r.status_code == 202, r.text
        assert wait_for(lambda: any("escalation exhausted" in str(i) for i in _timelines(server)), 15)
        with sqlite3.connect(server.db) as conn:
            rows = conn.execute("SELECT key, created_at FROM pages ORDER BY created_at, key").fetchall()
        # round:step in the order the steps fired, each page recorded once: 2 + 1 + 4, twice
        steps = [":".join(k.split(":")[1:3]) for k, _ in rows]
        assert steps == ["1:1"] * 2 + ["1:2"] + ["1:3"] * 4 + ["2:1"] * 2 + ["2:2"] + ["2:3"] * 4
        times = sorted({datetime.fromisoformat(t) for _, t in rows})
        gaps = [round((b - a).total_seconds()) for a, b in itertools.pairwise(times)]
        assert gaps == [1, 1, 1, 1, 1]  # ack_within = 1s: every step one second after the last
        log = server.log.read_text()
        # Nobody here names a language: everyone reads the shop's (Spanish), amounts as it writes them.
        assert "5 fallos de pago desde las" in log and "189,90 €" in log
        for name in ("Ana García (ana)", "Luis Pérez (luis)", "Olga Dueña (owner)"):
            assert f"to {name}" in log  # the console stands in for Telegram, Slack and SMS
    finally:
        server.stop()


def _timelines(server: Server) -> list[object]:
    items = server.incidents()
    return [i.get("timeline") for i in items]
