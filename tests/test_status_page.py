"""`GET /`, the owner's status page, on the real app with real files and a real store: what the
owner sees on a phone — who is on call now and next, the open incidents with their timelines,
a failed edit — and that nobody else sees it."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from oncall.service import IncidentView
from oncall.web.app import create_app
from tests.fixtures import platforms as p

TOKEN = "st4tus-admin-token"
STRIPE = "whsec_status_page_test"
MADRID = ZoneInfo("Europe/Madrid")
EVIL = '<script>alert("x")</script> Lucía'

RULES = """
[shop]
name = "Tienda Ejemplo"
timezone = "Europe/Madrid"
language = "en"                      # the status page reads English here (Spanish: test_i18n)
fallback = "person:owner"

[business_hours]                     # never open: every event is after hours

[[policy]]
name = "night"
  [[policy.step]]
  notify = ["rota:weekend"]
  via = ["telegram"]
  ack_within = "10m"

[[rule]]
name = "payment failures"
match = { kind = ["payment_failed"] }
group_by = ["kind"]
hold = "0s"
policy = "night"
reassure = "payment_failed"

[message.payment_failed]
es = "Hola {customer_name}, tu pago del pedido {order_number} no se ha completado."
en = "Hi {customer_name}, the payment for order {order_number} did not go through."
"""

PEOPLE = """
[person.ana]
name = "Ana García"
telegram = 111
[person.luis]
name = "Luis Martín"
telegram = 222
[person.owner]
name = "Carmen"
telegram = 333
"""


def write_shop(root: Path) -> datetime:
    """The shop's files: Luis holds the rota, Ana covers it by an override from an hour ago
    until the returned time (aware, Madrid)."""
    now = datetime.now(MADRID).replace(second=0, microsecond=0)
    until = now + timedelta(hours=3)
    (root / "rotas").mkdir(exist_ok=True)
    (root / "escalation_rules.toml").write_text(RULES, encoding="utf-8")
    (root / "rotas" / "people.toml").write_text(PEOPLE, encoding="utf-8")
    (root / "rotas" / "weekend.toml").write_text(
        'timezone = "Europe/Madrid"\n[[layer]]\nname = "all"\nmembers = ["luis"]\n'
        f'[[override]]\nwho = "ana"\nfrom = "{now - timedelta(hours=1):%Y-%m-%d %H:%M}"\n'
        f'to = "{until:%Y-%m-%d %H:%M}"\n',
        encoding="utf-8",
    )
    return until


@asynccontextmanager
async def running(root: Path, **settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{root / 'oncall.db'}",
        "rules_file": root / "escalation_rules.toml",
        "rotas_dir": root / "rotas",
        "admin_token": TOKEN,
        "stripe_secret": STRIPE,
        "_env_file": None,
    }
    app = create_app(**(values | settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oncall.test") as client,
    ):
        yield app, client


def stripe_failure(event_id: str, name: str = "Lucía Fernández", email: str = "lucia@example.com") -> bytes:
    payload = p.load_json("stripe/payment_intent.payment_failed.json")
    payload["id"] = event_id
    billing = payload["data"]["object"]["last_payment_error"]["payment_method"]["billing_details"]
    billing["name"], billing["email"] = name, email
    payload["data"]["object"]["metadata"]["customer_email"] = email
    return json.dumps(payload).encode()


async def post_stripe(client: httpx.AsyncClient, body: bytes, secret: str = STRIPE) -> httpx.Response:
    return await client.post("/webhooks/stripe", content=body, headers=p.stripe_headers(body, secret))


async def paged_incident(app: FastAPI, within: float = 10.0) -> IncidentView:
    """Waits until the scheduler has routed the event and paged somebody."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        service = app.state.service
        if service is not None:
            found: list[IncidentView] = [i for i in await service.incidents() if i.paged]
            if found:
                return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no incident was paged")


def basic(password: str, user: str = "owner") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def clock(at: datetime) -> str:
    return f"{at.astimezone(MADRID):%a %d %b %H:%M}"


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, datetime]]:
    until = write_shop(tmp_path)
    async with running(tmp_path) as (app, client):
        yield app, client, until


