"""`POST /slack/actions` (button presses) and `POST /slack/commands` (`/oncall`).

Both are signed by Slack (`X-Slack-Signature`, `X-Slack-Request-Timestamp`), checked with the
SDK's `SignatureVerifier`, which also refuses a timestamp more than 5 minutes away; a bad or
missing signature is 401. Slack wants an answer within 3 seconds, so a button press is
answered 200 at once and acted on right after the answer; the service then edits the page
(`chat.update`) to name who acted. People not in `rotas/people.toml` get a refusal only they
see, and nothing changes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from slack_sdk.signature import Clock, SignatureVerifier
from starlette.background import BackgroundTask

from oncall.web.inbound import (
    REFUSAL,
    SNOOZE,
    ServiceLike,
    channel_of,
    clock,
    config_of,
    find_person,
    service_of,
)
from oncall.web.telegram import answer

log = logging.getLogger("oncall.slack")

router = APIRouter(tags=["paging"])


class _Clock(Clock):
    """The verifier's clock, from `app.state.slack_clock` when a test set one."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _verified(request: Request) -> tuple[bytes, dict[str, str]] | JSONResponse:
    settings = request.app.state.settings
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        return _error(413, "body over the size limit")
    secret = settings.slack_signing_secret
    if secret is None:
        return _error(401, "ONCALL_SLACK_SIGNING_SECRET is not set")
    verifier = SignatureVerifier(
        secret.get_secret_value(), _Clock(getattr(request.app.state, "slack_clock", None) or time.time)
    )
    ok = verifier.is_valid(
        body,
        request.headers.get("x-slack-request-timestamp"),
        request.headers.get("x-slack-signature"),
    )
    if not ok:
        return _error(401, "missing, wrong or stale Slack signature")
    return body, dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))


@router.post("/slack/actions")
async def actions(request: Request) -> Response:
    got = await _verified(request)
    if isinstance(got, JSONResponse):
        return got
    _, form = got
    try:
        payload = json.loads(form["payload"])
        user = str(payload["user"]["id"])
        action = payload["actions"][0]
    except (KeyError, IndexError, TypeError, ValueError):
        return _error(400, "not a Slack interaction payload")
    service = service_of(request)
    if service is None:
        return _error(503, "the escalation service is not running")
    channel_id = str(
        (payload.get("container") or {}).get("channel_id") or (payload.get("channel") or {}).get("id") or ""
    )
    now = clock(request)
    return Response(
        status_code=200, background=BackgroundTask(_act, request, service, user, channel_id, action, now)
    )


async def _act(
    request: Request, service: ServiceLike, user: str, channel_id: str, action: dict[str, Any], now: datetime
) -> None:
    slack = channel_of(request, "slack")
    actor = find_person(config_of(request), slack=user)
    if actor is None:
        if channel_id:
            await _reply(slack.ephemeral(channel_id, user, REFUSAL))
        return
    verb, _, number = str(action.get("action_id", "")).partition(":")
    number = number or str(action.get("value", ""))
    if verb not in ("ack", "resolve", "snooze") or not number.isdigit():
        return
    result = await service.act(int(number), actor, verb, "slack", now, SNOOZE if verb == "snooze" else None)
    if not result.ok and channel_id:
        await _reply(slack.ephemeral(channel_id, user, result.text))


async def _reply(sending: Awaitable[Any]) -> None:
    """An ephemeral answer that cannot be sent (bot token unset, Slack down) is logged in one
    line: the button press was already answered 200 and handled."""
    try:
        await sending
    except Exception as exc:
        log.warning("Slack reply not sent: %s", exc)


@router.post("/slack/commands")
async def commands(request: Request) -> Response:
    got = await _verified(request)
    if isinstance(got, JSONResponse):
        return got
    _, form = got
    service = service_of(request)
    if service is None:
        return _error(503, "the escalation service is not running")
    config = config_of(request)
    actor = find_person(config, slack=form.get("user_id", ""))
    if actor is None:
        return JSONResponse({"response_type": "ephemeral", "text": REFUSAL})
    command = form.get("command", "/oncall").lstrip("/")
    text = f"/{command} {form.get('text', '')}".strip()
    if command not in ("oncall", "incidents", "ack", "resolve", "snooze"):
        text = "/oncall"
    reply = await answer(service, config, actor, text, clock(request), via="slack")
    return JSONResponse({"response_type": "ephemeral", "text": reply})
