"""`cancel_on` at the customer level (SPEC §2.1): a success for the same order **or** the same
customer (e-mail, phone) cancels a held failure, so a customer who gave up on the failed
order and paid for a new one pages nobody. Each platform's own payload goes through the real
signed intake, the store and the escalation service, at Saturday 23:10 by the app's clock.

Zendesk and Freshdesk send tickets only: no event of theirs is a success, so they have no case
here. Shopify's payment events (order transactions) carry no customer, only the order; its
order webhook does, and cancels a storefront's checkout error for the same customer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oncall.core.models import Match
from tests.fakes.paging_shop import PagingShop, open_shop
from tests.fixtures.platforms import (
    generic_headers,
    load_json,
    shopify_headers,
    stripe_headers,
    woocommerce_headers,
)
from tests.recording import RULES, madrid, shop_config

SECRETS: dict[str, Any] = {
    "stripe_secret": "whsec_cancel",
    "shopify_secret": "shopify-cancel",
    "woocommerce_secret": "woo-cancel",
    "generic_secret": "generic-cancel",
}

# A storefront monitor's checkout error, cancelled when the customer's next order comes in:
# held and paged as the weekend's payment failures are, without a customer message.
CHECKOUT_RULE = replace(
    RULES[0],
    name="checkout errors while closed",
    match=Match(kind=frozenset({"checkout_error"}), hours="closed"),
    cancel_on=("order_created",),
    reassure=None,
)


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[PagingShop]:
    async with open_shop(tmp_path, shop_config((CHECKOUT_RULE, *RULES)), **SECRETS) as s:
        yield s


async def post(shop: PagingShop, source: str, payload: Any, **how: str) -> None:
    body = json.dumps(payload).encode()
    if source == "stripe":
        headers = stripe_headers(body, SECRETS["stripe_secret"], timestamp=int(shop.now.timestamp()))
    elif source == "shopify":
        headers = shopify_headers(body, SECRETS["shopify_secret"], how["topic"], how["delivery"])
    elif source == "woocommerce":
        headers = woocommerce_headers(body, SECRETS["woocommerce_secret"], how["topic"])
    else:
        headers = generic_headers(body, SECRETS["generic_secret"])
    r = await shop.client.post(f"/webhooks/{source}", content=body, headers=headers)
    assert r.status_code == 202, r.text


async def story(shop: PagingShop, failure: tuple[Any, ...], success: tuple[Any, ...]) -> str | None:
    """The failure at Saturday 23:10, the success at 23:12; the incident's state after the hold,
    and nobody may have been paged."""
    shop.now = madrid("2026-11-28 23:10")
    await post(shop, *failure[:2], **(failure[2] if len(failure) > 2 else {}))
    await shop.at("2026-11-28 23:10")
    shop.now = madrid("2026-11-28 23:12")
    await post(shop, *success[:2], **(success[2] if len(success) > 2 else {}))
    await shop.at("2026-11-28 23:12")
    await shop.at("2026-11-28 23:15")
    [incident] = await shop.service.incidents(open_only=False)
    pages = shop.telegram.sent() + shop.slack.posted() + shop.twilio.sent()
    return incident.state if not pages else f"paged ({incident.state})"


async def test_stripe_a_payment_intent_succeeding_for_a_new_order_of_the_same_customer(
    shop: PagingShop,
) -> None:
    failed = load_json("stripe/payment_intent.payment_failed.json")
    paid = json.loads(json.dumps(failed))
    paid.update(id="evt_3QAbRetryLkdIwHu7ixNewOrd", type="payment_intent.succeeded")
    intent = paid["data"]["object"]
    intent.update(id="pi_3QAbRetryLkdIwHu7ixNewPI", status="succeeded", last_payment_error=None)
    intent["metadata"].update(order_id="1043", order_number="1043")  # the same e-mail, a new order
    assert await story(shop, ("stripe", failed), ("stripe", paid)) == "cancelled"


async def test_woocommerce_a_new_order_processing_for_the_same_customer(shop: PagingShop) -> None:
    failed = load_json("woocommerce/order_updated.failed.json")  # order 1042
    paid = load_json("woocommerce/order_created.processing.json")  # order 1043, the same e-mail
    assert failed["id"] != paid["id"]
    result = await story(
        shop,
        ("woocommerce", failed, {"topic": "order.updated"}),
        ("woocommerce", paid, {"topic": "order.created"}),
    )
    assert result == "cancelled"


async def test_generic_the_same_phone_written_another_way_and_no_e_mail(shop: PagingShop) -> None:
    base = load_json("generic/checkout_error.json")
    failed = base | {"id": "pay-1", "kind": "payment_failed"}
    failed["customer"] = base["customer"] | {"email": None, "phone": "+34 611 22 23 33"}
    paid = base | {"id": "pay-2", "kind": "payment_succeeded", "order": base["order"] | {"id": "1043"}}
    paid["customer"] = base["customer"] | {"email": None, "phone": "0034-611-222-333"}
    assert await story(shop, ("generic", failed), ("generic", paid)) == "cancelled"


async def test_shopify_an_order_of_the_same_customer_cancels_a_storefront_checkout_error(
    shop: PagingShop,
) -> None:
    error = load_json("generic/checkout_error.json")  # order 1042 of lucia.fernandez@example.com
    order = load_json("shopify/orders_create.json")  # Shopify's order 450789469, the same e-mail
    result = await story(
        shop, ("generic", error), ("shopify", order, {"topic": "orders/create", "delivery": "sh-1"})
    )
    assert result == "cancelled"
