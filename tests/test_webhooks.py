"""`POST /webhooks/*` through the real app: what each platform sees in answer, and what is kept."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from oncall.core.models import Event
from oncall.store.events import count_events, get_event
from oncall.web.app import create_app
from tests.fixtures import platforms as p
from tests.inprocess import app_client

SECRETS: dict[str, Any] = {
    "stripe_secret": "whsec_old_0000,whsec_test_4eC39HqLyjWDarjtT1zdp7dc",
    "shopify_secret": "shpss_5d3f0c1e2b7a",
    "woocommerce_secret": "wc-secret-9f8e7d",
    "zendesk_secret": "dGhpc19zZWNyZXQ=",
    "freshdesk_token": "fd-token-31f9",
    "generic_secret": "generic-secret",
}
STRIPE = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"


def running(
    tmp_path: Path, **settings: Any
) -> AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on the files in `tmp_path`, every platform's secret configured."""
    return app_client(tmp_path, **(SECRETS | settings))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running(tmp_path) as pair:
        yield pair


def stored(app: FastAPI) -> int:
    return int(app.state.db.transaction_sync(count_events))


def event(app: FastAPI, event_id: int) -> Event:
    found = app.state.db.transaction_sync(lambda conn: get_event(conn, event_id))
    assert found is not None
    return found  # type: ignore[no-any-return]


Delivery = tuple[str, bytes, dict[str, str]]


def deliveries() -> dict[str, Callable[[], Delivery]]:
    """One genuine delivery per platform, signed as the platform signs it."""
    stripe_body = p.load("stripe/payment_intent.payment_failed.json")
    shopify_body = p.load("shopify/order_transactions_create.failure.json")
    woo_body = p.load("woocommerce/order_updated.failed.json")
    zendesk_body = p.load("zendesk/ticket_created.json")
    freshdesk_body = p.load("freshdesk/ticket_created.json")
    generic_body = p.load("generic/checkout_error.json")
    return {
        "stripe": lambda: ("stripe", stripe_body, p.stripe_headers(stripe_body, STRIPE)),
        "shopify": lambda: (
            "shopify",
            shopify_body,
            p.shopify_headers(shopify_body, SECRETS["shopify_secret"], "order_transactions/create", "wh-1"),
        ),
        "woocommerce": lambda: (
            "woocommerce",
            woo_body,
            p.woocommerce_headers(woo_body, SECRETS["woocommerce_secret"], "order.updated"),
        ),
        "zendesk": lambda: (
            "zendesk",
            zendesk_body,
            p.zendesk_headers(zendesk_body, SECRETS["zendesk_secret"], "8432910576"),
        ),
        "freshdesk": lambda: ("freshdesk", freshdesk_body, p.freshdesk_headers(SECRETS["freshdesk_token"])),
        "generic": lambda: (
            "generic",
            generic_body,
            p.generic_headers(generic_body, SECRETS["generic_secret"]),
        ),
    }


EXPECTED_KIND = {
    "stripe": "payment_failed",
    "shopify": "payment_failed",
    "woocommerce": "payment_failed",
    "zendesk": "ticket_created",
    "freshdesk": "ticket_created",
    "generic": "checkout_error",
}


