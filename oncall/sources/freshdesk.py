"""Freshdesk: an automation rule's webhook with a custom header
`Authorization: Bearer ONCALL_FRESHDESK_TOKEN` (Freshdesk does not sign its webhooks).
Dedup key: ticket id + `updated_at`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oncall.core.models import Event
from oncall.sources._common import SignatureError, body_hash, matches_any, require_secrets, scheme_value
from oncall.sources._tickets import ticket_event

NAME = "freshdesk"


def verify(headers: Mapping[str, str], body: bytes, secrets: list[bytes], now: datetime) -> None:
    require_secrets(NAME, secrets)
    token = scheme_value(
        headers, "authorization", "bearer", " ",
        missing="missing Authorization header (expected: Bearer <ONCALL_FRESHDESK_TOKEN>)",
        malformed="Authorization header is not 'Bearer <token>'",
    ).strip()  # fmt: skip
    if not matches_any(token, [s.decode(errors="replace") for s in secrets]):
        raise SignatureError("the Authorization bearer token matches no configured token")


def sign(body: bytes, secret: bytes, now: datetime) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret.decode()}", "Content-Type": "application/json"}


def normalise(
    payload: Any, headers: Mapping[str, str] | None = None, *, received_at: datetime, body: bytes = b""
) -> Event:
    return ticket_event(NAME, "Freshdesk", payload, received_at, None, body_hash(body))
