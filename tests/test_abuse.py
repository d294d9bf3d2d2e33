"""What a hostile client can send, on every endpoint that takes a body or a signature: nothing
it sends is a 5xx, every refusal is JSON `{"error": …}` (HTML for the two pages), and nothing
forged, truncated, lifted from another delivery, stale or replayed is stored or acted on.

The shop is the weekend story (tests.fakes.paging_shop) with every webhook source and every
paging channel configured, and the incident paged by Telegram and SMS, so a request that got
through would change something this file can see (`world()`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from twilio.request_validator import RequestValidator

from oncall import acklinks as ack
from oncall.acktoken import AckSigner
from oncall.sources.samples import sample
from oncall.store.database import Connection
from oncall.web.app import create_app
from tests.fakes.paging_shop import PUBLIC, SLACK_SECRET, TELEGRAM_SECRET, TWILIO_TOKEN, PagingShop, open_shop
from tests.fixtures import platforms as p
from tests.recording import PEOPLE, event, madrid
from tests.test_status_page import write_shop

ANA = PEOPLE["ana"]
ADMIN = "abuse-admin-token"
WEBHOOK_SECRETS = {
    "shopify": "shopify-abuse",
    "stripe": "whsec_abuse",
    "woocommerce": "woo-abuse",
    "zendesk": "zendesk-abuse",
    "freshdesk": "freshdesk-abuse",
    "generic": "generic-abuse",
}
SETTINGS: dict[str, Any] = {
    ("freshdesk_token" if s == "freshdesk" else f"{s}_secret"): v for s, v in WEBHOOK_SECRETS.items()
}
FIRST_SMS = "SM" + f"{1:032x}"  # the fake Twilio's first message SID


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[PagingShop]:
    async with open_shop(tmp_path, admin_token=ADMIN, **SETTINGS) as s:
        yield s


async def paged(shop: PagingShop) -> int:
    """A payment failure at Saturday 23:10, paged to Ana by Telegram at 23:15 and by SMS at
    23:25; the incident's number."""
    await shop.receive(event(at=madrid("2026-11-28 23:10")))
    for at in ("23:10", "23:15", "23:25"):
        await shop.at(f"2026-11-28 {at}")
    [incident] = [i.id for i in await shop.service.incidents()]
    assert [c.params["To"] for c in shop.twilio.sent()] == [ANA.phone]
    return incident


async def world(shop: PagingShop) -> tuple[Any, ...]:
    """Everything a request that got through would change: stored events, incidents (state
    and version), pages, inbound dedup records, and every call made to the providers."""

    def read(conn: Connection) -> tuple[Any, ...]:
        return (
            conn.fetchall("SELECT COUNT(*) FROM events"),
            conn.fetchall("SELECT id, state, version FROM incidents ORDER BY id"),
            conn.fetchall("SELECT key, state FROM pages ORDER BY key"),
            conn.fetchall("SELECT source, delivery_id FROM paging_inbound ORDER BY source, delivery_id"),
        )

    await shop.service.drain()
    rows = await shop.db.transaction(read)
    return (*rows, len(shop.telegram.calls), len(shop.slack.calls), len(shop.twilio.calls))


