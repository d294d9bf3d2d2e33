"""The web application: `create_app()` builds it; `oncall serve` runs it under uvicorn.

State other parts use: `app.state.settings`, `.db` (the `Database`), `.config` (latest good
`Config` or None, with `.config_error` saying why), `.service` (the escalation service, when
set), `.on_event_stored` (called with each newly stored event's id, e.g. to wake the router),
`.clock` (the app's `oncall.clock.Clock`, from `create_app(clock=…)`): every part reads it
through `oncall.web.inbound.now_of(app)` at each call, so one clock — even one a test sets after
`create_app` — drives the intake, the service, the scheduler, the pages and the views.
Start/stop work joins the lifespan through `app.state.startup_hooks` / `.shutdown_hooks`:
lists of `async def hook(app)`; shutdown hooks run in reverse order. A start-up hook that
raises (e.g. database down) is logged and listed in `/readyz`; webhook intake still serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from oncall import __version__, acklinks, logredact
from oncall.clock import Clock, system_clock
from oncall.core.models import SOURCES as SOURCE_NAMES
from oncall.settings import Settings
from oncall.store import StoreError, StoreUnavailable, open_database
from oncall.web import ack, api, health, metrics, slack, status, telegram, twilio, voice, wiring
from oncall.web.bodyguard import BodyGuard, BodyRefused
from oncall.web.inbound import now_of
from oncall.web.webhooks import WebhookIntake, add_openapi

log = logging.getLogger("oncall")

Hook = Callable[[FastAPI], Awaitable[None]]


class _AsgiEndpoint:
    """Wraps an ASGI callable so Starlette's Route passes it scope/receive/send untouched."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class OncallApp(FastAPI):
    """FastAPI with a fast path: `POST /webhooks/*` goes straight to the intake endpoint,
    skipping the middleware stack and the router (a third of the CPU of a webhook). Routes
    for the same paths exist too, so the app behaves the same when mounted or wrapped.

    Every HTTP request, on either path, reads its body through a `BodyGuard` (body time-out
    and size limit, see `web.bodyguard`); a client that leaves mid-body is one INFO line."""

    webhook_endpoints: dict[str, Callable[..., Awaitable[None]]]
    body_timeout: float
    max_body_bytes: int

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        guard = BodyGuard(receive, send, self.body_timeout, self.max_body_bytes)
        try:
            endpoint = self.webhook_endpoints.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, guard.receive, guard.send)
            else:
                await super().__call__(scope, guard.receive, guard.send)
        except BodyRefused as refused:
            await guard.refuse(refused)
        except ClientDisconnect:
            # Nobody to answer; not a traceback at ERROR, which anyone could fill the log with.
            log.info("client went away before sending the whole body: %s %r", scope["method"], scope["path"])


def load_config_into(app: FastAPI) -> None:
    """Loads the owner's files into `app.state.config`; a failure keeps the previous one.

    Webhook intake never depends on this: events are stored whatever the configuration."""
    settings: Settings = app.state.settings
    try:
        from oncall.config import load_config
    except ImportError as exc:
        app.state.config_error = f"configuration loader unavailable ({exc})"
        return
    try:
        app.state.config = load_config(settings.rules_file, settings.rotas_dir)
        app.state.config_error = None
    except Exception as exc:  # ConfigError lists every problem; anything else is reported too
        app.state.config_error = str(exc)
        log.error("configuration not loaded: %s", exc)


