"""Shopify: `X-Shopify-Hmac-Sha256` = base64 HMAC-SHA256 of the raw body with the app's
client secret (or the shop's webhook signing key). Topic in `X-Shopify-Topic`; dedup key
`X-Shopify-Webhook-Id`, which Shopify keeps across the retries of one delivery.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oncall.core.models import Customer, Event, Order
from oncall.sources._common import (
    PayloadError,
    body_hash,
    first,
    hmac_b64,
    join_name,
    language_code,
    lower,
    money,
    number,
    section,
    summary,
    text,
    timestamp,
    verify_body_hmac_b64,
)

NAME = "shopify"


def verify(headers: Mapping[str, str], body: bytes, secrets: list[bytes], now: datetime) -> None:
    verify_body_hmac_b64(NAME, headers, "X-Shopify-Hmac-Sha256", body, secrets)


def sign(body: bytes, secret: bytes, now: datetime, topic: str = "orders/create") -> dict[str, str]:
    return {
        "X-Shopify-Hmac-Sha256": hmac_b64(secret, body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Shop-Domain": "tienda-ejemplo.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Triggered-At": now.isoformat(),
        "Content-Type": "application/json",
    }


def _customer(p: Mapping[str, Any]) -> Customer:
    cust, billing = section(p, "customer"), section(p, "billing_address")
    return Customer(
        name=first(
            join_name(cust.get("first_name"), cust.get("last_name")),
            billing.get("name"),
            join_name(billing.get("first_name"), billing.get("last_name")),
        ),
        email=first(p.get("email"), p.get("contact_email"), cust.get("email")),
        phone=first(p.get("phone"), cust.get("phone"), billing.get("phone")),
        language=language_code(first(p.get("customer_locale"), cust.get("locale"))),
    )


def normalise(
    payload: Any, headers: Mapping[str, str] | None = None, *, received_at: datetime, body: bytes = b""
) -> Event:
    if not isinstance(payload, dict):
        raise PayloadError("a Shopify webhook body is a JSON object")
    headers = headers or {}
    topic = lower(headers.get("x-shopify-topic")) or ""
    kind = "unrecognised"
    customer = Customer()
    if topic == "order_transactions/create":
        status = lower(payload.get("status"))
        tx_kind = lower(payload.get("kind")) or "sale"
        if tx_kind in ("sale", "authorization", "capture"):
            if status in ("failure", "error"):
                kind = "payment_failed"
            elif status == "success":
                kind = "payment_succeeded"
        order = Order(
            id=text(payload.get("order_id")),
            number=None,
            amount=number(payload.get("amount")),
            currency=text(payload.get("currency")),
        )
        reason = first(payload.get("message"), payload.get("error_code"))
        what = {"payment_failed": "Shopify payment failed", "payment_succeeded": "Shopify payment succeeded"}
        line = summary(
            what.get(kind, f"Shopify transaction {tx_kind} {status or ''}".strip()),
            money(order.amount, order.currency),
            f"order {order.id}" if order.id else None,
            first(payload.get("gateway")),
            reason,
        )
        when = timestamp(payload.get("created_at") or payload.get("processed_at"))
    elif topic == "orders/create":
        kind = "order_created"
        customer = _customer(payload)
        order = Order(
            id=text(payload.get("id")),
            number=first(payload.get("name"), payload.get("order_number")),
            amount=number(payload.get("total_price")),
            currency=text(payload.get("currency")),
        )
        line = summary(
            f"Shopify order {order.number or order.id or ''} created".replace("  ", " "),
            money(order.amount, order.currency),
            customer.email or customer.name,
            lower(payload.get("financial_status")),
        )
        when = timestamp(payload.get("created_at"))
    elif topic == "disputes/create":
        kind = "dispute_opened"
        order = Order(
            id=text(payload.get("order_id")),
            amount=number(payload.get("amount")),
            currency=text(payload.get("currency")),
        )
        line = summary(
            f"Shopify {lower(payload.get('type')) or 'dispute'} opened",
            money(order.amount, order.currency),
            f"order {order.id}" if order.id else None,
            first(payload.get("reason")),
        )
        when = timestamp(payload.get("initiated_at") or payload.get("created_at"))
    else:
        order = Order(id=text(payload.get("id")) if "order" in topic else None)
        line = summary(f"Shopify {topic or 'webhook without X-Shopify-Topic'}")
        when = timestamp(payload.get("updated_at") or payload.get("created_at"))
    return Event(
        source=NAME,
        kind=kind,
        dedup_key=text(headers.get("x-shopify-webhook-id")) or body_hash(body),
        received_at=received_at,
        occurred_at=when,
        summary=line,
        customer=customer,
        order=order,
        external_type=topic or None,
        tags=("test",) if payload.get("test") is True else (),
    )
