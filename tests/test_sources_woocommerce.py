"""WooCommerce: base64 HMAC of the body, orders by status, the unsigned creation ping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oncall.core.models import Event
from oncall.sources import SignatureError
from oncall.sources import woocommerce as source
from tests.fixtures.platforms import delivered, load, lower, woocommerce_headers

SECRET = "wc-secret-9f8e7d"
NOW = datetime(2026, 11, 28, 22, 10, tzinfo=UTC)


def event_of(name: str, topic: str, delivery: str = "1") -> Event:
    body = load(f"woocommerce/{name}.json")
    return delivered(source, body, woocommerce_headers(body, SECRET, topic, delivery), [SECRET.encode()], NOW)


def test_an_order_that_becomes_failed_is_a_payment_failure_with_the_billing_customer() -> None:
    event = event_of("order_updated.failed", "order.updated")
    assert event.kind == "payment_failed"
    assert (event.customer.name, event.customer.email, event.customer.phone, event.customer.language) == (
        "Lucía Fernández", "lucia.fernandez@example.com", "+34611222333", "es",
    )  # fmt: skip
    assert (event.order.id, event.order.number, event.order.amount, event.order.currency) == (
        "1042", "1042", 189.90, "EUR",
    )  # fmt: skip
    assert event.occurred_at == datetime(2026, 11, 28, 22, 10, 5, tzinfo=UTC)


def test_retries_with_new_delivery_ids_share_one_dedup_key() -> None:
    first = event_of("order_updated.failed", "order.updated", delivery="101")
    retry = event_of("order_updated.failed", "order.updated", delivery="102")
    assert first.dedup_key == retry.dedup_key == "order:1042:2026-11-28T22:10:05"


@pytest.mark.parametrize(
    ("name", "topic", "kind"),
    [
        ("order_created.processing", "order.created", "payment_succeeded"),
        ("order_created.pending", "order.created", "order_created"),
        ("order_created.pending", "order.updated", "unrecognised"),
    ],
)
def test_orders_map_to_kinds_by_status(name: str, topic: str, kind: str) -> None:
    assert event_of(name, topic).kind == kind


def test_the_creation_ping_is_recognised_only_unsigned_and_form_shaped() -> None:
    assert source.is_ping({"content-type": "application/x-www-form-urlencoded"}, b"webhook_id=7")
    assert not source.is_ping({"x-wc-webhook-signature": "x"}, b"webhook_id=7")
    assert not source.is_ping({}, b'{"webhook_id": 7}')


def test_a_forged_signature_is_refused() -> None:
    body = load("woocommerce/order_updated.failed.json")
    headers = lower(woocommerce_headers(body, "guess", "order.updated"))
    with pytest.raises(SignatureError):
        source.verify(headers, body, [SECRET.encode()], NOW)