def describe_setup(settings: Settings) -> str:
    """Which webhook sources and channels are configured — names only, never a secret."""
    sources = [s for s in SOURCE_NAMES if settings.secrets_for(s)]
    channels = {
        "telegram": settings.telegram_bot_token is not None,
        "slack": settings.slack_bot_token is not None,
        # As each channel's own `configured()`: SMS needs a sender, e-mail a From address.
        "sms": bool(settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from),
        "voice": bool(settings.twilio_account_sid and settings.twilio_auth_token and settings.voice_from),
        "email": bool(settings.smtp_host and settings.smtp_from),
    }
    on = ", ".join(c for c, ok in channels.items() if ok) or "none"
    off = ", ".join(c for c, ok in channels.items() if not ok) or "none"
    return (
        f"webhook sources with a secret: {', '.join(sources) or 'none'}"
        f" (others answer 401: {', '.join(s for s in SOURCE_NAMES if s not in sources) or 'none'}); "
        f"channels on: {on}; off (pages go to the console log): {off}"
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Handlers the server set up before starting us (uvicorn with a log config) mask too.
    logredact.protect(app.state.settings)
    db = app.state.db
    if app.state.migrate_on_start:
        try:
            applied = await asyncio.to_thread(db.migrate)
            if applied:
                log.info("database migrations applied: %s", ", ".join(applied))
        except StoreError as exc:
            # Keep serving: webhooks answer 503 (platforms retry) and /readyz says why.
            log.error("database migrations not applied: %s", exc)
    load_config_into(app)
    log.info(
        "oncall %s: store %s %s; %s",
        __version__,
        db.dialect,
        db.describe(),
        describe_setup(app.state.settings),
    )
    try:
        for hook in list(app.state.startup_hooks):
            try:
                await hook(app)
            except Exception as exc:
                # E.g. the database is down at start: keep taking webhooks (503 until it is
                # back, so platforms retry) and let /readyz report the part that did not start.
                name = getattr(hook, "__qualname__", repr(hook))
                app.state.startup_errors.append(f"{name}: {exc}")
                log.exception("start-up step %s failed", name)
        yield
    finally:
        for hook in reversed(list(app.state.shutdown_hooks)):
            try:
                await hook(app)
            except Exception:
                log.exception("shutdown hook %r failed", hook)
        await db.aclose()


def create_app(
    settings: Settings | None = None, *, migrate: bool = True, clock: Clock | None = None, **overrides: Any
) -> FastAPI:
    """The app. `overrides` replace settings fields (`create_app(database_url=…)`); `migrate`
    applies pending migrations when the app starts (`oncall serve --no-migrate` turns it off);
    `clock` (tests) replaces the real clock for the whole app."""
    if settings is None:
        settings = Settings(**overrides)
    elif overrides:
        settings = settings.model_copy(update=overrides)
    app = OncallApp(title="oncall", version=__version__, lifespan=_lifespan)
    app.body_timeout, app.max_body_bytes = settings.body_timeout, settings.max_body_bytes
    state = app.state
    state.settings = settings
    state.db = open_database(settings.database_url)
    state.config = None
    state.config_error = None
    state.service = None
    state.on_event_stored = None
    state.startup_hooks = []
    state.startup_errors = []
    state.shutdown_hooks = []
    state.migrate_on_start = migrate
    state.clock = clock or system_clock

    intake = WebhookIntake(settings, state.db, lambda: state.on_event_stored, lambda: now_of(app))
    app.webhook_endpoints = {f"/webhooks/{source}": intake.endpoint(source) for source in SOURCE_NAMES}
    for path, endpoint in app.webhook_endpoints.items():
        app.router.routes.append(Route(path, _AsgiEndpoint(endpoint)))
    app.include_router(health.router)  # /healthz, /readyz
    app.include_router(api.router)  # /api: the owner's JSON API
    app.add_exception_handler(api.ApiError, api.api_error)
    app.include_router(ack.router)  # /ack/{token}: the ack link
    app.include_router(telegram.router)  # /telegram/webhook
    app.include_router(slack.router)  # /slack/actions, /slack/commands
    app.include_router(twilio.router)  # /twilio/sms, /twilio/status
    app.include_router(voice.router)  # /twilio/voice, /twilio/voice/status: page calls
    app.include_router(status.router)  # GET /: the owner's status page
    app.include_router(metrics.router)  # GET /metrics: Prometheus
    # The ack-link key loads before the service starts: the first pages carry the shared key.
    state.startup_hooks += [acklinks.load_signer, wiring.start]
    state.shutdown_hooks += [wiring.stop, acklinks.stop_loading]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = _errors_as_400(add_openapi(schema))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    return app


def _errors_as_400(schema: dict[str, Any]) -> dict[str, Any]:
    """The spec says what `_invalid_request` answers: 400 `ErrorBody`, not FastAPI's 422."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses["400"] = {
                    "description": "a malformed path or query value",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(unused, None)
    return schema


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A malformed path or query value (`?limit=abc`): 400 `{"error": …}` like every refusal
    (SPEC §4), not FastAPI's 422 `{"detail": [...]}`."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
        + (f" (got {e['input']!r})" if isinstance(e.get("input"), str | int | float) else "")
        for e in exc.errors()
    ]
    return JSONResponse({"error": "; ".join(problems) or "invalid request"}, status_code=400)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database is down or locked: 503, so Telegram, Slack and Twilio retry the delivery,
    and one log line instead of a traceback per request."""
    log.warning("%s %s: store unavailable: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": "the store is unavailable; retry later"}, status_code=503)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods answer `{"error": …}` too."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)
