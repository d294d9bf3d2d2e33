"""Intake end to end: signed Stripe webhook → 2xx → routed into its own incident.

    .venv/bin/python bench/intake_e2e.py [--events 20000] [--connections 16] [--database-url URL]

`bench/ingest.py` measures the answer alone (no configuration, so nothing is routed). Here a
real `oncall serve` runs with a configuration like the shared bench's (closed all day, a rule
for payment failures grouped by order, hold 1 h so nothing is paged), receives `--events`
distinct `payment_intent.payment_failed` deliveries from 16 keep-alive connections, and the
clock stops only when every event has been routed: each one's incident exists and no event
waits for the router. Prints webhooks/s to the answer and to the incident, latency, server
CPU per event (everything: HTTP, signature, store, routing), and checks the incident count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import SECRET, cpu_seconds, drive, free_port, rss_mib, thread_cpu

from oncall.sources import stripe as stripe_source
from oncall.sources.samples import SAMPLES

RULES = """\
[shop]
name = "Bench Shop"
timezone = "UTC"
language = "en"
response_time = "2h"
fallback = "person:bench"

[business_hours]                     # no days listed: closed all day, every day

[[policy]]
name = "bench"
repeat = 0
  [[policy.step]]
  notify = ["rota:weekend"]
  via = ["telegram"]
  ack_within = "1h"

[[rule]]
name = "payment failures while closed"
match = { kind = ["payment_failed"], hours = "closed" }
group_by = ["order"]
hold = "1h"
threshold = 1
policy = "bench"
"""
PEOPLE = '[person.bench]\nname = "Bench Person"\ntelegram = 987654321\nlanguage = "en"\n'
ROTA = """\
timezone = "UTC"
[[layer]]
name = "always"
members = ["bench"]
rotation = "weekly"
handoff = "mon 00:00"
start = "2020-01-06"
"""


def failure_body(i: int, tag: str, now: datetime) -> bytes:
    """Stripe's payment failure number `i`, for an order and a customer of its own, as in a
    flood of many shoppers' failures (see docs/performance.md)."""
    payload, _ = SAMPLES["stripe"]["payment_failed"](now)
    payload["id"] = f"evt_{tag.lower()}_{i:07d}"
    obj = payload["data"]["object"]
    order = f"{tag}-{i:07d}"
    obj["metadata"] = {**obj.get("metadata", {}), "order_id": order, "order_number": order}
    obj["receipt_email"] = f"{order.lower()}@bench.example"
    obj.pop("last_payment_error", None)
    return json.dumps(payload).encode()


def requests(count: int, port: int) -> list[bytes]:
    """Distinct signed deliveries, each for an order of its own."""
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        body = failure_body(i, "E2E", now)
        headers = stripe_source.sign(body, SECRET.encode(), now)
        head = (
            f"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: {headers['Content-Type']}\r\nStripe-Signature: {headers['Stripe-Signature']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


def progress(url: str) -> tuple[int, int]:
    """(events not yet routed, incidents) as the store has them."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True) as conn:
            waiting = conn.execute("SELECT COUNT(*) FROM events WHERE routed_at IS NULL").fetchone()[0]
            incidents = conn.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
            return int(waiting), int(incidents)
    import psycopg

    with psycopg.connect(url) as conn:
        row: Any = conn.execute(
            "SELECT (SELECT COUNT(*) FROM events WHERE routed_at IS NULL), (SELECT COUNT(*) FROM incidents)"
        ).fetchone()
        return int(row[0]), int(row[1])


def routing_rounds(url: str) -> int:
    """How many routing transactions routed events (each stamps its own `routed_at`)."""
    if not url.startswith("sqlite:///"):
        return 0
    with sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(DISTINCT routed_at) FROM events").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory (a fresh schema, "
                        "e.g. ?options=-csearch_path%%3Dbench, for PostgreSQL)")  # fmt: skip
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tmp = tempfile.TemporaryDirectory(prefix="oncall-e2e-")
    root = Path(tmp.name)
    (root / "rotas").mkdir()
    (root / "escalation_rules.toml").write_text(RULES)
    (root / "rotas" / "people.toml").write_text(PEOPLE)
    (root / "rotas" / "weekend.toml").write_text(ROTA)
    url = args.database_url or f"sqlite:///{root / 'bench.db'}"
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "ONCALL_DATABASE_URL": url,
        "ONCALL_STRIPE_SECRET": SECRET,
        "ONCALL_RULES_FILE": str(root / "escalation_rules.toml"),
        "ONCALL_ROTAS_DIR": str(root / "rotas"),
    }
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [sys.executable, "-m", "oncall.cli", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            print("server did not become ready; its log:", (root / "server.log").read_text()[-3000:])
            return 1
        batch = requests(args.events - args.events % args.connections, port)  # as many per connection
        sent = len(batch)
        threads0 = thread_cpu(server.pid)
        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        clients = asyncio.run(drive(port, batch, args.connections, 3600))
        answered = time.perf_counter() - t0
        while True:
            waiting, incidents = progress(url)
            if waiting == 0:
                break
            time.sleep(0.02)
        routed = time.perf_counter() - t0
        cpu = cpu_seconds(server.pid) - cpu0
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu(server.pid).items()}
        rss = rss_mib(server.pid)
        rounds = routing_rounds(url)
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    latencies = sorted(x for c in clients for x in c.latencies)
    statuses: dict[int, int] = {}
    for c in clients:
        for k, v in c.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    accepted = statuses.get(202, 0)
    q = statistics.quantiles(latencies, n=100)
    print(f"database:             {url.split('://')[0]}")
    print(f"answers:              {dict(sorted(statuses.items()))}")
    print(f"to the 2xx:           {accepted / answered:,.0f} webhooks/s ({answered:.1f} s)")
    print(f"to the incident:      {accepted / routed:,.0f} webhooks/s ({routed:.1f} s, all routed)")
    print(f"latency p50 / p99:    {q[49] * 1000:.2f} ms / {q[98] * 1000:.2f} ms")
    print(f"server CPU per event: {cpu / max(accepted, 1) * 1e6:.0f} µs (HTTP, signature, store, routing)")
    for name, seconds in sorted(threads.items(), key=lambda kv: -kv[1]):
        if seconds > 0:
            print(f"  thread {name + ':':<17} {seconds / max(accepted, 1) * 1e6:.0f} µs per event")
    if rounds:
        print(f"routing transactions: {rounds} ({accepted / rounds:.1f} events each)")
    print(f"server RSS:           {rss:.0f} MiB")
    print(f"incidents:            {incidents} for {accepted} accepted (one each: {incidents == accepted})")
    tmp.cleanup()
    return 0 if incidents == accepted == sent else 1


if __name__ == "__main__":
    sys.exit(main())
