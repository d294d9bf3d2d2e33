"""Generic: `X-Oncall-Signature: sha256=HEX`, hex HMAC-SHA256 of the raw body. The body is
SPEC §4's generic event; only `kind` matters, every other field is optional. Dedup key: the
body's `id`, or — without one — the SHA-256 of the body (so an identical resend is a duplicate).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oncall.core.models import EVENT_KINDS, Customer, Event, Order, Ticket
from oncall.sources._common import (
    PayloadError,
    SignatureError,
    body_hash,
    first,
    hmac_sha256,
    language_code,
    lower,
    matches_any,
    money,
    number,
    require_secrets,
    scheme_value,
    section,
    summary,
    text,
    timestamp,
)

NAME = "generic"


def verify(headers: Mapping[str, str], body: bytes, secrets: list[bytes], now: datetime) -> None:
    require_secrets(NAME, secrets)
    hexsig = scheme_value(
        headers, "x-oncall-signature", "sha256", "=",
        missing="missing X-Oncall-Signature header (expected sha256=<hex HMAC of the body>)",
        malformed="X-Oncall-Signature must be sha256=<hex HMAC-SHA256 of the body>",
    )  # fmt: skip
    if not matches_any(hexsig.lower(), [hmac_sha256(s, body).hex() for s in secrets]):
        raise SignatureError("X-Oncall-Signature does not match the body with any configured secret")


def sign(body: bytes, secret: bytes, now: datetime) -> dict[str, str]:
    return {
        "X-Oncall-Signature": "sha256=" + hmac_sha256(secret, body).hex(),
        "Content-Type": "application/json",
    }


def normalise(
    payload: Any, headers: Mapping[str, str] | None = None, *, received_at: datetime, body: bytes = b""
) -> Event:
    if not isinstance(payload, dict):
        raise PayloadError('a generic event is a JSON object with at least a "kind"')
    given_kind = lower(payload.get("kind"))
    kind = given_kind if given_kind in EVENT_KINDS else "unrecognised"
    c, o, t = section(payload, "customer"), section(payload, "order"), section(payload, "ticket")
    customer = Customer(
        name=text(c.get("name")), email=text(c.get("email")), phone=text(c.get("phone")),
        language=language_code(c.get("language")),
    )  # fmt: skip
    order = Order(
        id=text(o.get("id")), number=text(o.get("number")), amount=number(o.get("amount")),
        currency=text(o.get("currency")),
    )  # fmt: skip
    ticket = Ticket(
        id=text(t.get("id")), priority=lower(t.get("priority")), status=lower(t.get("status")),
        subject=text(t.get("subject")),
    )  # fmt: skip
    tags = payload.get("tags")
    line = text(payload.get("summary"), 200) or summary(
        (given_kind or "event").replace("_", " "),
        money(order.amount, order.currency),
        f"order {order.number or order.id}" if order.number or order.id else None,
        customer.email or customer.name,
    )
    return Event(
        source=NAME,
        kind=kind,
        dedup_key=first(payload.get("id")) or body_hash(body),
        received_at=received_at,
        occurred_at=timestamp(payload.get("occurred_at")),
        summary=line,
        severity=lower(payload.get("severity")),
        customer=customer,
        order=order,
        ticket=ticket,
        tags=tuple(x for x in (text(v, 100) for v in tags) if x) if isinstance(tags, list) else (),
        external_type=text(payload.get("kind")) if kind == "unrecognised" else None,
    )
