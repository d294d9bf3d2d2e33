"""`POST /webhooks/{source}`: verify, normalise, store once, answer (SPEC §4).

A plain ASGI endpoint rather than a FastAPI route: this is the hot path (thousands of
deliveries a second during a flood), and it needs no dependency injection or request model,
only the raw body for the signature. Checks run in SPEC order: size (413), signature (401),
content type (415) and parsing (400), then the store (202 / 200 duplicate / 503).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field

from oncall import logline
from oncall.clock import Clock
from oncall.core.models import SOURCES as SOURCE_NAMES
from oncall.core.models import Event
from oncall.metrics import METRICS
from oncall.settings import Settings
from oncall.sources import SOURCES, Source, woocommerce
from oncall.sources._common import PayloadError, SignatureError, body_hash
from oncall.store import StoreUnavailable
from oncall.web import jsonbody
from oncall.web.bodyguard import BodyRefused

log = logging.getLogger("oncall.webhooks")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
OnStored = Callable[[int], Any]


class EventStore(Protocol):
    """Where deliveries are stored: the `Database`, or in an intake worker process the link
    to the main process's (`oncall.web.storelink.RemoteStore`)."""

    async def store_event(self, event: Event, raw_body: bytes) -> tuple[int, bool]: ...


_JSON_HEADERS = [(b"content-type", b"application/json")]
_DUMPS = orjson.dumps  # compact UTF-8, as the answers and the log line have always been


