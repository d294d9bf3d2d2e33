"""Ingest on PostgreSQL beside SQLite: the shared side-by-side bench's phase (a), same load.

    .venv/bin/python bench/pg_ingest.py [--repeat 3] [--pg postgresql://127.0.0.1:5432/test]

`../shared/bench` starts the product on SQLite only (it drops every `ONCALL_*` of the shell).
This runs its very phase (a) — `wrk -t2 -c16 -d10s` with `wrk_post.lua`, distinct signed
Stripe failures, each opening its own incident, through the same `bench.phase_a` — against
`oncall serve` on SQLite and on PostgreSQL, alternating, and adds PostgreSQL's own CPU per
accepted webhook: the CPU of every `postgres` process of the server (backends, WAL writer,
checkpointer) from /proc, before and after. On PostgreSQL each run gets a schema of its own
(`search_path`), dropped afterwards, so other users of the database never see it.

The shared bench is found at `--shared` (default `../shared/bench` from the project root).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU (user + system) of every process named `postgres` on the machine."""
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if comm != "postgres":
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", "postgresql://127.0.0.1:5432/test"))
    parser.add_argument("--shared", default=str(Path.cwd().parent / "shared" / "bench"))
    args = parser.parse_args()
    sys.path.insert(0, args.shared)
    # The shared harness, by name at run time (it is not part of this project).
    bench: Any = importlib.import_module("bench")  # phase_a, its settings and its body files
    payloads: Any = importlib.import_module("payloads")
    procs: Any = importlib.import_module("procs")
    systems: Any = importlib.import_module("systems")
    receiver: Any = importlib.import_module("receiver")
    Receiver = receiver.Receiver

    class OncallOn(systems.Oncall):  # type: ignore[misc]
        """The shared bench's product, on the database URL given."""

        def __init__(self, url: str) -> None:
            super().__init__()
            self.url = url

        def start(self, workdir: Path, hold: str, receiver_port: int) -> Any:
            workdir.mkdir(parents=True, exist_ok=True)
            files = payloads.product_files(workdir, hold)
            port = systems.free_port()
            env = self._env({
                "ONCALL_DATABASE_URL": self.url,
                "ONCALL_RULES_FILE": str(files["rules"]),
                "ONCALL_ROTAS_DIR": str(files["rotas"]),
                "ONCALL_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "ONCALL_ADMIN_TOKEN": payloads.ADMIN_TOKEN,
                "ONCALL_STRIPE_SECRET": payloads.STRIPE_SECRET,
                "ONCALL_TELEGRAM_BOT_TOKEN": payloads.TELEGRAM_TOKEN,
                "ONCALL_TELEGRAM_WEBHOOK_SECRET": "bench-telegram-secret",
                "ONCALL_TELEGRAM_API_URL": f"http://127.0.0.1:{receiver_port}/bot",
            })  # fmt: skip
            log = workdir / "server.log"
            procs.run([*self.cmd, "migrate"], cwd=workdir, env=env, log=log, timeout=120)
            p = procs.start([*self.cmd, "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=workdir, env=env, log=log)  # fmt: skip
            srv = systems.Server(p, "127.0.0.1", port, log)
            if not procs.wait_http(f"{srv.base_url}/readyz", 60, p):
                procs.stop(p)
                raise systems.StartError(f"oncall did not become ready:\n{srv.log_tail()}")
            return srv

    root = Path(tempfile.mkdtemp(prefix="oncall-pgbench-"))
    bench.BODIES_DIR = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else root
    results: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgresql": []}
    try:
        with Receiver() as rx:
            for rep in range(-1, args.repeat):  # one discarded warm-up each
                for db in ("sqlite", "postgresql") if rep % 2 == 0 else ("postgresql", "sqlite"):
                    schema = f"bench_{uuid.uuid4().hex[:10]}"
                    if db == "sqlite":
                        url = "sqlite:///oncall.db"
                    else:
                        with psycopg.connect(args.pg, autocommit=True) as conn:
                            conn.execute(f"CREATE SCHEMA {schema}")
                        url = f"{args.pg}?options=-csearch_path%3D{schema}"
                    system = OncallOn(url)
                    ok, why = system.available(root)
                    if not ok:
                        print(f"product not available: {why}")
                        return 1
                    run = f"{uuid.uuid4().hex[:4]}{db[0]}{rep + 1}"
                    pg0: list[float] = []

                    def measure(
                        srv: Any, wd: Path, s: Any = system, run: str = run, pg0: list[float] = pg0
                    ) -> Any:
                        pg0.append(postgres_cpu_seconds())
                        r = bench.phase_a(s, srv, wd, run)
                        r["postgres_cpu_s"] = round(postgres_cpu_seconds() - pg0[0], 2)
                        return r

                    r = bench.with_server(system, root, f"{db}{rep + 1}", "1h", rx, measure)
                    if db == "postgresql":
                        with psycopg.connect(args.pg, autocommit=True) as conn:
                            conn.execute(f"DROP SCHEMA {schema} CASCADE")
                    if "error" in r:
                        print(f"{db}: {r['error'][:500]}")
                        continue
                    pg_us = 1e6 * r["postgres_cpu_s"] / r["accepted"] if r["accepted"] else None
                    r["postgres_cpu_us_per_accepted"] = round(pg_us, 1) if pg_us is not None else None
                    print(f"  {'warm-up ' if rep < 0 else ''}{db}: {r['accepted_per_s']:,.0f} accepted/s, "
                          f"server {r['server_cpu_us_per_accepted']} us, "
                          f"postgres {r['postgres_cpu_us_per_accepted']} us per accepted, "
                          f"idle {r['host_idle_cpu_s']} s", flush=True)  # fmt: skip
                    if rep >= 0:
                        results[db].append(r)
    finally:
        procs.stop_all()
    print()
    print(f"{'median of ' + str(args.repeat):22} {'sqlite':>12} {'postgresql':>12}")
    for label, key in (
        ("accepted/s", "accepted_per_s"),
        ("server CPU us/accepted", "server_cpu_us_per_accepted"),
        ("postgres CPU us/acc.", "postgres_cpu_us_per_accepted"),
        ("p50 ms", "p50_ms"),
        ("p99 ms", "p99_ms"),
        ("host idle CPU s/run", "host_idle_cpu_s"),
        ("non-2xx", "non2xx"),
    ):
        cells = []
        for db in ("sqlite", "postgresql"):
            vals = [r[key] for r in results[db] if r.get(key) is not None]
            cells.append(f"{statistics.median(vals):,.1f}" if vals else "-")
        print(f"{label:22} {cells[0]:>12} {cells[1]:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