@pytest.mark.parametrize("source", list(EXPECTED_KIND))
async def test_a_genuine_delivery_is_stored_and_answered_202_then_duplicates_200(
    served: tuple[FastAPI, httpx.AsyncClient], source: str
) -> None:
    app, client = served
    name, body, headers = deliveries()[source]()
    first = await client.post(f"/webhooks/{name}", content=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json() == {"status": "accepted", "event_id": 1}
    kept = event(app, 1)
    assert (kept.source, kept.kind) == (source, EXPECTED_KIND[source])
    again = await asyncio.gather(
        *(client.post(f"/webhooks/{name}", content=body, headers=headers) for _ in range(19))
    )
    assert {(r.status_code, r.text) for r in again} == {(200, '{"status":"duplicate","event_id":1}')}
    assert stored(app) == 1


async def test_woocommerce_retries_with_new_delivery_ids_are_one_event(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    body = p.load("woocommerce/order_updated.failed.json")
    for delivery in range(1, 21):
        headers = p.woocommerce_headers(body, SECRETS["woocommerce_secret"], "order.updated", str(delivery))
        answer = await client.post("/webhooks/woocommerce", content=body, headers=headers)
        assert answer.status_code == (202 if delivery == 1 else 200)
    assert stored(app) == 1


async def test_the_woocommerce_creation_ping_is_answered_200_and_nothing_is_stored(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    answer = await client.post("/webhooks/woocommerce", data={"webhook_id": "7"})
    assert (answer.status_code, answer.json()) == (200, {"status": "ping"})
    assert stored(app) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "Stripe-Signature"}, "missing Stripe-Signature"),
        (lambda h: h | {"Stripe-Signature": h["Stripe-Signature"][:-4] + "0000"}, "does not match"),
        (lambda h: h | {"Stripe-Signature": "t=1,v1=abc"}, "does not match"),
    ],
)
async def test_a_forged_or_missing_stripe_signature_is_401_and_nothing_is_stored(
    served: tuple[FastAPI, httpx.AsyncClient],
    change: Callable[[dict[str, str]], dict[str, str]],
    message: str,
) -> None:
    app, client = served
    body = p.load("stripe/charge.failed.json")
    answer = await client.post(
        "/webhooks/stripe", content=body, headers=change(p.stripe_headers(body, STRIPE))
    )
    assert answer.status_code == 401
    assert message in answer.json()["error"]
    assert stored(app) == 0


