"""The owner's JSON API (SPEC §4), behind `Authorization: Bearer ONCALL_ADMIN_TOKEN`.

    GET  /api/incidents[?state=&limit=&cursor=]   {"items": [...], "next_cursor": …}
    GET  /api/incidents/{id}                      one incident, with its timeline
    POST /api/incidents/{id}/ack | /resolve       acts as "the owner (API)"
    POST /api/incidents/{id}/contacted            its customers were contacted (promises kept)
    GET  /api/oncall                              {"rotas": [{"rota", "person", "until", "next"}]}

Without a configured token every call is 401: the API is never open.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from oncall.core.incident import STATES
from oncall.core.models import Person
from oncall.service import Service, Verb
from oncall.web.inbound import clock, incident_number

log = logging.getLogger("oncall.api")

API_ACTOR = Person(id="api", name="the owner (API)", language="en")  # a script reads English
VERBS: dict[str, Verb] = {"ack": "ack", "resolve": "resolve", "contacted": "contacted"}


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
    result = await service.act(incident_id, API_ACTOR, VERBS[verb], "api", clock(request))
    view = await service.incident(incident_id)
    body = {"ok": result.ok, "text": result.text, "incident": view.to_json() if view else None}
    return JSONResponse(body, status_code=200 if result.ok else 409)


@router.post("/incidents/{incident_id}/ack")
async def ack(request: Request, incident_id: IncidentId) -> JSONResponse:
    return await _act(request, incident_id, "ack")


@router.post("/incidents/{incident_id}/resolve")
async def resolve(request: Request, incident_id: IncidentId) -> JSONResponse:
    return await _act(request, incident_id, "resolve")


@router.post("/incidents/{incident_id}/contacted")
async def contacted(request: Request, incident_id: IncidentId) -> JSONResponse:
    return await _act(request, incident_id, "contacted")


@router.get("/oncall")
async def oncall(request: Request) -> dict[str, Any]:
    service = _service(request)
    rotas = service.who(clock(request))
    return {"rotas": [r.to_json() for r in rotas]}


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)
