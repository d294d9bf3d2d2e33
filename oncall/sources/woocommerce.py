"""WooCommerce: `X-WC-Webhook-Signature` = base64 HMAC-SHA256 of the raw body with the
webhook's secret. Topic in `X-WC-Webhook-Topic` (`order.created`, `order.updated`).

WooCommerce gives every retry a new delivery id, so the dedup key is the resource id plus its
`date_modified_gmt`: the same change of the same order is one event. When a webhook is saved,
WooCommerce posts an unsigned form body `webhook_id=N` to test the URL: it is answered 200 and
nothing is stored (`is_ping`).
"""

from __future__ import annotations

import re
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

NAME = "woocommerce"
_PING = re.compile(rb"^webhook_id=\d+$")

FAILED = {"failed"}
SUCCEEDED = {"processing", "completed"}


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """The unsigned test delivery WooCommerce sends when a webhook is created or saved."""
    return (
        "x-wc-webhook-signature" not in headers and len(body) < 64 and _PING.match(body.strip()) is not None
    )


def verify(headers: Mapping[str, str], body: bytes, secrets: list[bytes], now: datetime) -> None:
    verify_body_hmac_b64(NAME, headers, "X-WC-Webhook-Signature", body, secrets)


def sign(body: bytes, secret: bytes, now: datetime, topic: str = "order.updated") -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "X-WC-Webhook-Signature": hmac_b64(secret, body),
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "7",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
        "X-WC-Webhook-Source": "https://tienda.example/",
        "Content-Type": "application/json",
    }


def _language(payload: Mapping[str, Any]) -> str | None:
    # WPML and Polylang keep the order's language in meta_data.
    meta = payload.get("meta_data")
    if isinstance(meta, list):
        for item in meta:
            if isinstance(item, dict) and item.get("key") in (
                "wpml_language",
                "pll_language",
                "_language",
            ):
                return language_code(item.get("value"))
    return None


def normalise(
    payload: Any, headers: Mapping[str, str] | None = None, *, received_at: datetime, body: bytes = b""
) -> Event:
    if not isinstance(payload, dict):
        raise PayloadError("a WooCommerce webhook body is a JSON object")
    headers = headers or {}
    topic = lower(headers.get("x-wc-webhook-topic")) or ""
    resource = lower(headers.get("x-wc-webhook-resource")) or topic.partition(".")[0] or "order"
    status = lower(payload.get("status"))
    kind = "unrecognised"
    if resource == "order":
        if status in FAILED:
            kind = "payment_failed"
        elif status in SUCCEEDED:
            kind = "payment_succeeded"
        elif topic == "order.created":
            kind = "order_created"
    billing = section(payload, "billing")
    customer = Customer(
        name=join_name(billing.get("first_name"), billing.get("last_name")),
        email=first(billing.get("email")),
        phone=first(billing.get("phone")),
        language=_language(payload),
    )
    order = Order(
        id=text(payload.get("id")),
        number=first(payload.get("number"), payload.get("id")),
        amount=number(payload.get("total")),
        currency=text(payload.get("currency")),
    ) if resource == "order" else Order()  # fmt: skip
    what = {
        "payment_failed": "WooCommerce payment failed",
        "payment_succeeded": "WooCommerce order paid",
        "order_created": "WooCommerce order created",
    }.get(kind, f"WooCommerce {topic or resource} ({status or 'no status'})")
    modified = first(payload.get("date_modified_gmt"), payload.get("date_modified"))
    rid = text(payload.get("id"))
    return Event(
        source=NAME,
        kind=kind,
        dedup_key=f"{resource}:{rid}:{modified}" if rid and modified else body_hash(body),
        received_at=received_at,
        occurred_at=timestamp(payload.get("date_modified_gmt")) or timestamp(payload.get("date_modified")),
        summary=summary(
            what,
            money(order.amount, order.currency),
            f"order {order.number}" if order.number else None,
            customer.email or customer.name,
            first(payload.get("payment_method_title")),
        ),
        customer=customer,
        order=order,
        external_type=topic or None,
    )
