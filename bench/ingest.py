"""Webhook intake benchmark: signed Stripe webhooks against a real `oncall serve` on loopback.

    .venv/bin/python bench/ingest.py [--seconds 10] [--connections 16] [--database-url URL]

Starts the server (uvicorn, SQLite in a temporary directory unless --database-url is given),
then drives it from 16 keep-alive connections, each sending the next distinct, correctly signed
`payment_intent.payment_failed` event as soon as the previous answer arrived. Prints accepted
webhooks per second, p50/p99 latency, server CPU time per webhook (user + system, all threads)
and server RSS, and checks that every accepted event is in the database.

The load generator is plain asyncio on uvloop writing pre-built requests, so that it costs
the server's machine as little as possible; it still shares the two cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from oncall.sources import stripe as stripe_source
from oncall.sources.samples import sample

SECRET = "whsec_bench_secret"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime of the whole process


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (the event loop is the process's own name)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build_requests(count: int, port: int) -> list[bytes]:
    now = datetime.now(UTC)
    out = []
    for _ in range(count):
        body, _ = sample("stripe", "payment_failed", now)
        headers = stripe_source.sign(body, SECRET.encode(), now)
        head = (
            f"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
            f"Content-Type: {headers['Content-Type']}\r\nStripe-Signature: {headers['Stripe-Signature']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


class Client(asyncio.Protocol):
    """One keep-alive connection: send, wait for the whole answer, record, send the next."""

    def __init__(self, requests: list[bytes], deadline: float, done: asyncio.Future[None]) -> None:
        self.requests, self.deadline, self.done = requests, deadline, done
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.buffer = b""
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        if not self.requests or time.perf_counter() >= self.deadline:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.requests.pop())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if len(self.buffer) < head_end + 4 + length:
            return
        self.latencies.append(time.perf_counter() - self.sent_at)
        status = int(head.split(" ", 2)[1])
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.buffer = self.buffer[head_end + 4 + length :]
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def drive(port: int, requests: list[bytes], connections: int, seconds: float) -> list[Client]:
    loop = asyncio.get_running_loop()
    deadline = time.perf_counter() + seconds
    per = len(requests) // connections
    clients: list[Client] = []
    waits = []
    for i in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        client = Client(requests[i * per : (i + 1) * per], deadline, done)
        await loop.create_connection(lambda c=client: c, "127.0.0.1", port)  # type: ignore[misc]
        clients.append(client)
        waits.append(done)
    await asyncio.gather(*waits)
    return clients


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate-guess", type=int, default=6000, help="requests to pre-build per second")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    tmp = tempfile.TemporaryDirectory(prefix="oncall-bench-")
    db_path = Path(tmp.name) / "bench.db"
    database_url = args.database_url or f"sqlite:///{db_path}"
    port = free_port()
    env = dict(
        os.environ,
        ONCALL_DATABASE_URL=database_url,
        ONCALL_STRIPE_SECRET=SECRET,
        ONCALL_RULES_FILE=str(Path(tmp.name) / "none.toml"),
        ONCALL_ROTAS_DIR=str(Path(tmp.name) / "none"),
    )
    log = open(Path(tmp.name) / "server.log", "wb")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [sys.executable, "-m", "oncall.cli", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            print("server did not start; its log:", (Path(tmp.name) / "server.log").read_text())
            return 1

        warm = build_requests(int(args.warmup * args.rate_guess), port)
        asyncio.run(drive(port, warm, args.connections, args.warmup))
        requests = build_requests(int(args.seconds * args.rate_guess), port)

        cpu0, threads0, t0 = cpu_seconds(server.pid), thread_cpu(server.pid), time.perf_counter()
        clients = asyncio.run(drive(port, requests, args.connections, args.seconds))
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(server.pid) - cpu0
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu(server.pid).items()}
        rss = rss_mib(server.pid)
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
    stored = None
    if args.database_url is None:
        with sqlite3.connect(db_path) as conn:
            stored = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    tmp.cleanup()
    if not latencies:
        print("no answers", statuses)
        return 1
    q = statistics.quantiles(latencies, n=100)
    answered = len(latencies)
    kind = database_url.split("://")[0] + (
        " (temporary file, WAL, synchronous=FULL)" if stored is not None else ""
    )
    by_thread = sorted(((v, k) for k, v in threads.items() if v), reverse=True)
    split = ", ".join(f"{name} {v / answered * 1e6:.0f}" for v, name in by_thread)
    print(f"database:            {kind}")
    print(f"connections:         {args.connections}, {elapsed:.1f} s")
    print(f"answers:             {dict(sorted(statuses.items()))}")
    print(f"stored webhooks/s:   {accepted / elapsed:,.0f}")
    p50, p99, worst = q[49] * 1000, q[98] * 1000, latencies[-1] * 1000
    print(f"latency p50 / p99:   {p50:.2f} ms / {p99:.2f} ms (max {worst:.1f} ms)")
    print(f"server CPU/webhook:  {cpu / answered * 1e6:.0f} µs (user+system, all threads)")
    print(f"  by thread (µs):    {split}")
    print(f"server RSS:          {rss:.0f} MiB")
    if stored is not None:
        print(f"events in database:  {stored} (warm-up included; every 202 is on disk: {stored >= accepted})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