class TestWhoMaySeeIt:
    async def test_a_phone_browser_gets_the_sign_in_form_not_a_password_prompt(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        _, client, _ = shop
        r = await client.get("/")
        assert r.status_code == 401
        # A Basic challenge would make the browser hide the form behind its own prompt.
        assert r.headers["www-authenticate"] == 'Bearer realm="oncall"'
        assert "Ana" not in r.text and "admin token" in r.text
        assert "<form method=post action=/login" in r.text and "type=password" in r.text
        assert (await client.get("/", headers=basic("wrong"))).status_code == 401
        assert (await client.get("/", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await client.get("/", headers=basic(TOKEN))).status_code == 200
        assert (await client.get("/", headers=basic(TOKEN, user=""))).status_code == 200

    async def test_a_script_sends_the_token_as_a_bearer(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        _, client, _ = shop
        r = await client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-store"
        assert "<script" not in r.text.lower() and "http://" not in r.text  # no JS, no outside assets

    async def test_without_an_admin_token_the_page_is_closed_and_says_how_to_open_it(
        self, tmp_path: Path
    ) -> None:
        write_shop(tmp_path)
        async with running(tmp_path, admin_token=None) as (_, client):
            r = await client.get("/", headers=basic("anything"))
            assert r.status_code == 401 and "set ONCALL_ADMIN_TOKEN" in r.text
            assert "www-authenticate" not in r.headers  # nothing to type in a prompt
            assert "Ana" not in r.text


async def test_the_owner_sees_who_is_on_call_and_the_open_incident_with_its_timeline(
    shop: tuple[FastAPI, httpx.AsyncClient, datetime],
) -> None:
    app, client, until = shop
    assert (await post_stripe(client, stripe_failure("evt_status_1", name=EVIL))).status_code == 202
    incident = await paged_incident(app)
    page = (await client.get("/", headers=basic(TOKEN))).text

    assert "Tienda Ejemplo" in page
    rota = page.split("<h2>Who is on call</h2>", 1)[1].split("<h2>", 1)[0]
    assert "weekend" in rota and "Ana García" in rota and clock(until) in rota  # until, Madrid time
    assert "Luis Martín" in rota  # next, from the same time
    assert rota.count(clock(until)) == 2

    incidents = page.split("<h2>Open incidents</h2>", 1)[1]
    assert f"#{incident.id}" in incidents and "payment failures" in incidents
    assert incident.state in incidents and "1 event" in incidents
    assert "Ana García by telegram" in incidents or "Ana García by console" in incidents
    for entry in incident.timeline:  # every timeline entry, with its time and actor
        at = datetime.fromisoformat(entry["at"])
        assert clock(at) in incidents
        assert entry["what"].split("<", 1)[0].split('"', 1)[0] in incidents
    # The customer's name from the webhook is shown as text, never run as a script.
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Lucía" in incidents
    assert "<script" not in page


async def test_a_failed_edit_is_shown_and_the_last_good_rota_stays(
    shop: tuple[FastAPI, httpx.AsyncClient, datetime], tmp_path: Path
) -> None:
    _, client, until = shop
    rules = tmp_path / "escalation_rules.toml"
    rules.write_text(RULES.replace('policy = "night"', 'policy = "nigth"'), encoding="utf-8")
    deadline = time.monotonic() + 15
    page = ""
    while time.monotonic() < deadline:
        page = (await client.get("/", headers=basic(TOKEN))).text
        if "not applied" in page:
            break
        await asyncio.sleep(0.2)
    assert "Your last edit was not applied" in page
    assert "nigth" in page and "escalation_rules.toml" in page
    assert "Ana García" in page and clock(until) in page  # the last good version is in force
    ready = (await client.get("/readyz")).json()  # SPEC §2.2: /readyz says so too
    assert ready["status"] == "ready" and "not applied" in ready["checks"]["config"]["detail"]
    assert "nigth" in ready["checks"]["config"]["detail"]


async def test_with_nothing_open_the_page_says_so(shop: tuple[FastAPI, httpx.AsyncClient, datetime]) -> None:
    _, client, _ = shop
    page = (await client.get("/", headers=basic(TOKEN))).text
    assert "No open incidents." in page
    assert datetime.now(UTC).astimezone(MADRID).strftime("%a %d %b") in page


async def test_files_that_never_loaded_are_shown_instead_of_the_rotas(tmp_path: Path) -> None:
    write_shop(tmp_path)
    (tmp_path / "escalation_rules.toml").write_text(RULES.replace('"night"', '"nigth"', 1), encoding="utf-8")
    async with running(tmp_path) as (_, client):
        r = await client.get("/", headers=basic(TOKEN))
        assert r.status_code == 200
        assert "No configuration is loaded: nobody can be paged" in r.text and "nigth" in r.text
        assert "Who is on call" not in r.text


# --- signing in from a browser, and the buttons ------------------------------------------------

SAME_SITE = {"Origin": "http://oncall.test"}  # the page's own origin, as the browser sends it


async def sign_in(client: httpx.AsyncClient, token: str = TOKEN) -> tuple[dict[str, str], str]:
    """Signs in on the form as a browser would; the cookie header and the page's form token."""
    r = await client.post("/login", data={"token": token}, headers=SAME_SITE)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    client.cookies.clear()  # every request below says which cookie it sends
    cookie = r.headers["set-cookie"].split(";", 1)[0]
    page = await client.get("/", headers={"Cookie": cookie})
    assert page.status_code == 200
    found = re.search(r"name=form_token value=([A-Za-z0-9_-]+)", page.text)
    assert found is not None
    return {"Cookie": cookie}, found.group(1)


async def press(
    client: httpx.AsyncClient, cookie: dict[str, str], fields: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    return await client.post("/", data=fields, headers=cookie | headers)


class TestSigningIn:
    async def test_the_token_on_the_form_gives_a_strict_http_only_cookie_that_is_not_the_token(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        _, client, _ = shop
        r = await client.post("/login", data={"token": TOKEN}, headers=SAME_SITE)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= attributes
        assert "secure" not in attributes  # ONCALL_PUBLIC_URL is http here: no TLS to require
        name, _, value = cookie.split(";", 1)[0].partition("=")
        assert name == "oncall_session" and len(value) >= 40 and TOKEN not in cookie
        client.cookies.clear()
        page = await client.get("/", headers={"Cookie": f"{name}={value}"})
        assert page.status_code == 200 and "Who is on call" in page.text and "Sign out" in page.text

    async def test_over_https_the_cookie_is_secure_and_bound_to_the_host(self, tmp_path: Path) -> None:
        write_shop(tmp_path)
        async with running(tmp_path, public_url="https://oncall.example") as (_, client):
            r = await client.post(
                "/login", data={"token": TOKEN}, headers={"Origin": "https://oncall.example"}
            )
            assert r.status_code == 303
            cookie = r.headers["set-cookie"]
            assert cookie.startswith("__Host-oncall_session=")  # Secure, path /, no Domain
            assert "secure" in {a.strip().lower() for a in cookie.split(";")}

    async def test_a_wrong_token_gets_the_form_again_and_no_cookie(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        _, client, _ = shop
        r = await client.post("/login", data={"token": "wrong"}, headers=SAME_SITE)
        assert r.status_code == 401 and "That is not the admin token" in r.text
        assert "set-cookie" not in r.headers and "action=/login" in r.text

    async def test_signing_in_from_another_site_is_403(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        _, client, _ = shop
        r = await client.post("/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "set-cookie" not in r.headers

    async def test_signing_out_ends_the_session_for_good(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        _, client, _ = shop
        cookie, form_token = await sign_in(client)
        r = await client.post("/logout", data={"form_token": form_token}, headers=cookie | SAME_SITE)
        assert r.status_code == 303 and 'oncall_session=""' in r.headers["set-cookie"]
        client.cookies.clear()
        again = await client.get("/", headers=cookie)  # the old cookie, kept by an attacker
        assert again.status_code == 401 and "action=/login" in again.text

    async def test_a_session_lasts_a_week(self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]) -> None:
        app, client, _ = shop
        signed_in_at = datetime.now(UTC)
        app.state.clock = lambda: signed_in_at
        cookie, _ = await sign_in(client)
        app.state.clock = lambda: signed_in_at + timedelta(days=6, hours=23)
        assert (await client.get("/", headers=cookie)).status_code == 200
        app.state.clock = lambda: signed_in_at + timedelta(days=7)
        assert (await client.get("/", headers=cookie)).status_code == 401

    async def test_a_new_admin_token_ends_every_session(self, tmp_path: Path) -> None:
        write_shop(tmp_path)
        async with running(tmp_path) as (_, client):
            cookie, _ = await sign_in(client)
        async with running(tmp_path, admin_token="a-new-token") as (_, client):
            assert (await client.get("/", headers=cookie)).status_code == 401
        async with running(tmp_path) as (_, client):  # and the old token back does not revive it
            assert (await client.get("/", headers=cookie)).status_code == 200

    async def test_a_script_with_the_token_sees_the_page_without_buttons(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        app, client, _ = shop
        assert (await post_stripe(client, stripe_failure("evt_status_script"))).status_code == 202
        await paged_incident(app)
        for headers in ({"Authorization": f"Bearer {TOKEN}"}, basic(TOKEN)):
            page = await client.get("/", headers=headers)
            assert page.status_code == 200 and "payment failures" in page.text
            assert "form_token" not in page.text and "<button" not in page.text


class TestButtons:
    async def test_the_owner_acks_then_resolves_from_the_page(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        app, client, _ = shop
        assert (await post_stripe(client, stripe_failure("evt_status_buttons"))).status_code == 202
        incident = await paged_incident(app)
        cookie, form_token = await sign_in(client)
        page = (await client.get("/", headers=cookie)).text
        assert f"name=incident value={incident.id}>" in page and "value=ack>Ack<" in page

        fields = {"form_token": form_token, "incident": str(incident.id)}
        acked = await press(client, cookie, fields | {"verb": "ack"}, SAME_SITE)
        assert acked.status_code == 200 and "acknowledged" in acked.text.lower()
        view = await app.state.service.incident(incident.id)
        assert view.state == "acknowledged"
        assert "the owner (status page)" in " ".join(e["actor"] for e in view.timeline)
        assert "value=ack>Ack<" not in acked.text  # already acknowledged: only Resolve is left

        referer_only = {"Referer": "http://oncall.test/"}  # a browser that sent no Origin
        resolved = await press(client, cookie, fields | {"verb": "resolve"}, referer_only)
        assert resolved.status_code == 200
        assert (await app.state.service.incident(incident.id)).state == "resolved"

    async def test_a_post_from_another_site_or_without_the_form_token_is_403_and_changes_nothing(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime], tmp_path: Path
    ) -> None:
        app, client, _ = shop
        assert (await post_stripe(client, stripe_failure("evt_status_csrf"))).status_code == 202
        incident = await paged_incident(app)
        cookie, form_token = await sign_in(client)
        _, other_token = await sign_in(client)  # another browser's session
        good = {"form_token": form_token, "incident": str(incident.id), "verb": "resolve"}
        forged: list[tuple[dict[str, str], dict[str, str]]] = [
            (good, {"Origin": "https://evil.example"}),
            (good, {"Origin": "null"}),  # a sandboxed frame or data: page
            (good, {"Referer": "https://evil.example/oncall.test/"}),
            (good, {"Origin": "http://oncall.test.evil.example"}),
            (good, {}),  # neither Origin nor Referer
            ({k: v for k, v in good.items() if k != "form_token"}, SAME_SITE),
            (good | {"form_token": "guessed"}, SAME_SITE),
            (good | {"form_token": other_token}, SAME_SITE),
            (good | {"form_token": form_token[:-1]}, SAME_SITE),
        ]
        for fields, headers in forged:
            r = await press(client, cookie, fields, headers)
            assert r.status_code == 403, (fields, headers, r.text)
            assert "nothing was done" in r.text
        # With the token in a header (which a browser may cache for Basic) the forms do not act.
        r = await press(client, basic(TOKEN), good, SAME_SITE)
        assert r.status_code == 403
        # SameSite=Strict: another site's form arrives without the cookie at all.
        r = await press(client, {}, good, SAME_SITE)
        assert r.status_code == 401
        assert (await app.state.service.incident(incident.id)).state == incident.state == "triggered"

    async def test_a_logout_from_another_site_is_403_and_the_session_stays(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        _, client, _ = shop
        cookie, form_token = await sign_in(client)
        r = await client.post(
            "/logout", data={"form_token": form_token}, headers=cookie | {"Origin": "https://evil.example"}
        )
        assert r.status_code == 403
        assert (await client.get("/", headers=cookie)).status_code == 200

    async def test_the_page_sends_its_own_origin_on_posts_and_cannot_be_framed(
        self, shop: tuple[FastAPI, httpx.AsyncClient, datetime]
    ) -> None:
        _, client, _ = shop
        for r in (await client.get("/"), await client.get("/", headers=basic(TOKEN))):
            # no-referrer would make browsers send `Origin: null` on the page's own forms
            assert r.headers["referrer-policy"] == "same-origin"
            assert r.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            assert "form-action 'self'" in r.headers["content-security-policy"]
