"""How fast rotas resolve: `on_call()` per call, and a year of `shifts()`.

Run: .venv/bin/python bench/rota.py

The rota has 3 layers (a weekly primary, a daily night layer, a weekend layer) and 10
overrides, in Europe/Madrid, so both DST changes of the year are inside the range.
Targets: on_call <= 20 µs per call, 52 weeks of shifts <= 50 ms.
"""

from __future__ import annotations

import random
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from oncall.core.models import ActiveWindow, Handoff, Layer, Override, Rota, Rotation, Window
from oncall.core.rota import on_call, shifts

TZ = ZoneInfo("Europe/Madrid")
START = datetime(2026, 1, 5, tzinfo=TZ)


def build() -> Rota:
    primary = Layer(
        "primary", ("ana", "luis", "marta"), Rotation("weekly", 7), Handoff(540, 0), date(2026, 1, 1)
    )
    nights = Layer(
        "nights",
        ("pablo", "sara"),
        Rotation("daily", 1),
        Handoff(20 * 60),
        date(2026, 1, 1),
        tuple(ActiveWindow(d, Window(20 * 60, 1440)) for d in range(5))
        + tuple(ActiveWindow(d, Window(0, 8 * 60)) for d in range(1, 6)),
    )
    weekends = Layer(
        "weekends",
        ("ana", "luis", "marta"),
        Rotation("weekly", 7),
        Handoff(18 * 60, 4),
        date(2026, 1, 1),
        (
            ActiveWindow(4, Window(18 * 60, 1440)),
            ActiveWindow(5, Window(0, 1440)),
            ActiveWindow(6, Window(0, 1440)),
            ActiveWindow(0, Window(0, 9 * 60)),
        ),
    )
    rng = random.Random(7)
    overrides = tuple(
        Override(
            rng.choice(["ana", "luis", "marta", "pablo", "sara"]),
            START + timedelta(days=d),
            START + timedelta(days=d, hours=rng.randint(4, 48)),
        )
        for d in sorted(rng.sample(range(360), 10))
    )
    return Rota("bench", TZ, (primary, nights, weekends), overrides)


def main() -> None:
    rota = build()
    rng = random.Random(1)
    instants = [START + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(20000)]

    colds = []
    for t in instants[:5]:  # a rota never asked before: resolves the 28-day block around t
        fresh = build()
        began = time.perf_counter()
        on_call(fresh, t)
        colds.append(time.perf_counter() - began)
    cold_call = min(colds) * 1e6

    for t in instants[:200]:  # warm the memo of resolved blocks and edges, as a running server would
        on_call(rota, t)
    began = time.perf_counter()
    for t in instants:
        on_call(rota, t)
    per_call = (time.perf_counter() - began) / len(instants) * 1e6

    runs = []
    for _ in range(5):
        began = time.perf_counter()
        year = shifts(rota, START, START + timedelta(weeks=52))
        runs.append(time.perf_counter() - began)
    cold = runs[0] * 1e3
    best = min(runs) * 1e3

    n = len(instants)
    print(f"on_call():          {per_call:7.1f} µs/call  (target <= 20 µs; {n} random instants in 2026)")
    print(f"on_call() cold:     {cold_call:7.1f} µs       (first call on a fresh rota; best of 5)")
    m = len(year)
    print(f"shifts() 52 weeks:  {best:7.1f} ms       (target <= 50 ms; first run {cold:.1f} ms, {m} shifts)")
    print("rota: 3 layers (weekly primary, daily nights, weekends), 10 overrides, Europe/Madrid")


if __name__ == "__main__":
    main()
