"""`GET /metrics`: Prometheus text exposition (SPEC §4; no authentication, no secrets).

The counters come from `oncall.metrics.METRICS`; gauges are read at scrape time: incidents by
state, timers waiting and overdue, pages waiting to be sent, promises by state (from the store, within
`STORE_TIMEOUT_SECONDS`; `oncall_store_up` says whether that worked), whether the last edit of
the owner's files is in force, whether the scheduler is healthy, and the build.
"""

from __future__ import annotations

import asyncio
import platform
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse

from oncall import __version__
from oncall.core.models import SOURCES
from oncall.metrics import METRICS, family, sample
from oncall.store import StoreError
from oncall.store.gauges import read_gauges
from oncall.web.inbound import now_of

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STORE_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["health"])


async def exposition(app: FastAPI) -> str:
    state = app.state
    out = METRICS.render(SOURCES)
    now = now_of(app)
    store: dict[str, Any] | None
    try:
        store = await asyncio.wait_for(
            state.db.transaction(lambda conn: read_gauges(conn, now)), STORE_TIMEOUT_SECONDS
        )
    except (TimeoutError, StoreError):
        store = None
    family(out, "oncall_store_up", "gauge", "1 when the store answered this scrape.")
    out.append(sample("oncall_store_up", 1 if store is not None else 0))
    if store is not None:
        family(out, "oncall_incidents", "gauge", "Incidents by state.")
        for name, n in store["states"].items():
            out.append(sample("oncall_incidents", n, state=name))
        family(out, "oncall_timer_queue_depth", "gauge", "Timers scheduled (incidents and the digest).")
        out.append(sample("oncall_timer_queue_depth", store["timers"]))
        family(out, "oncall_timers_overdue", "gauge", "Incident timers past their due time, not yet run.")
        out.append(sample("oncall_timers_overdue", store["overdue"]))
        name = "oncall_timers_overdue_seconds"
        family(out, name, "gauge", "How far past due the oldest waiting incident timer is (0: none).")
        out.append(sample(name, round(float(store["overdue_seconds"]), 3)))
        family(out, "oncall_pages_waiting", "gauge", "Pages recorded but not yet sent, by state.")
        for name, n in store["pages"].items():
            out.append(sample("oncall_pages_waiting", n, state=name))
        family(out, "oncall_promises", "gauge", "Promises to customers in the store, by state.")
        for name, n in store["promises"].items():
            out.append(sample("oncall_promises", n, state=name))
    config_ok = getattr(state, "config", None) is not None and getattr(state, "config_error", None) is None
    name = "oncall_config_ok"
    family(out, name, "gauge", "1 when the owner's files as they are now are the configuration in force.")
    out.append(sample(name, 1 if config_ok else 0))
    scheduler = getattr(state, "scheduler", None)
    family(out, "oncall_scheduler_healthy", "gauge", "1 when the scheduler's last round succeeded.")
    out.append(sample("oncall_scheduler_healthy", 1 if getattr(scheduler, "healthy", False) else 0))
    family(out, "oncall_build_info", "gauge", "The running version of oncall.")
    out.append(sample("oncall_build_info", 1, version=__version__, python=platform.python_version()))
    return "\n".join(out) + "\n"


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    text = await exposition(request.app)
    return PlainTextResponse(text, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