async def test_a_stale_stripe_delivery_is_401_even_when_correctly_signed(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    import time

    app, client = served
    body = p.load("stripe/charge.failed.json")
    headers = p.stripe_headers(body, STRIPE, timestamp=int(time.time()) - 301)
    answer = await client.post("/webhooks/stripe", content=body, headers=headers)
    assert answer.status_code == 401
    assert "old (tolerance 300s)" in answer.json()["error"]
    assert stored(app) == 0


@pytest.mark.parametrize("source", list(EXPECTED_KIND))
async def test_every_source_refuses_a_delivery_signed_with_another_secret(
    served: tuple[FastAPI, httpx.AsyncClient], source: str
) -> None:
    app, client = served
    name, body, _headers = deliveries()[source]()
    forged = {
        "stripe": lambda: p.stripe_headers(body, "whsec_attacker"),
        "shopify": lambda: p.shopify_headers(body, "x", "orders/create", "1"),
        "woocommerce": lambda: p.woocommerce_headers(body, "x", "order.updated"),
        "zendesk": lambda: p.zendesk_headers(body, "x", "1"),
        "freshdesk": lambda: p.freshdesk_headers("x"),
        "generic": lambda: p.generic_headers(body, "x"),
    }[source]()
    answer = await client.post(f"/webhooks/{name}", content=body, headers=forged)
    assert answer.status_code == 401 and answer.json()["error"]
    unsigned = await client.post(
        f"/webhooks/{name}", content=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401 and "missing" in unsigned.json()["error"]
    assert stored(app) == 0


async def test_both_the_old_and_the_new_secret_are_accepted_during_rotation(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    old = p.load("stripe/charge.failed.json")
    new = p.load("stripe/charge.succeeded.json")
    a = await client.post("/webhooks/stripe", content=old, headers=p.stripe_headers(old, "whsec_old_0000"))
    b = await client.post("/webhooks/stripe", content=new, headers=p.stripe_headers(new, STRIPE))
    assert (a.status_code, b.status_code) == (202, 202)
    assert stored(app) == 2


async def test_a_source_without_a_secret_refuses_everything(tmp_path: Path) -> None:
    async with running(tmp_path, shopify_secret=None) as (app, client):
        body = p.load("shopify/orders_create.json")
        answer = await client.post(
            "/webhooks/shopify",
            content=body,
            headers=p.shopify_headers(body, "anything", "orders/create", "1"),
        )
        assert answer.status_code == 401
        assert "ONCALL_SHOPIFY_SECRET" in answer.json()["error"]
        assert stored(app) == 0


async def test_invalid_json_is_400_saying_so(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = served
    body = b'{"id": "evt_1", "type": '
    answer = await client.post("/webhooks/stripe", content=body, headers=p.stripe_headers(body, STRIPE))
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("body is not valid JSON")
    assert stored(app) == 0


async def test_a_json_body_that_is_not_an_object_is_400(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = served
    body = b"[1, 2, 3]"
    answer = await client.post(
        "/webhooks/generic", content=body, headers=p.generic_headers(body, "generic-secret")
    )
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": 'a generic event is a JSON object with at least a "kind"'},
    )


async def test_a_two_mebibyte_body_is_413_before_anything_else(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    body = b'{"kind": "checkout_error", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = await client.post(
        "/webhooks/generic", content=body, headers=p.generic_headers(body, "generic-secret")
    )
    assert (answer.status_code, answer.json()) == (413, {"error": "body larger than 1048576 bytes"})

    # Also without a Content-Length (chunked): counted while reading.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * (1024 * 1024)

    chunked = await client.post(
        "/webhooks/generic", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    assert stored(app) == 0


async def test_a_wrong_content_type_is_415_saying_what_was_expected(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    body = p.load("generic/checkout_error.json")
    headers = p.generic_headers(body, "generic-secret") | {
        "Content-Type": "application/x-www-form-urlencoded"
    }
    answer = await client.post("/webhooks/generic", content=body, headers=headers)
    assert answer.status_code == 415
    assert answer.json() == {
        "error": "expected Content-Type application/json, got application/x-www-form-urlencoded"
    }
    assert stored(app) == 0


async def test_checks_run_in_order_size_then_signature_then_parsing(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    big = b"x" * (1024 * 1024 + 1)
    assert (await client.post("/webhooks/stripe", content=big)).status_code == 413
    bad = b"not json"
    assert (await client.post("/webhooks/stripe", content=bad)).status_code == 401
    assert (
        await client.post("/webhooks/stripe", content=bad, headers=p.stripe_headers(bad, STRIPE))
    ).status_code == 400


async def test_a_signed_event_of_an_unknown_type_is_kept_as_unrecognised(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    body = p.load("stripe/customer.created.json")
    answer = await client.post("/webhooks/stripe", content=body, headers=p.stripe_headers(body, STRIPE))
    assert answer.status_code == 202
    kept = event(app, answer.json()["event_id"])
    assert (kept.kind, kept.external_type) == ("unrecognised", "customer.created")


async def test_a_locked_database_is_503_so_the_platform_retries_and_readyz_says_why(tmp_path: Path) -> None:
    async with running(tmp_path, database_url=f"sqlite:///{tmp_path}/oncall.db?timeout=0.05") as (
        app,
        client,
    ):
        body = p.load("stripe/charge.failed.json")
        headers = p.stripe_headers(body, STRIPE)
        blocker = sqlite3.connect(tmp_path / "oncall.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            answer = await client.post("/webhooks/stripe", content=body, headers=headers)
            assert (answer.status_code, answer.json()) == (
                503,
                {"error": "the event store is unavailable; retry later"},
            )
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["store"]["ok"] is False
            assert "locked" in ready.json()["checks"]["store"]["detail"]
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        retried = await client.post("/webhooks/stripe", content=body, headers=headers)
        assert retried.status_code == 202
        assert stored(app) == 1


async def test_a_full_disk_is_503_and_the_next_retry_succeeds_once_there_is_room(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    db = app.state.db

    def fill(conn: Any) -> None:
        pages = conn.fetchone("PRAGMA page_count")[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # this connection can grow no more

    await db.transaction(fill)
    # Big enough to need new pages whatever room the last page has left.
    body = json.dumps({"id": "big-1", "kind": "checkout_error", "details": {"trace": "x" * 50_000}}).encode()
    headers = p.generic_headers(body, SECRETS["generic_secret"])
    full = await client.post("/webhooks/generic", content=body, headers=headers)
    assert (full.status_code, full.json()) == (503, {"error": "the event store is unavailable; retry later"})
    assert stored(app) == 0
    # The failed connection is dropped; the retry gets a fresh one without the limit.
    retry = await client.post("/webhooks/generic", content=body, headers=headers)
    assert retry.status_code == 202


async def test_a_database_without_its_schema_is_503_not_500(tmp_path: Path) -> None:
    app = create_app(database_url=f"sqlite:///{tmp_path}/empty.db", migrate=False, **SECRETS)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oncall.test") as client,
    ):
        body = p.load("stripe/charge.failed.json")
        answer = await client.post("/webhooks/stripe", content=body, headers=p.stripe_headers(body, STRIPE))
        assert (answer.status_code, answer.json()) == (
            503,
            {"error": "the event could not be stored; retry later"},
        )


async def test_an_unreachable_postgresql_is_503(tmp_path: Path) -> None:
    async with running(tmp_path, database_url="postgresql://nobody@127.0.0.1:1/oncall") as (_app, client):
        body = p.load("stripe/charge.failed.json")
        answer = await client.post("/webhooks/stripe", content=body, headers=p.stripe_headers(body, STRIPE))
        assert answer.status_code == 503
        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "not ready" and ready["checks"]["store"]["ok"] is False


async def test_events_are_still_there_after_a_restart(tmp_path: Path) -> None:
    body = p.load("stripe/payment_intent.payment_failed.json")
    async with running(tmp_path) as (_, client):
        first = await client.post("/webhooks/stripe", content=body, headers=p.stripe_headers(body, STRIPE))
        assert first.status_code == 202
    async with running(tmp_path) as (app, client):
        assert event(app, 1).customer.email == "lucia.fernandez@example.com"
        again = await client.post("/webhooks/stripe", content=body, headers=p.stripe_headers(body, STRIPE))
        assert (again.status_code, again.json()) == (200, {"status": "duplicate", "event_id": 1})


async def test_each_new_event_wakes_the_router_once(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = served
    woken: list[int] = []
    app.state.on_event_stored = woken.append
    name, body, headers = deliveries()["zendesk"]()
    for _ in range(3):
        await client.post(f"/webhooks/{name}", content=body, headers=headers)
    assert woken == [1]


async def test_one_log_line_per_webhook_with_outcome_and_latency_and_never_a_secret(
    served: tuple[FastAPI, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _, client = served
    name, body, headers = deliveries()["freshdesk"]()
    with caplog.at_level(logging.INFO, logger="oncall.webhooks"):
        await client.post(f"/webhooks/{name}", content=body, headers=headers)
        await client.post(f"/webhooks/{name}", content=body, headers=p.freshdesk_headers("guess"))
    lines = [r.getMessage() for r in caplog.records if r.name == "oncall.webhooks"]
    assert len(lines) == 2
    accepted, refused = (json.loads(line.removeprefix("webhook ")) for line in lines)
    assert {k: accepted[k] for k in ("source", "kind", "event_id", "outcome", "status")} == {
        "source": "freshdesk", "kind": "ticket_created", "event_id": 1, "outcome": "accepted", "status": 202,
    }  # fmt: skip
    assert refused["outcome"] == "bad_signature" and refused["status"] == 401
    assert isinstance(accepted["latency_ms"], float)
    assert not any(secret in caplog.text for secret in ("fd-token-31f9", "guess"))


async def test_health_and_readiness_report_the_missing_configuration(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["store"] == {"ok": True, "detail": "sqlite reachable"}
    assert checks["config"]["ok"] is False
    assert checks["config"]["detail"].startswith("configuration not loaded")


async def test_the_openapi_spec_documents_the_webhooks_and_the_generic_schema(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    spec = (await client.get("/openapi.json")).json()
    generic = spec["paths"]["/webhooks/generic"]["post"]
    assert generic["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GenericEvent"
    }
    schema = spec["components"]["schemas"]["GenericEvent"]
    assert schema["required"] == ["kind"]
    assert {
        "id",
        "kind",
        "summary",
        "severity",
        "occurred_at",
        "customer",
        "order",
        "ticket",
        "tags",
        "details",
    } <= set(schema["properties"])
    assert set(generic["responses"]) == {"200", "202", "400", "401", "408", "413", "415", "503"}
    listing = spec["paths"]["/api/incidents"]["get"]["responses"]  # as answered: 400 {"error"}
    assert "422" not in listing and listing["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


async def test_get_on_a_webhook_is_405_json(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = served
    answer = await client.get("/webhooks/stripe")
    assert (answer.status_code, answer.json()) == (405, {"error": "use POST for /webhooks/stripe"})


async def test_on_postgresql_twenty_deliveries_are_one_event_that_survives_a_restart(tmp_path: Path) -> None:
    from tests.fixtures.databases import postgres_url

    with postgres_url() as url:
        name, body, headers = deliveries()["shopify"]()
        async with running(tmp_path, database_url=url) as (app, client):
            answers = await asyncio.gather(
                *(client.post(f"/webhooks/{name}", content=body, headers=headers) for _ in range(20))
            )
            assert sorted(a.status_code for a in answers) == [200] * 19 + [202]
        async with running(tmp_path, database_url=url) as (app, client):
            assert stored(app) == 1
            assert event(app, 1).kind == "payment_failed"
