"""The status page in a real browser on a phone-sized screen: Debian's headless Chromium, driven
by Playwright, against a real `oncall serve`. The owner signs in, sees the 8-week chart, presses
Ack and then "Customer contacted" on Laura's incident, and the timeline says so; the screenshot
is kept under pytest's tmp_path (its path printed) and must not be blank.

Chromium comes from the Debian packages `chromium` and `chromium-driver` (`.ci/run` installs
them when missing). Under CI=true this test must run; elsewhere it skips when
/usr/bin/chromium is absent. Only plain `def` tests here: Playwright's sync API is entered and
left inside the test, never while an asyncio loop runs."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import ViewportSize, expect, sync_playwright

from tests.fakes.smtp import SmtpSink
from tests.live import Server
from tests.png import png_colours, png_size
from tests.shoptoml import night_shop
from tests.test_serve import SECRETS

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
TOKEN = "browser-admin-token"
MADRID = ZoneInfo("Europe/Madrid")
PHONE: ViewportSize = {"width": 400, "height": 800}

# The status page reads English here (Spanish: test_i18n).
RULES = night_shop("en")


def chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    reason = "Debian's chromium is not installed (apt-get install -y chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + ": .ci/run installs it; under CI=true the browser test must run")
    pytest.skip(reason)


def payment_failed() -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "id": "browser-1",
            "kind": "payment_failed",
            "summary": "Card declined",
            "customer": {"name": "Laura Pérez", "email": "laura@cliente.example", "language": "es"},
            "order": {"id": "1001", "number": "1001", "amount": 189.9, "currency": "EUR"},
        }
    ).encode()
    digest = hmac.new(SECRETS["ONCALL_GENERIC_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Oncall-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def timeline(base: str) -> list[str]:
    r = httpx.get(f"{base}/api/incidents/1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    return [e["what"] for e in r.json()["timeline"]] if r.status_code == 200 else []


def wait_for(base: str, line: str, within: float = 30.0) -> None:
    """Until the incident's timeline has a line starting with `line` (the scheduler and the
    reassurance run in the server, in their own time)."""
    deadline = time.monotonic() + within
    while not any(what.startswith(line) for what in timeline(base)):
        assert time.monotonic() < deadline, f"never on the timeline: {line!r}; it has {timeline(base)}"
        time.sleep(0.1)


def this_monday() -> str:
    """The label the chart gives the current week: its Monday, shop time ("30 Nov")."""
    today = datetime.now(MADRID).date()
    return f"{today - timedelta(days=today.weekday()):%d %b}".lstrip("0")


def test_the_owner_acks_and_marks_the_customer_contacted_from_a_phone(tmp_path: Path) -> None:
    chromium_or_skip()
    (tmp_path / "rotas").mkdir()
    (tmp_path / "rotas" / "people.toml").write_text('[person.ana]\nname = "Ana García"\ntelegram = 111\n')
    (tmp_path / "escalation_rules.toml").write_text(RULES)
    smtp = SmtpSink().start()
    env = {
        "ONCALL_ADMIN_TOKEN": TOKEN,
        "ONCALL_SMTP_HOST": "127.0.0.1",
        "ONCALL_SMTP_PORT": str(smtp.port),
        "ONCALL_SMTP_FROM": "Tienda Ejemplo <soporte@tienda.example>",
        "ONCALL_SMTP_STARTTLS": "false",
    }
    live = Server(tmp_path, env=SECRETS | env)
    base = live.url
    try:
        with live:
            body, headers = payment_failed()
            assert httpx.post(f"{base}/webhooks/generic", content=body, headers=headers).status_code == 202
            wait_for(base, "Customer reassured: e-mail to laura@cliente.example")

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                try:
                    context = browser.new_context(
                        viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True
                    )
                    page = context.new_page()
                    page.goto(f"{base}/")
                    page.get_by_label("Admin token").fill(TOKEN)
                    page.get_by_role("button", name="Sign in").click()
                    expect(page.get_by_role("heading", name="Tienda Ejemplo: on call")).to_be_visible()

                    chart = page.locator("svg.chart")
                    expect(chart).to_be_visible()
                    box = chart.bounding_box()
                    assert box is not None and 300 <= box["width"] <= PHONE["width"], box
                    for title in (
                        "Incidents per week",
                        "Median time to acknowledge (minutes)",
                        "Promises kept and broken",
                    ):
                        expect(chart.locator("text", has_text=title)).to_have_count(1)
                    expect(chart.locator("text", has_text=this_monday())).to_have_count(3)
                    expect(chart.locator("rect.bar.incidents")).to_have_count(1)  # this week's incident
                    # Nothing wider than the phone: no sideways scrolling to read it.
                    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

                    card = page.locator("section.card", has_text="#1 ")
                    expect(card.get_by_role("button", name="Customer contacted")).to_have_count(0)
                    card.get_by_role("button", name="Ack").click()
                    expect(
                        page.get_by_text("acknowledged by the owner (status page) via status")
                    ).to_be_visible()

                    page.locator("section.card", has_text="#1 ").get_by_role(
                        "button", name="Customer contacted"
                    ).click()
                    kept = "Promise to Laura Pérez kept: customer contacted by the owner (status page)"
                    expect(page.get_by_text(kept)).to_be_visible()
                    expect(
                        page.get_by_text("Incident 1: Laura Pérez contacted, promise kept")
                    ).to_be_visible()

                    shot = tmp_path / "status-phone.png"
                    page.screenshot(path=str(shot), full_page=True)
                    print(f"screenshot: {shot}")
                    context.close()
                finally:
                    browser.close()
            data = shot.read_bytes()
            assert png_size(data)[0] == PHONE["width"]
            assert len(png_colours(data)) > 8, "the screenshot is blank"
            assert any(line.startswith(kept) for line in timeline(base))
    finally:
        smtp.stop()
