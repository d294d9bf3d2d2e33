"""`POST /slack/actions` (button presses) and `POST /slack/commands` (`/oncall`).

Both are signed by Slack (`X-Slack-Signature`, `X-Slack-Request-Timestamp`), checked with the
SDK's `SignatureVerifier`, which also refuses a timestamp more than 5 minutes away; a bad or
missing signature is 401. Slack wants an answer within 3 seconds, so a button press is
answered 200 at once and acted on right after the answer; the service then edits the page
(`chat.update`) to name who acted. People not in `rotas/people.toml` get a refusal only they
see, and nothing changes. Each signed delivery acts once: a copy replayed within the
signature's 5 minutes is answered (empty, or "already handled") and changes nothing.
"""

from __future__ import annotations

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

from oncall.web import jsonbody
from oncall.web.inbound import (
    SNOOZE,
    ServiceLike,
    channel_of,
    clock,
    config_of,
    find_person,
    first_time,
    incident_number,
    refusal,
    say,
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


async def _verified(request: Request) -> dict[str, str] | JSONResponse:
    """The form of a request Slack signed, or the refusal. The SDK's verifier raises on a
    timestamp that is not a number or a body that is not UTF-8: both are refused here as
    unsigned (401), never a 500 with a traceback anyone could fill the log with."""
    settings = request.app.state.settings
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        return _error(413, "body over the size limit")
    secret = settings.slack_signing_secret
    if secret is None or not secret.get_secret_value().strip():
        return _error(401, "ONCALL_SLACK_SIGNING_SECRET is not set")
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    if not timestamp or not signature:
        return _error(401, "missing X-Slack-Request-Timestamp or X-Slack-Signature")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return _error(401, "X-Slack-Request-Timestamp is not a Unix time in seconds")
    verifier = SignatureVerifier(
        secret.get_secret_value(), _Clock(getattr(request.app.state, "slack_clock", None) or time.time)
    )
    try:
        ok = verifier.is_valid(body, timestamp, signature)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        return _error(401, "wrong or stale Slack signature")
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        return _error(400, "not a Slack request: a form value is not UTF-8")


async def _first_delivery(request: Request) -> bool:
    """True the first time this signed delivery is seen. Slack signs timestamp + body, so the
    signature names one delivery; a copy replayed within the 5 minutes the signature is good
    for is False (answered, not acted on)."""
    delivery = request.headers.get("x-slack-signature", "")
    return await first_time(request.app.state.db, "slack", delivery, clock(request))


@router.post("/slack/actions")
async def actions(request: Request) -> Response:
    got = await _verified(request)
    if isinstance(got, JSONResponse):
        return got
    form = got
    try:
        payload = jsonbody.loads(form.get("payload", ""))
    except jsonbody.UnreadableJson as exc:
        return _error(400, f"not a Slack interaction payload: the payload is {exc}")
    user = _dig(payload, "user", "id")
    actions = payload.get("actions") if isinstance(payload, dict) else None
    action = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(user, str) or not isinstance(action, dict):
        return _error(400, "not a Slack interaction payload: no user id or action")
    service = service_of(request)
    if service is None:  # before the dedup record, so that a retry is not lost
        return _error(503, "the escalation service is not running")
    if not await _first_delivery(request):
        return Response(status_code=200)
    channel_id = str(_dig(payload, "container", "channel_id") or _dig(payload, "channel", "id") or "")
    now = clock(request)
    return Response(
        status_code=200, background=BackgroundTask(_act, request, service, user, channel_id, action, now)
    )


def _dig(obj: Any, outer: str, inner: str) -> Any:
    """`obj[outer][inner]`, or None when the payload has another shape."""
    value = obj.get(outer) if isinstance(obj, dict) else None
    return value.get(inner) if isinstance(value, dict) else None


async def _act(
    request: Request, service: ServiceLike, user: str, channel_id: str, action: dict[str, Any], now: datetime
) -> None:
    slack = channel_of(request, "slack")
    config = config_of(request)
    actor = find_person(config, slack=user)
    if actor is None:
        if channel_id:
            await _reply(slack.ephemeral(channel_id, user, refusal(config)))
        return
    verb, _, number = str(action.get("action_id", "")).partition(":")
    incident = incident_number(number or str(action.get("value", "")))
    if verb not in ("ack", "resolve", "snooze", "contacted") or incident is None:
        return
    result = await service.act(incident, actor, verb, "slack", now, SNOOZE if verb == "snooze" else None)
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
    form = got
    service = service_of(request)
    if service is None:
        return _error(503, "the escalation service is not running")
    config = config_of(request)
    actor = find_person(config, slack=form.get("user_id", ""))
    if not await _first_delivery(request):
        return JSONResponse(
            {"response_type": "ephemeral", "text": say(config, actor, "reply.already_handled")}
        )
    if actor is None:
        return JSONResponse({"response_type": "ephemeral", "text": refusal(config)})
    command = form.get("command", "/oncall").lstrip("/")
    text = f"/{command} {form.get('text', '')}".strip()
    if command not in ("oncall", "incidents", "ack", "resolve", "snooze", "contacted"):
        text = "/oncall"
    reply = await answer(service, config, actor, text, clock(request), via="slack")
    return JSONResponse({"response_type": "ephemeral", "text": reply})