class _Refused(Exception):
    def __init__(self, status: int, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status, self.message, self.outcome = status, message, outcome


def _content_type_ok(value: str | None) -> bool:
    if not value:
        return True  # some senders omit it; the body still has to parse as JSON
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class WebhookIntake:
    """Everything the six webhook endpoints share; one instance per app."""

    def __init__(
        self, settings: Settings, db: EventStore, on_stored: Callable[[], OnStored | None], clock: Clock
    ) -> None:
        self.db = db
        self.clock = clock  # the app's: an event's received_at decides open or closed hours
        self.max_body = settings.max_body_bytes
        self.secrets = {name: settings.secrets_for(name) for name in SOURCE_NAMES}
        self._on_stored = on_stored

    def endpoint(self, source: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        module = SOURCES[source]

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await self.handle(source, module, scope, receive, send)
            except BodyRefused as refused:  # answered by the app's entry (see web.bodyguard)
                METRICS.webhook(source, "body_timeout" if refused.status == 408 else "too_large")
                raise
            except Exception:
                # Outside the middleware stack nobody else turns a bug into a 500; the
                # platform retries a 500, so nothing is lost.
                log.exception("webhook %s failed", source)
                METRICS.webhook(source, "error")
                await _respond(send, 500, {"error": "internal error; the delivery was not stored"})

        return asgi

    async def handle(self, source: str, module: Source, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        kind: str | None = None
        answer: dict[str, Any]
        event_id: int | None = None
        try:
            if scope["method"] != "POST":
                raise _Refused(405, f"use POST for /webhooks/{source}", "wrong_method")
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            body = await self._read_body(headers, receive)
            if source == "woocommerce" and woocommerce.is_ping(headers, body):
                status, answer, outcome = 200, {"status": "ping"}, "ping"
            else:
                now = self.clock()
                try:
                    module.verify(headers, body, self.secrets[source], now)
                except SignatureError as exc:
                    raise _Refused(401, str(exc), "bad_signature") from None
                event = self._parse(source, module, headers, body, now)
                kind = event.kind
                try:
                    event_id, duplicate = await self.db.store_event(event, body)
                except StoreUnavailable as exc:
                    log.error("webhook store unavailable: %s", exc)
                    raise _Refused(
                        503, "the event store is unavailable; retry later", "store_unavailable"
                    ) from None
                except Exception:
                    # E.g. a schema not migrated: still "not stored, retry", never a lost 2xx.
                    log.exception("storing a %s webhook failed", source)
                    raise _Refused(503, "the event could not be stored; retry later", "store_error") from None
                if duplicate:
                    status, answer, outcome = 200, {"status": "duplicate", "event_id": event_id}, "duplicate"
                else:
                    status, answer, outcome = 202, {"status": "accepted", "event_id": event_id}, "accepted"
                    hook = self._on_stored()
                    if hook is not None:
                        self._wake(hook, event_id)
        except _Refused as refused:
            status, answer, outcome = refused.status, {"error": refused.message}, refused.outcome
        await _respond(send, status, answer)
        METRICS.webhook(source, outcome, kind)
        if log.isEnabledFor(logging.INFO):
            line = {
                "source": source, "kind": kind, "event_id": event_id, "outcome": outcome,
                "status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            }  # fmt: skip
            text = _DUMPS(line).decode()
            if not logline.write(log, "webhook " + text):
                log.info("webhook %s", text)

    async def _read_body(self, headers: Mapping[str, str], receive: Receive) -> bytes:
        declared = headers.get("content-length")
        # ASCII digits only: "²".isdigit() is true, yet int("²") fails.
        digits = declared is not None and declared.isascii() and declared.isdigit()
        if digits and declared is not None and (len(declared) > 18 or int(declared) > self.max_body):
            raise self._too_big()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Refused(400, "client disconnected before sending the whole body", "disconnected")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self._too_big()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_big(self) -> _Refused:
        return _Refused(413, f"body larger than {self.max_body} bytes", "too_large")

    @staticmethod
    def _parse(source: str, module: Source, headers: Mapping[str, str], body: bytes, now: datetime) -> Event:
        content_type = headers.get("content-type")
        if not _content_type_ok(content_type):
            raise _Refused(
                415, f"expected Content-Type application/json, got {content_type}", "bad_content_type"
            )
        try:
            payload = jsonbody.loads(body)
        except jsonbody.UnreadableJson as exc:
            raise _Refused(400, f"body is {exc}", "bad_json") from None
        try:
            return module.normalise(payload, headers, received_at=now, body=body)
        except PayloadError as exc:
            raise _Refused(400, str(exc), "bad_payload") from None
        except Exception:
            # A signed payload we fail to read is still kept (as unrecognised): losing a
            # genuine delivery to a normalisation bug would be worse than an unclear event.
            log.exception("normalising a signed %s webhook failed; storing it as unrecognised", source)
            return Event(
                source=source,
                kind="unrecognised",
                dedup_key=body_hash(body),
                received_at=now,
                summary=f"{source} webhook that could not be read",
            )

    @staticmethod
    def _wake(hook: OnStored, event_id: int) -> None:
        try:
            hook(event_id)
        except Exception:  # the event is stored; routing catches up at the next start
            log.exception("on_event_stored hook failed for event %s", event_id)


async def _respond(send: Send, status: int, answer: Mapping[str, Any]) -> None:
    body = _DUMPS(answer)
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- OpenAPI: the webhook endpoints are plain ASGI, so their schema is added by hand -------------


class GenericCustomer(BaseModel):
    name: str | None = None
    email: str | None = None
    phone: str | None = Field(default=None, description="E.164, e.g. +34600111222")
    language: str | None = Field(default=None, description="e.g. es, en")


class GenericOrder(BaseModel):
    id: str | None = None
    number: str | None = None
    amount: float | None = None
    currency: str | None = Field(default=None, description="ISO 4217, e.g. EUR")


class GenericTicket(BaseModel):
    id: str | None = None
    priority: str | None = Field(default=None, description="urgent, high, normal, low")
    status: str | None = None
    subject: str | None = None


class GenericEvent(BaseModel):
    """The body of `POST /webhooks/generic`. Only `kind` is required."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(
        description="payment_failed, payment_succeeded, checkout_error, dispute_opened, order_created, "
        "ticket_created or ticket_updated; anything else is stored as unrecognised"
    )
    id: str | None = Field(
        default=None,
        description="unique delivery id; a resend with the same id is a duplicate. "
        "Without it, an identical body (same SHA-256) is the duplicate.",
    )
    summary: str | None = None
    severity: str | None = None
    occurred_at: datetime | None = None
    customer: GenericCustomer | None = None
    order: GenericOrder | None = None
    ticket: GenericTicket | None = None
    tags: list[str] | None = None
    details: dict[str, Any] | None = None


class Accepted(BaseModel):
    status: str = Field(description="accepted, or duplicate for a delivery already stored")
    event_id: int


class ErrorBody(BaseModel):
    error: str


_SIGNATURES = {
    "shopify": "`X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body; topic in `X-Shopify-Topic`",
    "stripe": "`Stripe-Signature: t=…,v1=…`: hex HMAC-SHA256 of `t.body`, 5-minute tolerance",
    "woocommerce": "`X-WC-Webhook-Signature`: base64 HMAC-SHA256 of the body",
    "zendesk": "`X-Zendesk-Webhook-Signature`: base64 HMAC-SHA256 of the timestamp header + body",
    "freshdesk": "`Authorization: Bearer ONCALL_FRESHDESK_TOKEN`",
    "generic": "`X-Oncall-Signature: sha256=HEX`: hex HMAC-SHA256 of the body",
}


def add_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Adds the six webhook endpoints (and the generic event schema) to the app's OpenAPI."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (GenericEvent, Accepted, ErrorBody):
        defs = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(defs.pop("$defs", {}))
        components[model.__name__] = defs

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def answer(description: str, model: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref(model)}}}

    for source in SOURCE_NAMES:
        body_schema = ref("GenericEvent") if source == "generic" else {"type": "object"}
        schema.setdefault("paths", {})[f"/webhooks/{source}"] = {
            "post": {
                "tags": ["webhooks"],
                "summary": f"Receive a {source} webhook",
                "description": f"Signature: {_SIGNATURES[source]}. Checks: size, signature, parsing.",
                "operationId": f"webhook_{source}",
                "requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}},
                "responses": {
                    "202": answer("stored", "Accepted"),
                    "200": answer("duplicate of a delivery already stored", "Accepted"),
                    "400": answer("unreadable body", "ErrorBody"),
                    "401": answer("bad or missing signature; nothing stored", "ErrorBody"),
                    "408": answer("body not received within ONCALL_BODY_TIMEOUT seconds", "ErrorBody"),
                    "413": answer("body over 1 MiB", "ErrorBody"),
                    "415": answer("Content-Type is not JSON", "ErrorBody"),
                    "503": answer("store unavailable; retry later", "ErrorBody"),
                },
            }
        }
    return schema
