"""Realistic sample payloads, as each platform sends them, for `oncall trigger` and benchmarks.

`sample(source, kind, now)` returns (body, extra headers such as the topic). Each call makes a
fresh delivery (new ids), so triggering twice stores two events.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

Sample = tuple[dict[str, Any], dict[str, str]]


def _rid(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _stripe(event_type: str, obj: dict[str, Any]) -> Callable[[datetime], Sample]:
    def build(now: datetime) -> Sample:
        return {
            "id": _rid("evt_"),
            "object": "event",
            "api_version": "2025-09-30.clover",
            "created": int(now.timestamp()),
            "data": {"object": obj | {"id": _rid(obj["id"]), "created": int(now.timestamp())}},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": _rid("req_"), "idempotency_key": None},
            "type": event_type,
        }, {}

    return build


_BILLING = {
    "address": {"city": "Madrid", "country": "ES", "line1": "Calle Mayor 1", "postal_code": "28013"},
    "email": "lucia.fernandez@example.com",
    "name": "Lucía Fernández",
    "phone": "+34611222333",
}
_PI = {
    "id": "pi_",
    "object": "payment_intent",
    "amount": 18990,
    "currency": "eur",
    "metadata": {"order_id": "1042", "order_number": "1042", "language": "es"},
    "receipt_email": "lucia.fernandez@example.com",
    "status": "requires_payment_method",
    "last_payment_error": {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "type": "card_error",
        "payment_method": {"id": "pm_1Q0PsIJvEtkwdCNYMSaVuRz6", "billing_details": _BILLING},
    },
}
_CHARGE = {
    "id": "ch_",
    "object": "charge",
    "amount": 18990,
    "currency": "eur",
    "billing_details": _BILLING,
    "failure_code": None,
    "failure_message": None,
    "metadata": {"order_id": "1042", "order_number": "1042"},
    "paid": True,
    "receipt_email": "lucia.fernandez@example.com",
    "status": "succeeded",
    "outcome": {
        "network_status": "approved_by_network",
        "seller_message": "Payment complete.",
        "type": "authorized",
    },
}
_DISPUTE = {
    "id": "dp_",
    "object": "dispute",
    "amount": 18990,
    "currency": "eur",
    "charge": "ch_3MmlLrLkdIwHu7ix0snN0B15",
    "metadata": {"order_id": "1042"},
    "reason": "fraudulent",
    "status": "needs_response",
    "evidence": {"customer_email_address": "lucia.fernandez@example.com", "customer_name": "Lucía Fernández"},
}


def _shopify(topic: str, payload: Callable[[datetime], dict[str, Any]]) -> Callable[[datetime], Sample]:
    return lambda now: (payload(now), {"X-Shopify-Topic": topic})


def _shopify_tx(status: str) -> Callable[[datetime], dict[str, Any]]:
    return lambda now: {
        "id": int(secrets.randbits(40)),
        "order_id": 820982911946154508,
        "kind": "sale",
        "gateway": "shopify_payments",
        "status": status,
        "message": "Card was declined" if status == "failure" else "Transaction approved",
        "created_at": now.isoformat(),
        "test": False,
        "authorization": None,
        "location_id": None,
        "user_id": None,
        "parent_id": None,
        "processed_at": now.isoformat(),
        "device_id": None,
        "error_code": "card_declined" if status == "failure" else None,
        "source_name": "web",
        "receipt": {},
        "amount": "189.90",
        "currency": "EUR",
        "payment_id": "c25048437719.1",
        "admin_graphql_api_id": "gid://shopify/OrderTransaction/1",
    }


def _shopify_order(now: datetime) -> dict[str, Any]:
    return {
        "id": int(secrets.randbits(40)),
        "name": "#1042",
        "order_number": 1042,
        "email": "lucia.fernandez@example.com",
        "phone": "+34611222333",
        "created_at": now.isoformat(),
        "currency": "EUR",
        "total_price": "189.90",
        "financial_status": "pending",
        "customer_locale": "es",
        "customer": {"id": 115310627314723954, "email": "lucia.fernandez@example.com",
                     "first_name": "Lucía", "last_name": "Fernández", "phone": "+34611222333"},
        "billing_address": {"name": "Lucía Fernández", "city": "Madrid", "country_code": "ES"},
        "line_items": [{"id": 1, "title": "Cafetera italiana", "quantity": 1, "price": "189.90"}],
    }  # fmt: skip


def _shopify_dispute(now: datetime) -> dict[str, Any]:
    return {
        "id": int(secrets.randbits(40)),
        "order_id": 820982911946154508,
        "type": "chargeback",
        "amount": "189.90",
        "currency": "EUR",
        "reason": "fraudulent",
        "network_reason_code": "4837",
        "status": "needs_response",
        "evidence_due_by": now.isoformat(),
        "evidence_sent_on": None,
        "finalized_on": None,
        "initiated_at": now.isoformat(),
    }


def _woo(topic: str, status: str) -> Callable[[datetime], Sample]:
    def build(now: datetime) -> Sample:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S")
        order_id = 1000 + secrets.randbelow(100000)
        return {
            "id": order_id,
            "parent_id": 0,
            "number": str(order_id),
            "order_key": "wc_order_" + secrets.token_hex(6),
            "created_via": "checkout",
            "status": status,
            "currency": "EUR",
            "date_created": stamp,
            "date_created_gmt": stamp,
            "date_modified": stamp,
            "date_modified_gmt": stamp,
            "total": "189.90",
            "customer_id": 12,
            "billing": {
                "first_name": "Lucía", "last_name": "Fernández", "address_1": "Calle Mayor 1",
                "city": "Madrid", "postcode": "28013", "country": "ES",
                "email": "lucia.fernandez@example.com", "phone": "+34611222333",
            },
            "payment_method": "stripe",
            "payment_method_title": "Tarjeta de crédito (Stripe)",
            "meta_data": [{"id": 1, "key": "wpml_language", "value": "es"}],
            "line_items": [{"id": 1, "name": "Cafetera italiana", "quantity": 1, "total": "189.90"}],
        }, {"X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": "order",
            "X-WC-Webhook-Event": topic.partition(".")[2]}  # fmt: skip

    return build


def _ticket(event: str, status: str, priority: str) -> Callable[[datetime], Sample]:
    def build(now: datetime) -> Sample:
        return {
            "ticket": {
                "id": str(10000 + secrets.randbelow(90000)),
                "subject": "Pedido 1042: el pago ha fallado y no puedo terminar la compra",
                "priority": priority,
                "status": status,
                "updated_at": now.strftime("%B %d, %Y %H:%M"),
                "requester": {"name": "Lucía Fernández", "email": "lucia.fernandez@example.com",
                              "phone": "+34611222333", "language": "Español"},
            },
            "event": event,
        }, {}  # fmt: skip

    return build


_CUSTOMER = {"name": "Lucía Fernández", "email": "lucia.fernandez@example.com", "phone": "+34611222333",
             "language": "es"}  # fmt: skip
_ORDER = {"id": "1042", "number": "1042", "amount": 189.9, "currency": "EUR"}

# What a storefront error monitor, osTicket or a shop script would send for each kind (SPEC §4).
_GENERIC: dict[str, dict[str, Any]] = {
    "checkout_error": {
        "summary": "Checkout returns 500 on the payment step", "severity": "high", "tags": ["storefront"],
        "details": {"url": "https://tienda.example/checkout", "status": 500},
    },
    "payment_failed": {
        "summary": "Payment of order 1042 failed: card declined (insufficient funds)", "severity": "high",
        "tags": ["payments"], "details": {"gateway": "redsys", "decline_code": "insufficient_funds"},
    },
    "payment_succeeded": {
        "summary": "Payment of order 1042 succeeded", "severity": "info", "tags": ["payments"],
        "details": {"gateway": "redsys"},
    },
    "dispute_opened": {
        "summary": "Chargeback opened on order 1042: product not received", "severity": "high",
        "tags": ["payments", "dispute"], "details": {"reason": "product_not_received",
                                                    "respond_by": "2026-12-12"},
    },
    "order_created": {
        "summary": "New order 1042: 189.90 EUR", "severity": "info", "tags": ["orders"],
        "details": {"items": 3, "shipping": "express"},
    },
    "ticket_created": {
        "summary": "Ticket 5150: payment taken twice for order 1042", "severity": "high",
        "tags": ["helpdesk"], "ticket": {"id": "5150", "priority": "urgent", "status": "open",
                                         "subject": "Payment taken twice for order 1042"},
    },
    "ticket_updated": {
        "summary": "Ticket 5150 solved: payment taken twice for order 1042", "severity": "info",
        "tags": ["helpdesk"], "ticket": {"id": "5150", "priority": "urgent", "status": "solved",
                                         "subject": "Payment taken twice for order 1042"},
    },
}  # fmt: skip


def _generic(kind: str) -> Callable[[datetime], Sample]:
    def build(now: datetime) -> Sample:
        fields = _GENERIC[kind]
        payload: dict[str, Any] = {"id": _rid("gen_"), "kind": kind, "summary": fields["summary"],
                                   "severity": fields["severity"], "occurred_at": now.isoformat(),
                                   "customer": dict(_CUSTOMER), "order": dict(_ORDER)}  # fmt: skip
        payload.update({k: v for k, v in fields.items() if k not in payload})
        return payload, {}

    return build


SAMPLES: dict[str, dict[str, Callable[[datetime], Sample]]] = {
    "stripe": {
        "payment_failed": _stripe("payment_intent.payment_failed", _PI),
        "payment_succeeded": _stripe("charge.succeeded", _CHARGE),
        "dispute_opened": _stripe("charge.dispute.created", _DISPUTE),
        "unrecognised": _stripe("customer.created", {"id": "cus_", "object": "customer"}),
    },
    "shopify": {
        "payment_failed": _shopify("order_transactions/create", _shopify_tx("failure")),
        "payment_succeeded": _shopify("order_transactions/create", _shopify_tx("success")),
        "order_created": _shopify("orders/create", _shopify_order),
        "dispute_opened": _shopify("disputes/create", _shopify_dispute),
    },
    "woocommerce": {
        "payment_failed": _woo("order.updated", "failed"),
        "payment_succeeded": _woo("order.updated", "processing"),
        "order_created": _woo("order.created", "pending"),
    },
    "zendesk": {
        "ticket_created": _ticket("ticket_created", "new", "urgent"),
        "ticket_updated": _ticket("ticket_updated", "solved", "urgent"),
    },
    "freshdesk": {
        "ticket_created": _ticket("ticket_created", "Open", "Urgent"),
        "ticket_updated": _ticket("ticket_updated", "Resolved", "Urgent"),
    },
    "generic": {kind: _generic(kind) for kind in _GENERIC},
}


def sample(source: str, kind: str, now: datetime) -> tuple[bytes, dict[str, str]]:
    """(body, platform headers other than the signature); KeyError for an unknown pair."""
    payload, headers = SAMPLES[source][kind](now)
    return json.dumps(payload, ensure_ascii=False).encode(), headers
