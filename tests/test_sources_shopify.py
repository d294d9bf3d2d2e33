"""Shopify: base64 HMAC of the body; topics as Shopify's webhook reference shows them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oncall.core.models import Event
from oncall.sources import SignatureError
from oncall.sources import shopify as source
from tests.fixtures.platforms import delivered, load, lower, shopify_headers

SECRET = "shpss_5d3f0c1e2b7a"
NOW = datetime(2026, 11, 28, 22, 10, tzinfo=UTC)


def event_of(name: str, topic: str, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043") -> Event:
    body = load(f"shopify/{name}.json")
    return delivered(source, body, shopify_headers(body, SECRET, topic, webhook_id), [SECRET.encode()], NOW)


def test_a_failed_transaction_is_a_payment_failure_keyed_by_the_webhook_id() -> None:
    event = event_of("order_transactions_create.failure", "order_transactions/create")
    assert (event.kind, event.dedup_key, event.order.id, event.order.amount, event.order.currency) == (
        "payment_failed", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "450789469", 189.90, "EUR",
    )  # fmt: skip
    assert event.summary == (
        "Shopify payment failed, 189.90 EUR, order 450789469, shopify_payments, Your card was declined."
    )


@pytest.mark.parametrize(
    ("name", "topic", "kind"),
    [
        ("order_transactions_create.success", "order_transactions/create", "payment_succeeded"),
        ("order_transactions_create.refund", "order_transactions/create", "unrecognised"),
        ("orders_create", "orders/create", "order_created"),
        ("disputes_create", "disputes/create", "dispute_opened"),
        ("orders_create", "orders/updated", "unrecognised"),
    ],
)
def test_topics_map_to_kinds(name: str, topic: str, kind: str) -> None:
    assert event_of(name, topic).kind == kind


def test_a_new_order_carries_the_customer_and_the_order_name() -> None:
    event = event_of("orders_create", "orders/create")
    assert (event.customer.name, event.customer.email, event.customer.phone, event.customer.language) == (
        "Lucía Fernández", "lucia.fernandez@example.com", "+34611222333", "es",
    )  # fmt: skip
    assert (event.order.id, event.order.number, event.order.amount) == ("450789469", "#1042", 189.90)


def test_a_wrong_or_missing_hmac_is_refused() -> None:
    body = load("shopify/orders_create.json")
    headers = lower(shopify_headers(body, "another-secret", "orders/create", "x"))
    with pytest.raises(SignatureError, match="does not match"):
        source.verify(headers, body, [SECRET.encode()], NOW)
    with pytest.raises(SignatureError, match="missing X-Shopify-Hmac-Sha256"):
        source.verify({}, body, [SECRET.encode()], NOW)


def test_a_rotated_secret_is_accepted_alongside_the_old_one() -> None:
    body = load("shopify/orders_create.json")
    headers = lower(shopify_headers(body, "new-secret", "orders/create", "x"))
    source.verify(headers, body, [SECRET.encode(), b"new-secret"], NOW)
