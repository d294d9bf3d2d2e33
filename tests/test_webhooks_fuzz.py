"""Whatever arrives at a webhook endpoint — random bytes, random headers, random JSON, signed or
not — the answer is never a 5xx, and nothing is stored without a valid signature."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncall.store.events import count_events
from oncall.web.app import create_app
from tests.fixtures import platforms as p

SOURCES = ["shopify", "stripe", "woocommerce", "zendesk", "freshdesk", "generic"]
SECRET = {
    "stripe": "whsec_fuzz",
    "shopify": "shopify-fuzz",
    "woocommerce": "woo-fuzz",
    "zendesk": "zendesk-fuzz",
    "freshdesk": "freshdesk-fuzz",
    "generic": "generic-fuzz",
}
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Client:
    """A synchronous client for hypothesis: the app and its lifespan run on a loop in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oncall.test")
        self.lifespan = app.router.lifespan_context(app)
        self._run(self.lifespan.__aenter__())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self._run(self.http.post(path, content=content, headers=headers))  # type: ignore[no-any-return]

    def close(self) -> None:
        self._run(self.http.aclose())
        self._run(self.lifespan.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        database_url=f"sqlite:///{tmp}/oncall.db",
        rules_file=tmp / "none.toml",
        rotas_dir=tmp / "none",
        stripe_secret=SECRET["stripe"],
        shopify_secret=SECRET["shopify"],
        woocommerce_secret=SECRET["woocommerce"],
        zendesk_secret=SECRET["zendesk"],
        freshdesk_token=SECRET["freshdesk"],
        generic_secret=SECRET["generic"],
    )
    fuzz_client = Client(app)
    yield fuzz_client
    fuzz_client.close()


def stored(client: Client) -> int:
    return int(client.app.state.db.transaction_sync(count_events))


SIGNATURE_HEADERS = [
    "Stripe-Signature",
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Topic",
    "X-Shopify-Webhook-Id",
    "X-WC-Webhook-Signature",
    "X-WC-Webhook-Topic",
    "X-Zendesk-Webhook-Signature",
    "X-Zendesk-Webhook-Signature-Timestamp",
    "X-Zendesk-Webhook-Invocation-Id",
    "Authorization",
    "X-Oncall-Signature",
    "Content-Type",
]
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
    st.sampled_from(
        ["t=1,v1=00", "sha256=00", "Bearer x", "application/json", "orders/create", "webhook_id=1"]
    ),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
KNOWN_KEYS = [
    "id", "type", "kind", "status", "amount", "currency", "metadata", "billing_details", "billing",
    "customer", "order", "ticket", "requester", "event", "date_modified_gmt", "total", "order_id",
    "created", "occurred_at", "tags", "freshdesk_webhook", "customer_details", "last_payment_error",
]  # fmt: skip
TYPES = [
    "payment_intent.payment_failed",
    "charge.failed",
    "charge.dispute.created",
    "ticket_created",
    "checkout_error",
]
shaped = st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values | st.sampled_from(TYPES), max_size=8)
platform_like = st.one_of(
    json_values,
    shaped,
    st.builds(
        lambda obj, t, i: {"id": i, "type": t, "data": {"object": obj}},
        shaped,
        st.sampled_from(TYPES),
        json_values,
    ),
    st.builds(
        lambda t, e: {"ticket": t, "event": e}, shaped, json_values | st.sampled_from(["ticket_created"])
    ),
    st.builds(lambda t: {"freshdesk_webhook": t}, shaped),
)


def signed(source: str, body: bytes, delivery: str) -> dict[str, str]:
    secret = SECRET[source]
    return {
        "stripe": lambda: p.stripe_headers(body, secret),
        "shopify": lambda: p.shopify_headers(body, secret, "order_transactions/create", delivery),
        "woocommerce": lambda: p.woocommerce_headers(body, secret, "order.updated", delivery),
        "zendesk": lambda: p.zendesk_headers(body, secret, delivery),
        "freshdesk": lambda: p.freshdesk_headers(secret),
        "generic": lambda: p.generic_headers(body, secret),
    }[source]()


@FUZZ
@given(
    source=st.sampled_from(SOURCES),
    body=st.binary(max_size=600),
    headers=st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), header_values, max_size=6),
)
def test_random_bytes_and_headers_are_refused_without_a_5xx_and_never_stored(
    client: Client, source: str, body: bytes, headers: dict[str, str]
) -> None:
    before = stored(client)
    answer = client.post(f"/webhooks/{source}", content=body, headers=headers)
    assert answer.status_code < 500
    assert answer.status_code in (200, 401) if source == "woocommerce" else answer.status_code == 401
    assert set(answer.json()) <= {"error", "status"}
    assert stored(client) == before


@FUZZ
@given(source=st.sampled_from(SOURCES), payload=platform_like, delivery=st.uuids())
def test_random_json_correctly_signed_is_stored_or_refused_as_unreadable_never_a_5xx(
    client: Client, source: str, payload: Any, delivery: Any
) -> None:
    body = json.dumps(payload).encode()
    before = stored(client)
    answer = client.post(f"/webhooks/{source}", content=body, headers=signed(source, body, str(delivery)))
    assert answer.status_code in (200, 202, 400), answer.text
    after = stored(client)
    if answer.status_code == 202:
        assert after == before + 1
        assert answer.json()["status"] == "accepted"
    else:
        assert after == before
        assert answer.status_code == 200 or "error" in answer.json()


@FUZZ
@given(
    source=st.sampled_from(SOURCES),
    payload=platform_like,
    secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20),
)
def test_random_json_signed_with_a_wrong_secret_is_401_and_not_stored(
    client: Client, source: str, payload: Any, secret: str
) -> None:
    body = json.dumps(payload).encode()
    headers = {
        "stripe": lambda: p.stripe_headers(body, "x" + secret),
        "shopify": lambda: p.shopify_headers(body, "x" + secret, "orders/create", "1"),
        "woocommerce": lambda: p.woocommerce_headers(body, "x" + secret, "order.updated"),
        "zendesk": lambda: p.zendesk_headers(body, "x" + secret, "1"),
        "freshdesk": lambda: p.freshdesk_headers("x" + secret.strip() + "x"),
        "generic": lambda: p.generic_headers(body, "x" + secret),
    }[source]()
    before = stored(client)
    answer = client.post(f"/webhooks/{source}", content=body, headers=headers)
    assert answer.status_code == 401
    assert stored(client) == before