def refused(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


# --- how each endpoint is signed ---------------------------------------------------------------


def _hmac_b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _stripe(body: bytes, secret: str, at: float) -> dict[str, str]:
    # Stripe's own helper signs text; this signs the bytes as they are (they may not be UTF-8).
    ts = int(at)
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={ts},v1={sig}", "Content-Type": "application/json"}


def _slack(body: bytes, secret: str, at: float) -> dict[str, str]:
    ts = str(int(at))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _twilio(path: str) -> Callable[[bytes, str, float], dict[str, str]]:
    def sign(body: bytes, secret: str, at: float) -> dict[str, str]:
        params = dict(parse_qsl(body.decode()))
        return {
            "X-Twilio-Signature": RequestValidator(secret).compute_signature(f"{PUBLIC}{path}", params),
            "Content-Type": "application/x-www-form-urlencoded",
        }

    return sign


SIGNERS: dict[str, Callable[[bytes, str, float], dict[str, str]]] = {
    "shopify": lambda b, s, at: p.shopify_headers(b, s, "order_transactions/create", str(uuid.uuid4())),
    "stripe": _stripe,
    "woocommerce": lambda b, s, at: p.woocommerce_headers(b, s, "order.updated", str(uuid.uuid4())),
    "zendesk": lambda b, s, at: p.zendesk_headers(b, s, str(uuid.uuid4())),
    "freshdesk": lambda b, s, at: p.freshdesk_headers(s),
    "generic": lambda b, s, at: {
        "X-Oncall-Signature": "sha256=" + hmac.new(s.encode(), b, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    },
    "telegram": lambda b, s, at: {"X-Telegram-Bot-Api-Secret-Token": s, "Content-Type": "application/json"},
    "slack_actions": _slack,
    "slack_commands": _slack,
    "twilio_sms": _twilio("/twilio/sms"),
    "twilio_status": _twilio("/twilio/status"),
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    header: str  # the header that carries the signature or the shared secret
    secret: str
    body_bound: bool  # the signature covers the body (so one cannot be moved to another body)
    timed: bool = False  # the signature carries a time and goes stale

    def sign(
        self, body: bytes, shop: PagingShop, secret: str | None = None, ago: float = 0.0
    ) -> dict[str, str]:
        """Signed `ago` seconds before now: the app's clock for webhooks (the intake checks
        Stripe's tolerance against it), the real one for Slack (its SDK reads the system time)."""
        now = shop.now.timestamp() if self.path.startswith("/webhooks/") else time.time()
        return SIGNERS[self.name](body, self.secret if secret is None else secret, now - ago)


SIGNED = [
    *(
        Endpoint(s, f"/webhooks/{s}", h, WEBHOOK_SECRETS[s], s != "freshdesk", s == "stripe")
        for s, h in [
            ("shopify", "X-Shopify-Hmac-Sha256"),
            ("stripe", "Stripe-Signature"),
            ("woocommerce", "X-WC-Webhook-Signature"),
            ("zendesk", "X-Zendesk-Webhook-Signature"),
            ("freshdesk", "Authorization"),
            ("generic", "X-Oncall-Signature"),
        ]
    ),
    Endpoint("telegram", "/telegram/webhook", "X-Telegram-Bot-Api-Secret-Token", TELEGRAM_SECRET, False),
    Endpoint("slack_actions", "/slack/actions", "X-Slack-Signature", SLACK_SECRET, True, True),
    Endpoint("slack_commands", "/slack/commands", "X-Slack-Signature", SLACK_SECRET, True, True),
    Endpoint("twilio_sms", "/twilio/sms", "X-Twilio-Signature", TWILIO_TOKEN, True),
    Endpoint("twilio_status", "/twilio/status", "X-Twilio-Signature", TWILIO_TOKEN, True),
]
BY_NAME = {e.name: e for e in SIGNED}
SAMPLE_KIND = {
    "shopify": "payment_failed",
    "stripe": "payment_failed",
    "woocommerce": "payment_failed",
    "zendesk": "ticket_created",
    "freshdesk": "ticket_created",
    "generic": "checkout_error",
}


def acting_body(endpoint: Endpoint, incident: int, n: int) -> bytes:
    """A genuine delivery that changes the world (a new event, an ack, a failed SMS); `n`
    makes each one a different delivery."""
    if endpoint.name in SAMPLE_KIND:
        return sample(endpoint.name, SAMPLE_KIND[endpoint.name], datetime.now(UTC))[0]
    if endpoint.name == "telegram":
        update = {
            "update_id": 5000 + n,
            "callback_query": {"id": f"cb{n}", "from": {"id": ANA.telegram}, "data": f"ack:{incident}"},
        }
        return json.dumps(update).encode()
    if endpoint.name == "slack_actions":
        payload = {
            "type": "block_actions",
            "user": {"id": ANA.slack},
            "container": {"channel_id": "DANA"},
            "actions": [{"action_id": f"ack:{incident}", "value": str(incident), "trigger_id": str(n)}],
        }
        return urlencode({"payload": json.dumps(payload)}).encode()
    if endpoint.name == "slack_commands":
        return urlencode({"command": "/ack", "text": f"{incident} ", "user_id": ANA.slack, "n": n}).encode()
    if endpoint.name == "twilio_sms":
        return urlencode({"MessageSid": f"SMabuse{n}", "From": ANA.phone, "Body": f"{incident}a"}).encode()
    assert endpoint.name == "twilio_status"
    fields = {"MessageSid": FIRST_SMS, "MessageStatus": "undelivered", "To": ANA.phone, "N": n}
    return urlencode(fields).encode()


async def post(shop: PagingShop, endpoint: Endpoint, body: bytes, headers: dict[str, str]) -> httpx.Response:
    r = await shop.client.post(endpoint.path, content=body, headers=headers)
    await shop.service.drain()
    return r


# --- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", SIGNED, ids=lambda e: e.name)
async def test_forged_truncated_lifted_and_stale_signatures_are_401_and_change_nothing(
    shop: PagingShop, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    incident = await paged(shop)
    body = acting_body(endpoint, incident, 1)
    genuine = endpoint.sign(body, shop)
    attempts: dict[str, dict[str, str]] = {
        "forged": endpoint.sign(body, shop, secret=endpoint.secret + "x"),
        "truncated": genuine | {endpoint.header: genuine[endpoint.header][:-1]},
        "missing": {k: v for k, v in genuine.items() if k != endpoint.header},
        "empty": genuine | {endpoint.header: ""},
    }
    if endpoint.body_bound:  # a genuine signature of another delivery
        attempts["lifted"] = endpoint.sign(acting_body(endpoint, incident, 2), shop)
    if endpoint.timed:  # a genuine signature, replayed after its 5 minutes
        attempts["stale"] = endpoint.sign(body, shop, ago=600)
    before = await world(shop)
    for name, headers in attempts.items():
        r = await post(shop, endpoint, body, headers)
        refused(r, 401)
        assert await world(shop) == before, name
    no_traceback(caplog)
    assert (await post(shop, endpoint, body, genuine)).status_code < 300  # the real one still works
    assert await world(shop) != before


REPLAYABLE = [e for e in SIGNED if e.name != "twilio_status"]


@pytest.mark.parametrize("endpoint", REPLAYABLE, ids=lambda e: e.name)
async def test_a_genuine_delivery_replayed_acts_once(shop: PagingShop, endpoint: Endpoint) -> None:
    incident = await paged(shop)
    body = acting_body(endpoint, incident, 1)
    headers = endpoint.sign(body, shop)
    before = await world(shop)
    first = await post(shop, endpoint, body, headers)
    assert first.status_code in (200, 202), first.text
    after = await world(shop)
    assert after != before
    for _ in range(2):  # replayed as is, within any signature's time window
        again = await post(shop, endpoint, body, headers)
        assert again.status_code == 200, again.text
        assert await world(shop) == after


async def test_a_delivery_report_replayed_changes_nothing_more(shop: PagingShop) -> None:
    endpoint = BY_NAME["twilio_status"]
    incident = await paged(shop)
    body = acting_body(endpoint, incident, 1)
    headers = endpoint.sign(body, shop)
    assert (await post(shop, endpoint, body, headers)).status_code == 204
    after = await world(shop)
    assert "failed" in {state for _, state in after[2]}  # the SMS page, and Ana is paged again
    assert (await post(shop, endpoint, body, headers)).status_code == 204
    assert await world(shop) == after


# --- ack tokens --------------------------------------------------------------------------------


def respellings(token: str) -> dict[str, str]:
    """Other spellings of `token` that a lenient base64 decoder reads as the same bytes."""
    body, _, mac = token.partition(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(mac[-1])
    # 16 bytes are 22 characters: the last one carries 2 bits, its low 4 are thrown away.
    twin = next(c for i, c in enumerate(alphabet) if i >> 4 == last >> 4 and i != last)
    same = base64.urlsafe_b64decode(mac + "==") == base64.urlsafe_b64decode(mac[:-1] + twin + "==")
    assert same
    out = {
        "low bits": f"{body}.{mac[:-1]}{twin}",
        "padded": f"{token}==",
        "padded body": f"{body}{'=' * (-len(body) % 4) or '===='}.{mac}",
        "standard alphabet": token.replace("-", "+"),  # ("/" for "_" would be another path)
        "stray character": f"{body}.{mac[:10]}!{mac[10:]}",
    }
    return {k: v for k, v in out.items() if v != token}


async def test_forged_truncated_and_respelled_ack_tokens_are_401_and_act_on_nothing(
    shop: PagingShop, caplog: pytest.LogCaptureFixture
) -> None:
    incident = await paged(shop)
    token = ack.signer().sign((incident,), "ana", shop.now)
    body = token.partition(".")[0]
    forged_mac = base64.urlsafe_b64encode(bytes(16)).rstrip(b"=").decode()
    bad = {
        "forged": f"{body}.{forged_mac}",
        "another key": AckSigner(b"k" * 32).sign((incident,), "ana", shop.now),
        "truncated": token[:-1],
        "no signature": body,
        "empty signature": f"{body}.",
        **respellings(token),
    }
    before = await world(shop)
    for name, spelling in bad.items():
        for method in ("GET", "POST"):
            r = await shop.client.request(
                method, f"/ack/{quote(spelling, safe='')}", data={"verb": "ack"} if method == "POST" else None
            )
            assert r.status_code == 401, (name, method, r.text)
            assert r.headers["content-type"].startswith("text/html")
            assert "Ack" not in r.text.replace("Acknowledging", "")  # no buttons on a refusal
    assert await world(shop) == before
    no_traceback(caplog)
    assert (await shop.client.post(f"/ack/{token}", data={"verb": "ack"})).status_code == 200
    assert await shop.state(incident) == "acknowledged"


# --- hostile JSON ------------------------------------------------------------------------------

HOSTILE_JSON = {
    "100,000 open brackets": b"[" * 100_000,
    "65 nested objects": b'{"kind": "checkout_error", "details": ' + b'{"a": ' * 64 + b"1" + b"}" * 65,
    "invalid UTF-8": b'{"kind": "checkout_error", "summary": "caf\xc3 \xff\xfe"}',
    "overlong UTF-8": b'{"kind": "checkout_error", "summary": "\xc0\xaf"}',
    "unpaired surrogate": b'{"kind": "checkout_error", "id": "x\\ud800", "summary": "\\udc00"}',
}
JSON_ENDPOINTS = [e for e in SIGNED if e.name in (*WEBHOOK_SECRETS, "telegram", "slack_actions")]


@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS, ids=lambda e: e.name)
async def test_deeply_nested_or_broken_json_correctly_signed_is_400(
    shop: PagingShop, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    before = await world(shop)
    for name, raw in HOSTILE_JSON.items():
        # Slack posts its JSON as the form field `payload`, percent-encoded.
        body = b"payload=" + quote(raw).encode() if endpoint.name == "slack_actions" else raw
        r = await post(shop, endpoint, body, endpoint.sign(body, shop))
        refused(r, 400)
        assert await world(shop) == before, name
    no_traceback(caplog)


async def test_a_body_over_the_limit_is_413_as_it_streams_in_on_every_route(tmp_path: Path) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse it early
        nonlocal sent
        for _ in range(1000):
            sent += 500
            yield b" " * 500

    async with open_shop(tmp_path, max_body_bytes=1000, **SETTINGS) as shop:
        for endpoint in SIGNED:
            sent = 0
            refused(await shop.client.post(endpoint.path, content=endless()), 413)
            assert sent <= 2000, endpoint.path  # refused at the limit, not after reading it all


# --- schemathesis: the whole OpenAPI ------------------------------------------------------------


class AppThread:
    """The app with its lifespan (service, scheduler) on an event loop in a thread, called
    synchronously from hypothesis' examples through httpx's ASGI transport."""

    def __init__(self, app: FastAPI) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oncall.test")
        self.lifespan = app.router.lifespan_context(app)
        self.run(self.lifespan.__aenter__())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self.run(self.http.aclose())
        self.run(self.lifespan.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _spec_app(root: Path) -> FastAPI:
    return create_app(
        _env_file=None,
        database_url=f"sqlite:///{root / 'oncall.db'}",
        rules_file=root / "escalation_rules.toml",
        rotas_dir=root / "rotas",
        admin_token=ADMIN,
        telegram_webhook_secret=TELEGRAM_SECRET,
        slack_signing_secret=SLACK_SECRET,
        twilio_auth_token=TWILIO_TOKEN,
        **SETTINGS,
    )


SPEC = schemathesis.openapi.from_dict(_spec_app(Path("/nonexistent")).openapi())
HTML_PAGES = ("/ack/{token}",)  # answered as HTML by design (for a phone browser)


@pytest.fixture(scope="module")
def spec_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppThread]:
    root = tmp_path_factory.mktemp("spec")
    write_shop(root)  # a valid configuration, so /readyz is ready and the service runs
    running = AppThread(_spec_app(root))
    yield running
    running.close()


@SPEC.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_of_the_openapi_answers_without_a_5xx_and_errors_are_json(
    case: Any, spec_app: AppThread
) -> None:
    kwargs = case.as_transport_kwargs(base_url="http://oncall.test")
    # The admin token goes with every call, so the API's own checks are reached, not only 401.
    headers = {"Authorization": f"Bearer {ADMIN}", **(kwargs.pop("headers", None) or {})}
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes | str):  # requests' spelling of a raw body
        kwargs["content"] = kwargs.pop("data")
    r: httpx.Response = spec_app.run(spec_app.http.request(headers=headers, **kwargs))
    where = f"{case.method} {case.formatted_path}: {r.status_code} {r.text[:300]}"
    assert r.status_code < 500, where
    if r.status_code < 400:
        return
    if case.path in HTML_PAGES and r.headers["content-type"].startswith("text/html"):
        return  # the page's own refusal, for a browser; the router's (e.g. 405) is JSON as usual
    assert r.headers["content-type"].startswith("application/json"), where
    body = r.json()
    assert isinstance(body, dict) and list(body) == ["error"] and isinstance(body["error"], str), where


async def test_header_values_that_are_not_ascii_are_refused_not_a_5xx(
    shop: PagingShop, caplog: pytest.LogCaptureFixture
) -> None:
    """Headers arrive as latin-1: "²" (0xB2) passes `str.isdigit()`, yet `int()` rejects it."""
    body = acting_body(BY_NAME["stripe"], 1, 1)
    for value in (b"t=\xb2,v1=00", b"t=" + b"1" * 5000 + b",v1=00", b"t=1,v1=\xe9"):
        r = await shop.client.post("/webhooks/stripe", content=body, headers=[(b"Stripe-Signature", value)])
        refused(r, 401)
    for endpoint in SIGNED:
        r = await shop.client.post(
            endpoint.path, content=b"{}", headers=[(endpoint.header.encode(), b"\xe9\xb2")]
        )
        refused(r, 401)
    no_traceback(caplog)


# --- the store down -----------------------------------------------------------------------------


async def test_every_inbound_action_answers_503_json_while_the_store_is_down(shop: PagingShop) -> None:
    """Telegram, Slack and Twilio retry a 5xx; a 500 with a traceback would say "bug" and flood
    the log while the database is only restarting: they get 503 `{"error": …}` like webhooks."""
    incident = await paged(shop)
    await shop.db.aclose()  # every unit of work now fails with StoreUnavailable
    answers = [
        await shop.press(ANA.telegram or 0, f"ack:{incident}"),
        await shop.slack_press(ANA.slack or "", f"ack:{incident}"),
        await shop.sms_reply(ANA.phone or "", f"{incident}a"),
    ]
    for r in answers:
        assert r.status_code == 503, r.text
        assert "unavailable" in r.json()["error"]
