"""PostgreSQL stopped and started again under load, with two `oncall serve` on one schema.

Both instances take a stream of signed webhooks (alternately; a client retries each delivery
until it is answered 2xx, as a platform does). PostgreSQL is stopped (`pg_ctlcluster … stop
-m fast`) in the middle and started again once both instances have answered 503 (so the outage
is short, a second or two: other tests on this machine use the same server).
Afterwards:
- while it was down, webhooks were answered 503 (JSON error), never 2xx, never a 500;
- every delivery answered 2xx is in the events table under the id it was answered with;
- both instances took webhooks again (202) without a restart, and every page that fell due,
  before, during and after the outage, reached the fake Telegram exactly once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fixtures.databases import postgres_url
from tests.live import (
    Burst,
    Server,
    channel_env,
    deliveries,
    failure,
    paging_shop,
    telegram_chat,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.postgres]

ORDERS = 80  # one incident each, for 80 people: no page waits in a bundle
PER_ORDER = 2
RATE = 20.0  # webhooks a second: the stream lasts 8 s
STOP_AFTER = 3.0  # seconds into the stream
MIN_DOWN = 1.0  # seconds; short: other tests on this machine use the same PostgreSQL


def _cluster() -> list[str]:
    """`pg_ctlcluster VERSION main` for the local cluster, or skip (fail under CI) without it."""
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if shutil.which("pg_ctlcluster") is None or not versions:
        reason = "no local PostgreSQL cluster to restart (pg_ctlcluster, /etc/postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def _pg(cluster: list[str], action: str, *extra: str) -> None:
    subprocess.run([*cluster, action, *extra], check=True, capture_output=True, timeout=60)


def test_two_instances_answer_503_while_postgresql_is_down_and_recover_by_themselves(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    cluster = _cluster()
    rules, rotas = paging_shop(ORDERS, [("telegram", "10m")], hold="1s")
    write_config(tmp_path, rules, rotas)
    payloads = [failure(k + 1, f"o{k}", f"pg-{k}-{j}") for k in range(ORDERS) for j in range(PER_ORDER)]
    with postgres_url() as url:
        env = channel_env(telegram=telegram)
        servers = [Server(tmp_path, database_url=url, env=env, name=f"serve-{n}") for n in (1, 2)]
        burst = Burst([s.url for s in servers], payloads, rate=RATE, workers=4)
        down_from = down_until = 0.0  # PostgreSQL fully stopped … about to start again
        try:
            for s in servers:  # one after the other: the first applies the migrations
                s.start()
            burst.start()
            time.sleep(STOP_AFTER)
            _pg(cluster, "stop", "-m", "fast")
            down_from = time.monotonic()

            def both_refused() -> bool:
                attempts = list(burst.attempts)
                return all(
                    any(a > down_from and u == s.url and o == "503" for a, _, u, o in attempts)
                    for s in servers
                )

            assert wait_for(both_refused, 20), burst.outcomes()
            # Down at least a second, so that holds end and pages fall due while it is.
            time.sleep(max(0.0, down_from + MIN_DOWN - time.monotonic()))
        finally:
            if down_from:
                down_until = time.monotonic()
                _pg(cluster, "start")  # whatever happened: PostgreSQL runs again
        try:
            assert burst.join(90), f"not every delivery was accepted: {burst.outcomes()}"

            def paged() -> set[int]:
                return {incident for incident, _, _ in deliveries(telegram=telegram)}

            assert wait_for(lambda: len(paged()) >= ORDERS, 60), (
                f"{len(paged())} of {ORDERS} incidents paged\n" + "\n".join(s.tail(4000) for s in servers)
            )
            time.sleep(1.0)  # anything that would page a second time has had its chance
        finally:
            burst.stop()
            for s in servers:
                s.stop()
        with psycopg.connect(url) as conn:
            stored: dict[str, int] = dict(conn.execute("SELECT dedup_key, id FROM events").fetchall())
            pages: dict[str, str] = dict(conn.execute("SELECT key, state FROM pages").fetchall())
            incidents: dict[int, str] = dict(conn.execute("SELECT id, group_key FROM incidents").fetchall())

    # Asked while it was down: 503, never a 2xx, never a 500 or a dropped connection.
    down = [o for sent, answered, _, o in burst.attempts if down_from < sent and answered < down_until]
    assert down and set(down) == {"503"}, down
    assert set(burst.outcomes()) <= {"200", "202", "503"}, burst.outcomes()
    # Both instances took webhooks again by themselves.
    for s in servers:
        assert any(a > down_until and u == s.url and o == "202" for a, _, u, o in burst.attempts), s.url
    # Every 2xx stored under its id; every page once.
    assert {d: stored.get(d) for d in burst.accepted} == burst.accepted
    assert len(stored) == len(payloads)
    assert len(incidents) == ORDERS
    reached = deliveries(telegram=telegram)
    orders = {iid: int(group.removeprefix("order=o")) for iid, group in incidents.items()}
    expected = {(iid, "telegram", telegram_chat(k + 1)) for iid, k in orders.items()}
    assert reached == dict.fromkeys(expected, 1), {k: n for k, n in reached.items() if n != 1}
    assert set(pages.values()) == {"sent"}, pages
    print(
        f"\nPostgreSQL down {down_until - down_from:.1f} s under {RATE:g} webhooks/s over two instances:"
        f" attempts {dict(burst.outcomes())}, {len(down)} while down (all 503);"
        f" {len(payloads)} events stored, {len(pages)} pages each sent once"
    )
