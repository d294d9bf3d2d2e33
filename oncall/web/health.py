"""`/healthz` (the process answers) and `/readyz` (it can do its job: store and configuration)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from oncall.store import StoreError

router = APIRouter(tags=["health"])

STORE_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> JSONResponse:
    """200 when every check passes, else 503; `checks` names what fails and why."""
    state = request.app.state
    checks: dict[str, dict[str, Any]] = {}
    try:
        await asyncio.wait_for(state.db.ping(), STORE_TIMEOUT_SECONDS)
        checks["store"] = {"ok": True, "detail": f"{state.db.dialect} reachable"}
    except TimeoutError:
        why = state.db.last_error  # e.g. "… database is locked": what the waiting work last met
        detail = f"no answer within {STORE_TIMEOUT_SECONDS:g}s" + (f"; last error: {why}" if why else "")
        checks["store"] = {"ok": False, "detail": detail}
    except StoreError as exc:
        checks["store"] = {"ok": False, "detail": str(exc)}
    if getattr(state, "config", None) is not None:
        error = getattr(state, "config_error", None)
        detail = f"loaded; the last edit was not applied (the previous version is in force): {error}"
        checks["config"] = {"ok": True, "detail": detail if error else "loaded"}
    else:
        error = getattr(state, "config_error", None)
        detail = "configuration not loaded" + (f": {error}" if error else "")
        checks["config"] = {"ok": False, "detail": detail}
    errors = getattr(state, "startup_errors", [])
    checks["startup"] = {"ok": not errors, "detail": "; ".join(errors) or "complete"}
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )
