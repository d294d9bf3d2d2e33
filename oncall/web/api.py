"""The owner's JSON API (SPEC §4), behind `Authorization: Bearer ONCALL_ADMIN_TOKEN`, and the
wiring that starts the escalation service and its scheduler with the web app.

    GET  /api/incidents[?state=&limit=&cursor=]   {"items": [...], "next_cursor": …}
    GET  /api/incidents/{id}                      one incident, with its timeline
    POST /api/incidents/{id}/ack | /resolve       acts as "the owner (API)"
    GET  /api/oncall                              {"rotas": [{"rota", "person", "until", "next"}]}

Without a configured token every call is 401: the API is never open.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse

from oncall.channels.base import Channel
from oncall.core.models import Person
from oncall.metrics import METRICS
from oncall.service import Service
from oncall.settings import Settings
from oncall.web.ack import incident_number

log = logging.getLogger("oncall.api")

API_ACTOR = Person(id="api", name="the owner (API)")
STATES = ("held", "triggered", "acknowledged", "resolved", "cancelled", "deferred")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _authorised(request: Request) -> None:
    token = request.app.state.settings.admin_token
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if token is None:
        raise ApiError(401, "the API is off: set ONCALL_ADMIN_TOKEN")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), token.get_secret_value().encode()
    ):
        raise ApiError(401, "missing or wrong bearer token")


def _service(request: Request) -> Service:
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:
        raise ApiError(503, "the escalation service is not running")
    return service


# The store's ids are 64-bit: a larger number is a 400, not an overflow deep in the driver.
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]

router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(_authorised)])


@router.get("/incidents")
async def list_incidents(
    request: Request, state: str | None = None, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    service = _service(request)
    if state is not None and state not in (*STATES, "open"):
        raise ApiError(400, f"unknown state {state!r} (known: open, {', '.join(STATES)})")
    if not 1 <= limit <= 500:
        raise ApiError(400, "limit must be between 1 and 500")
    before = None
    if cursor:
        before = incident_number(cursor)
        if before is None:
            raise ApiError(400, "cursor must be a value given as next_cursor")
    items = await service.incidents(
        open_only=state == "open",
        state=None if state in (None, "open") else state,
        limit=limit + 1,
        before=before,
    )
    more = len(items) > limit
    items = items[:limit]
    return {
        "items": [i.to_json() for i in items],
        "next_cursor": str(items[-1].id) if more and items else None,
    }


@router.get("/incidents/{incident_id}")
async def get_incident(request: Request, incident_id: IncidentId) -> dict[str, Any]:
    view = await _service(request).incident(incident_id)
    if view is None:
        raise ApiError(404, f"no incident {incident_id}")
    return view.to_json()


async def _act(request: Request, incident_id: int, verb: str) -> JSONResponse:
    service = _service(request)
    if await service.incident(incident_id) is None:
        raise ApiError(404, f"no incident {incident_id}")
    result = await service.act(
        incident_id, API_ACTOR, "ack" if verb == "ack" else "resolve", "api", datetime.now(UTC)
    )
    view = await service.incident(incident_id)
    body = {"ok": result.ok, "text": result.text, "incident": view.to_json() if view else None}
    return JSONResponse(body, status_code=200 if result.ok else 409)


@router.post("/incidents/{incident_id}/ack")
async def ack(request: Request, incident_id: IncidentId) -> JSONResponse:
    return await _act(request, incident_id, "ack")


@router.post("/incidents/{incident_id}/resolve")
async def resolve(request: Request, incident_id: IncidentId) -> JSONResponse:
    return await _act(request, incident_id, "resolve")


@router.get("/oncall")
async def oncall(request: Request) -> dict[str, Any]:
    service = _service(request)
    rotas = service.who(datetime.now(UTC))
    return {"rotas": [r.to_json() for r in rotas]}


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


# ---------------------------------------------------------------------------------------------
# Wiring


def install(app: FastAPI) -> None:
    """Mounts the API and starts the escalation service and scheduler with the app."""
    app.include_router(router)
    app.add_exception_handler(ApiError, _api_error)
    app.state.startup_hooks.append(_start)
    app.state.shutdown_hooks.append(_stop)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The paging channels; one without credentials is reported as not configured and its
    pages go to the console (log)."""
    from oncall.channels import build_channels as build

    channels = build(settings)
    off = [name for name, c in channels.items() if not c.configured()]
    if off:
        log.info("channels without credentials (pages go to the console log): %s", ", ".join(off))
    return channels


async def _start(app: FastAPI) -> None:
    from oncall.scheduler import Heartbeat, Scheduler

    state = app.state
    settings = state.settings
    reassurer = None
    try:
        from oncall.reassure import Reassurer

        reassurer = Reassurer(state.db, settings)
    except ImportError:
        log.warning("customer reassurance unavailable")
    service = Service(state.db, lambda: state.config, build_channels(settings), settings, reassurer)
    state.service = service
    previous = state.on_event_stored

    def stored(event_id: int) -> None:
        service.on_event_stored(event_id)
        if previous is not None:
            previous(event_id)

    state.on_event_stored = stored
    watcher = _watcher(app, service)
    scheduler = Scheduler(service, on_idle=watcher, idle_every=2.0)
    state.scheduler = scheduler
    scheduler.start()
    if settings.heartbeat_url:
        state.heartbeat = Heartbeat(settings.heartbeat_url, scheduler)
        state.heartbeat.start()


async def _stop(app: FastAPI) -> None:
    heartbeat = getattr(app.state, "heartbeat", None)
    if heartbeat is not None:
        await heartbeat.stop()
    scheduler = getattr(app.state, "scheduler", None)
    if scheduler is not None:
        await scheduler.stop()


def _watcher(app: FastAPI, service: Service) -> Any:
    """Re-reads the owner's files when they change (SPEC §2.2: in force within 5 s). A bad edit
    keeps the last good configuration; the owner is told in the log, in /readyz and by a
    message to `shop.fallback`."""
    try:
        from oncall.config.watch import ConfigWatcher
    except ImportError:
        return None
    settings = app.state.settings
    watcher = ConfigWatcher(settings.rules_file, settings.rotas_dir)
    first = [True]

    def poll() -> bool:
        """True when a new configuration came into force."""
        change = watcher.poll()
        if change is None:
            return False
        starting, first[0] = first[0], False
        if change.ok and change.config is not None:
            if not starting:
                log.info("configuration reloaded")
            app.state.config, app.state.config_error = change.config, None
            return True
        app.state.config_error = "; ".join(change.problems)
        if starting:
            return False  # the app has already logged why the files did not load
        log.error("configuration change not applied (keeping the last good one): %s", app.state.config_error)
        METRICS.config_reload_failed()
        if app.state.config is not None:
            shop = app.state.config.rules.shop.name
            head = f"{shop}: your edit was not applied; the previous configuration stays in force."
            service.notify_fallback("\n".join([head, *change.problems]))
        return False

    poll()
    return poll
