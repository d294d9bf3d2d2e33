"""The writer thread's share of a flood, in process: `.venv/bin/python bench/route_writer.py`.

    .venv/bin/python bench/route_writer.py [--events 10000] [--database-url URL] [--profile]

The events of `bench/intake_e2e.py` (distinct Stripe payment failures, each its own order and
customer; closed all day; hold 1 h, so nothing is paged) are stored `--step` (64) at a time (the
writer batches them), then routed: half as a backlog, half a scheduler round per step stored. Prints the
CPU of the writer thread per event for each phase (it runs the SQL, SQLite's C time included).
No HTTP, no signature: `bench/intake_e2e.py` measures the whole server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intake_e2e import PEOPLE, ROTA, RULES, failure_body

from oncall.config.loader import load_config
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.sources import stripe as stripe_source
from oncall.store.database import Database, open_database


def writer_cpu(db: Database) -> float:
    """CPU seconds of the writer thread so far."""
    thread = db._thread
    assert thread is not None and thread.native_id is not None
    stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


async def run(url: str, count: int, root: Path, step: int) -> tuple[float, float, float]:
    cfg = load_config(root / "escalation_rules.toml", root / "rotas")
    db = open_database(url)
    db.migrate()
    service = Service(db, lambda: cfg, {}, Settings(_env_file=None))  # type: ignore[call-arg]
    now = datetime.now(UTC)
    events = []
    for i in range(count):
        body = failure_body(i, "RW", now)
        events.append((stripe_source.normalise(json.loads(body), received_at=now, body=body), body))
    await db.ping()
    half = count // 2
    cpu0 = writer_cpu(db)
    for start in range(0, half, step):
        await asyncio.gather(*(db.store_event(e, b) for e, b in events[start : start + step]))
    cpu1 = writer_cpu(db)
    scheduler = Scheduler(service)
    await scheduler.run_once()  # the first half's backlog, in full batches
    cpu2 = writer_cpu(db)
    tx0 = db.transactions
    for start in range(half, count, step):
        # The flood: each wake-up finds the events stored since the last round.
        await asyncio.gather(*(db.store_event(e, b) for e, b in events[start : start + step]))
        await scheduler.run_once()
    cpu3 = writer_cpu(db)
    print(f"transactions in the flood: {db.transactions - tx0} for {count - half} events")
    incidents = await db.transaction(lambda conn: conn.fetchone("SELECT COUNT(*) FROM incidents")[0])  # type: ignore[index]
    await service.aclose()
    await db.aclose()
    assert incidents == count, f"{incidents} incidents for {count} events"
    store = (cpu1 - cpu0) / half
    return store, (cpu2 - cpu1) / half, (cpu3 - cpu2) / (count - half) - store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--step", type=int, default=64, help="webhooks stored per transaction and round")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="oncall-rw-")
    root = Path(tmp.name)
    (root / "rotas").mkdir()
    (root / "escalation_rules.toml").write_text(RULES)
    (root / "rotas" / "people.toml").write_text(PEOPLE)
    (root / "rotas" / "weekend.toml").write_text(ROTA)
    url = args.database_url or f"sqlite:///{root / 'bench.db'}"
    t0 = time.perf_counter()
    store, backlog, flood = asyncio.run(run(url, args.events, root, args.step))
    wall = time.perf_counter() - t0
    print(f"database:               {url.split('://')[0]}, {args.events} events, {wall:.1f} s")
    print(f"writer CPU, store:      {store * 1e6:.0f} µs per event ({args.step} at a time: one transaction)")
    print(f"writer CPU, routing:    {backlog * 1e6:.0f} µs per event (a backlog, 200 per batch)")
    print(f"             in a flood: {flood * 1e6:.0f} µs per event (a round per {args.step} stored)")
    print(f"writer CPU, flood total: {(store + flood) * 1e6:.0f} µs per event")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
