"""Zendesk: `X-Zendesk-Webhook-Signature` = base64 HMAC-SHA256 of
`X-Zendesk-Webhook-Signature-Timestamp` + raw body, with the webhook's signing secret.
Dedup key `X-Zendesk-Webhook-Invocation-Id` (kept across Zendesk's retries); without it,
ticket id + `updated_at`.

The timestamp is bound into the signature; it is not held to a tolerance because Zendesk's
retries may carry the original one, and the invocation id already stops replays.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oncall.core.models import Event
from oncall.sources._common import SignatureError, body_hash, hmac_b64, matches_any, require_secrets, text
from oncall.sources._tickets import ticket_event

NAME = "zendesk"


def verify(headers: Mapping[str, str], body: bytes, secrets: list[bytes], now: datetime) -> None:
    require_secrets(NAME, secrets)
    given = headers.get("x-zendesk-webhook-signature")
    ts = headers.get("x-zendesk-webhook-signature-timestamp")
    if not given:
        raise SignatureError("missing X-Zendesk-Webhook-Signature header")
    if not ts:
        raise SignatureError("missing X-Zendesk-Webhook-Signature-Timestamp header")
    signed = ts.encode() + body
    if not matches_any(given.strip(), [hmac_b64(s, signed) for s in secrets]):
        raise SignatureError("X-Zendesk-Webhook-Signature does not match the body with any configured secret")


def sign(body: bytes, secret: bytes, now: datetime) -> dict[str, str]:
    ts = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "X-Zendesk-Webhook-Signature": hmac_b64(secret, ts.encode() + body),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "X-Zendesk-Webhook-Invocation-Id": str(uuid.uuid4().int)[:19],
        "X-Zendesk-Webhook-Id": "01HF4Y2JZ7QH6XW3B2Q8T9M5KD",
        "Content-Type": "application/json",
    }


def normalise(
    payload: Any, headers: Mapping[str, str] | None = None, *, received_at: datetime, body: bytes = b""
) -> Event:
    headers = headers or {}
    return ticket_event(
        NAME, "Zendesk", payload, received_at, text(headers.get("x-zendesk-webhook-invocation-id")),
        body_hash(body),
    )  # fmt: skip
