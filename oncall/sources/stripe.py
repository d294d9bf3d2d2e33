"""Stripe: `Stripe-Signature: t=TIMESTAMP,v1=HEX[,v1=HEX…]`, hex HMAC-SHA256 of `t.body`.

Verified without the `stripe` package. Several `v1` values appear while Stripe rolls a secret;
any one matching any configured secret is enough. Deliveries older (or newer) than five minutes
are refused to stop replays. Dedup key: the event `id` (the same across Stripe's retries).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oncall.core.models import Customer, Event, Order, Ticket
from oncall.sources._common import (
    PayloadError,
    SignatureError,
    body_hash,
    dig,
    first,
    hmac_sha256,
    language_code,
    lower,
    matches_any,
    money,
    number,
    require_secrets,
    section,
    summary,
    text,
    timestamp,
)

NAME = "stripe"
TOLERANCE_SECONDS = 300

FAILED = {
    "payment_intent.payment_failed",
    "charge.failed",
    "invoice.payment_failed",
    "checkout.session.async_payment_failed",
}
SUCCEEDED = {
    "payment_intent.succeeded",
    "charge.succeeded",
    "invoice.payment_succeeded",
    "invoice.paid",
    "checkout.session.async_payment_succeeded",
}
DISPUTED = {"charge.dispute.created"}

# Amounts in these currencies are whole units, not cents (Stripe's "zero-decimal currencies").
_ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)


def verify(headers: Mapping[str, str], body: bytes, secrets: list[bytes], now: datetime) -> None:
    require_secrets(NAME, secrets)
    header = headers.get("stripe-signature")
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    ts: int | None = None
    given: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:  # "²".isdigit()
            ts = int(value)
        elif key == "v1" and value:
            given.append(value)
    if ts is None or not given:
        raise SignatureError("malformed Stripe-Signature header (expected t=…,v1=…)")
    signed = str(ts).encode() + b"." + body
    expected = [hmac_sha256(s, signed).hex() for s in secrets]
    if not any(matches_any(g, expected) for g in given):
        raise SignatureError("Stripe-Signature does not match the payload with any configured secret")
    age = now.timestamp() - ts
    if abs(age) > TOLERANCE_SECONDS:
        raise SignatureError(
            f"Stripe-Signature timestamp is {int(abs(age))}s {'old' if age > 0 else 'in the future'}"
            f" (tolerance {TOLERANCE_SECONDS}s): a replayed or delayed delivery"
        )


def sign(body: bytes, secret: bytes, now: datetime) -> dict[str, str]:
    """Headers Stripe would send (for `oncall trigger` and benchmarks)."""
    ts = int(now.timestamp())
    sig = hmac_sha256(secret, str(ts).encode() + b"." + body).hex()
    return {"Stripe-Signature": f"t={ts},v1={sig}", "Content-Type": "application/json; charset=utf-8"}


# Amounts in these are thousandths (Stripe's "three-decimal currencies": 5.124 KWD is 5124).
_THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])


def _amount(value: Any, currency: str | None) -> float | None:
    n = number(value)
    if n is None:
        return None
    cur = (currency or "").lower()
    if cur in _ZERO_DECIMAL:
        return n
    return round(n / 1000, 3) if cur in _THREE_DECIMAL else round(n / 100, 2)


_WHAT = {
    "payment_failed": "Stripe payment failed",
    "payment_succeeded": "Stripe payment succeeded",
    "dispute_opened": "Stripe dispute opened",
}
_NO_TICKET = Ticket()


def _kind(event_type: str, obj: Mapping[str, Any]) -> str:
    if event_type in FAILED:
        return "payment_failed"
    if event_type in SUCCEEDED:
        return "payment_succeeded"
    if event_type == "checkout.session.completed" and obj.get("payment_status") == "paid":
        return "payment_succeeded"
    if event_type in DISPUTED:
        return "dispute_opened"
    return "unrecognised"


def normalise(
    payload: Any, headers: Mapping[str, str] | None = None, *, received_at: datetime, body: bytes = b""
) -> Event:
    # The hot path of a flood: each field is the first non-empty of its candidates, read in
    # order and only as far as needed (`text(a) or text(b)` is `first(a, b)`, lazily).
    if not isinstance(payload, dict):
        raise PayloadError("a Stripe event is a JSON object")
    event_type = text(payload.get("type")) or ""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        obj = {}
    # Plugins put the order in the object's metadata; invoices carry the subscription's.
    meta = (
        section(obj, "metadata")
        or section(section(section(obj, "parent"), "subscription_details"), "metadata")
        or section(section(obj, "subscription_details"), "metadata")
    )
    billing = _billing(obj)
    details = section(obj, "customer_details")
    customer = Customer(
        name=text(billing.get("name")) or text(details.get("name")) or text(obj.get("customer_name"))
        or text(dig(obj, "shipping", "name")) or text(dig(obj, "evidence", "customer_name"))
        or text(meta.get("customer_name")) or text(meta.get("name")),
        email=text(billing.get("email")) or text(details.get("email")) or text(obj.get("receipt_email"))
        or text(obj.get("customer_email")) or text(dig(obj, "evidence", "customer_email_address"))
        or text(meta.get("customer_email")) or text(meta.get("email")),
        phone=text(billing.get("phone")) or text(details.get("phone")) or text(obj.get("customer_phone"))
        or text(dig(obj, "shipping", "phone")) or text(meta.get("customer_phone")) or text(meta.get("phone")),
        language=language_code(first(meta.get("language"), meta.get("locale"), obj.get("locale"))),
    )  # fmt: skip
    currency = lower(obj.get("currency"))
    raw_amount = obj.get("amount")
    if raw_amount is None:
        raw_amount = obj.get("amount_total")
        if raw_amount is None:
            raw_amount = obj.get("amount_due")
    order_id = text(meta.get("order_id"))
    number = text(meta.get("order_number")) or order_id
    reference = None if order_id and number else text(obj.get("client_reference_id"))
    order = Order(
        id=order_id or reference,
        number=number or reference,
        amount=_amount(raw_amount, currency),
        currency=currency.upper() if currency else None,
    )
    kind = _kind(event_type, obj)
    reason = (
        text(dig(obj, "last_payment_error", "message")) or text(obj.get("failure_message"))
        or text(dig(obj, "outcome", "seller_message")) or text(obj.get("reason"))
    )  # fmt: skip
    what = _WHAT.get(kind) or f"Stripe {event_type or 'event'}"
    event_id = text(payload.get("id"))
    charge = (text(obj.get("charge")) or text(dig(obj, "charge", "id"))) if kind == "dispute_opened" else None
    return Event(
        source=NAME,
        kind=kind,
        dedup_key=event_id or body_hash(body or json.dumps(payload, sort_keys=True).encode()),
        received_at=received_at,
        occurred_at=timestamp(payload.get("created")),
        summary=summary(
            what,
            money(order.amount, order.currency),
            f"order {order.number}" if order.number else None,
            # A dispute carries neither order nor customer (they are on the charge): name the
            # charge so that the owner can find it.
            f"charge {charge}" if kind == "dispute_opened" and not order.number and charge else None,
            customer.email or customer.name,
            reason,
        ),
        customer=customer,
        order=order,
        external_type=event_type or None,
        tags=("livemode",) if payload.get("livemode") is True else (),
        ticket=_NO_TICKET,  # Stripe has none: one shared (frozen) empty ticket, not one per event
    )


def _billing(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first billing details with a value, looked up only as far as needed."""
    found = first_mapping(obj.get("billing_details"))
    if not found:
        found = first_mapping(dig(obj, "last_payment_error", "payment_method", "billing_details"))
    if not found:
        found = first_mapping(
            dig(obj, "payment_method_details", "billing_details"),
            dig(obj, "latest_charge", "billing_details"),
        )
    return found


def first_mapping(*values: Any) -> Mapping[str, Any]:
    """The first mapping with any non-empty value (Stripe sends all-null billing_details)."""
    for value in values:
        if isinstance(value, dict):
            for v in value.values():
                if v and not isinstance(v, dict):
                    return value
    return {}
