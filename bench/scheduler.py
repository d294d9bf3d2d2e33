"""Scheduler and routing benchmark: `.venv/bin/python bench/scheduler.py [--idle SECONDS]`.

1. idle:     10,000 held incidents in SQLite, the scheduler running (with the config watcher);
             CPU time used by the whole process over 30 idle seconds. Target ≤ 30 ms.
2. lateness: 1,000 holds ending in the same second; for each, how long after its due time the
             transaction that fired it committed. Target p99 ≤ 100 ms.
3. routing:  one event routed through 200 rules. Target ≤ 50 µs per event.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import timeit
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oncall.channels.base import Delivery, PageMessage
from oncall.core.incident import make_world, open_incident
from oncall.core.models import (
    BusinessHours,
    Config,
    Customer,
    Event,
    Match,
    Order,
    Person,
    Policy,
    Rule,
    RulesConfig,
    Shop,
    Step,
    Target,
    Window,
)
from oncall.core.rules import Router
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store import incidents as store
from oncall.store.database import Connection, open_database

MADRID = ZoneInfo("Europe/Madrid")


class NullChannel:
    """Accepts every page at once: the benchmark measures the scheduler, not a provider."""

    name = "telegram"

    def configured(self) -> bool:
        return True

    async def send(self, message: PageMessage) -> Delivery:
        return Delivery(ok=True, ref="x")

    async def update(self, ref: str, text: str) -> Delivery:
        return Delivery(ok=True, ref=ref)


def config() -> Config:
    rule = Rule(
        "failures",
        Match(kind=frozenset({"payment_failed"})),
        "page",
        policy="p",
        hold=timedelta(minutes=5),
        group_by=("order.id",),
    )
    rules = RulesConfig(
        shop=Shop("Bench", MADRID, "es", timedelta(hours=2), Target("person", "ana")),
        business_hours=BusinessHours(week={d: (Window(540, 1140),) for d in range(5)}),
        policies={
            "p": Policy("p", (Step((Target("person", "ana"),), ("telegram",), timedelta(minutes=10)),))
        },
        rules=(rule,),
        messages={},
    )
    return Config(rules=rules, people={"ana": Person("ana", "Ana", telegram=1)}, rotas={})


def ev(n: int, at: datetime) -> Event:
    return Event(
        source="stripe",
        kind="payment_failed",
        dedup_key=f"e{n}",
        received_at=at,
        summary="card declined",
        customer=Customer(f"Customer {n}", f"c{n}@example.com", None, "es"),
        order=Order(f"o{n}", str(n), 10.0 + n % 7, "EUR"),
        id=n,
    )


def seed(db_url: str, cfg: Config, count: int, due: datetime, offset: int = 0) -> None:
    db = open_database(db_url)
    world = make_world(cfg)
    rule = cfg.rules.rules[0]

    def tx(conn: Connection) -> None:
        for i in range(offset, offset + count):
            e = ev(i, due - rule.hold)
            key = f"order.id=o{i}"
            iid = store.new_incident_id(conn, rule.name, key, e.received_at)
            assert iid is not None
            out = open_incident(iid, rule, key, e, e.received_at, world)
            store.save_incident(conn, replace(out.incident, wake_at=due))

    db.transaction_sync(tx)
    db.close()


async def idle_cpu(db_url: str, cfg: Config, seconds: float) -> float:
    db = open_database(db_url)
    service = Service(db, lambda: cfg, {"telegram": NullChannel()}, Settings(_env_file=None))  # type: ignore[call-arg]
    rules_dir = Path(tempfile.mkdtemp())
    (rules_dir / "rotas").mkdir()
    (rules_dir / "escalation_rules.toml").write_text("# watched\n")
    from oncall.config.watch import ConfigWatcher

    watcher = ConfigWatcher(rules_dir / "escalation_rules.toml", rules_dir / "rotas")
    scheduler = Scheduler(service, on_idle=watcher.poll, idle_every=2.0)
    scheduler.start()
    await asyncio.sleep(2.0)  # start-up work (recovery, first MIN query) is not idle time
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    used = time.process_time() - cpu0
    await scheduler.stop()
    await db.aclose()
    return used


async def lateness(db_url: str, cfg: Config, due: datetime) -> list[float]:
    db = open_database(db_url)
    service = Service(db, lambda: cfg, {"telegram": NullChannel()}, Settings(_env_file=None))  # type: ignore[call-arg]
    late: list[float] = []
    all_fired = asyncio.Event()
    fire = service.fire_due

    async def timed(now: datetime, limit: int | None = None) -> int:
        n = await fire(now, limit)
        committed = datetime.now(UTC)
        late.extend([(committed - due).total_seconds()] * n)
        if len(late) >= 1000:
            all_fired.set()
        return n

    service.fire_due = timed
    scheduler = Scheduler(service)
    scheduler.start()
    await all_fired.wait()
    await scheduler.stop()
    await db.aclose()
    return late


def routing() -> float:
    kinds = ["payment_failed", "checkout_error", "ticket_created", "dispute_opened", "order_created"]
    rules = (
        *(
            Rule(
                f"r{i}",
                Match(
                    kind=frozenset({kinds[i % 5]}),
                    hours="closed" if i % 2 else "any",
                    severity=frozenset({"high"}) if i % 3 == 0 else None,
                    amount_at_least=float(i) if i % 4 == 0 else None,
                    text=re.compile(rf"(?i)error {i}\b") if i % 5 == 0 else None,
                ),
                "page",
                policy="p",
            )
            for i in range(199)
        ),
        Rule("catch-all", Match(), "post"),
    )
    cfg = replace(config().rules, rules=rules)
    router = Router(cfg)
    world = make_world(replace(config(), rules=cfg))
    at = datetime(2026, 11, 28, 22, 10, tzinfo=UTC)
    e = ev(1, at)
    router.route(e, at, world.is_open)  # warm the holiday cache
    n = 20_000
    seconds = timeit.timeit(lambda: router.route(e, at, world.is_open), number=n)
    return seconds / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=float, default=30.0, help="idle seconds measured (default 30)")
    args = parser.parse_args()
    cfg = config()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = open_database(url)
        db.migrate()
        db.close()

        seed(url, cfg, 10_000, datetime.now(UTC) + timedelta(hours=1))
        used = asyncio.run(idle_cpu(url, cfg, args.idle))
        print(f"idle: 10,000 held incidents, CPU over {args.idle:g} s: {used * 1000:.1f} ms (target ≤ 30 ms)")

        due = datetime.now(UTC) + timedelta(seconds=3)
        seed(url, cfg, 1000, due, offset=10_000)
        late = asyncio.run(lateness(url, cfg, due))
        q = statistics.quantiles(late, n=100)
        print(
            f"lateness: 1,000 timers due in the same second: p50 {q[49] * 1000:.0f} ms, "
            f"p99 {q[98] * 1000:.0f} ms, max {max(late) * 1000:.0f} ms (target p99 ≤ 100 ms)"
        )
    per = routing()
    print(f"routing: 200 rules, {per * 1e6:.1f} µs per event (target ≤ 50 µs)")


if __name__ == "__main__":
    main()
