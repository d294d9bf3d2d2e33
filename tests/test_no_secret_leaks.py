"""The weekend story with every channel on, logged at DEBUG by a real `oncall serve`: no
configured secret (each value, each part of a rotation list), no ack-link token and not the
ack-link key appears in its log, in an error body, in /metrics, /readyz or the status page, nor
in what `oncall trigger`, `oncall test-page` and `oncall telegram setup` print (SPEC §3).

Telegram, Slack, Twilio, Zendesk and Freshdesk are the local fakes, e-mail a local SMTP server
that requires a password; the official SDKs talk to them over HTTP. The server runs on the real
clock, so its rules have no business hours at all: whatever the date, the shop is closed.
Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from oncall.sources import generic
from tests.fakes.helpdesk import FakeFreshdesk, FakeZendesk
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import SmtpSink
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.live import Server
from tests.shoptoml import always, message, policy, rule, rules, shop, step, weekend_failures

pytestmark = pytest.mark.slow

ANA_TELEGRAM, ANA_SLACK, ANA_PHONE = 111222333, "U0ANA12345", "+34600111222"
TWILIO_SID = "AC" + "7" * 32
SMTP_USER = "mailer@tienda.example"

# Every secret setting, with values no other string of the story contains.
SECRETS = {
    "ONCALL_ADMIN_TOKEN": "adm-9f8e7d6c5b4a",
    "ONCALL_TELEGRAM_BOT_TOKEN": "7000000001:AAHsecretBotTokenXYZ0123456789abcd",
    "ONCALL_TELEGRAM_WEBHOOK_SECRET": "tg-hook-secret-5e4d",
    "ONCALL_SLACK_BOT_TOKEN": "xoxb-1111-2222-slackbotsecret",
    "ONCALL_SLACK_SIGNING_SECRET": "slack-signing-3c2b1a",
    "ONCALL_TWILIO_AUTH_TOKEN": "twilio-auth-8a7b6c",
    "ONCALL_SMTP_PASSWORD": "smtp-pass-4d5e6f",
    "ONCALL_ZENDESK_API_TOKEN": "zd-api-token-1q2w3e",
    "ONCALL_FRESHDESK_API_KEY": "fd-api-key-9o8i7u",
    "ONCALL_STRIPE_SECRET": "whsec_rotated_old_a1b2,whsec_current_new_c3d4",
    "ONCALL_SHOPIFY_SECRET": "shpss_shopify_e5f6",
    "ONCALL_WOOCOMMERCE_SECRET": "wc-woo-secret-g7h8",
    "ONCALL_ZENDESK_SECRET": "zd-hook-secret-i9j0",
    "ONCALL_FRESHDESK_TOKEN": "fd-hook-token-k1l2",
    "ONCALL_GENERIC_SECRET": "gen-old-m3n4, gen-new-o5p6",
}
PARTS = sorted({p.strip() for v in SECRETS.values() for p in [v, *v.split(",")]})


def urgent_tickets(platform: str, reassure: str) -> str:
    match = {
        "kind": ["ticket_created"],
        "source": [platform.lower()],
        "hours": "closed",
        "priority": ["urgent"],
    }
    return rule(
        f"urgent {platform} tickets", match, "weekend", group_by=["ticket"], hold="0s", reassure=reassure
    )


RULES = rules(
    shop("person:ana"),
    policy("weekend", step("rota:weekend", ["telegram", "slack", "sms"])),
    weekend_failures(reassure="payment_failed"),
    urgent_tickets("Zendesk", "ticket"),
    urgent_tickets("Freshdesk", "ticket_fd"),
    message(
        "payment_failed", "Hola {customer_name}, el pago de tu pedido {order_number} no se ha completado."
    ),
    message("ticket", "Hola {customer_name}, hemos recibido tu consulta urgente ({ticket_id})."),
    message(
        "ticket_fd", "Hola {customer_name}, hemos recibido tu consulta urgente en Freshdesk ({ticket_id})."
    ),
)

ROTAS = {
    "people": f"""
[person.ana]
name = "Ana García"
phone = "{ANA_PHONE}"
telegram = {ANA_TELEGRAM}
slack = "{ANA_SLACK}"
""",
    "weekend": always("ana"),
}


@dataclass
class Story:
    tmp: Path
    server: Server  # not started: the story starts it once the terminal has had its turn
    telegram: FakeTelegram
    slack: FakeSlack
    twilio: FakeTwilio
    smtp: SmtpSink
    zendesk: FakeZendesk
    freshdesk: FakeFreshdesk
    seen: list[str] = field(default_factory=list)  # everything the outside was shown

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def log(self) -> Path:
        return self.server.log

    @property
    def env(self) -> dict[str, str]:
        return self.server.environment()

    def oncall(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "oncall.cli", *args],
            env=self.env, cwd=self.tmp, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        self.seen += [done.stdout, done.stderr]
        return done

    def get(self, path: str, **kw: Any) -> httpx.Response:
        r = httpx.get(self.url + path, timeout=10, **kw)
        self.seen.append(r.text)
        return r

    def post(self, path: str, **kw: Any) -> httpx.Response:
        r = httpx.post(self.url + path, timeout=10, **kw)
        self.seen.append(r.text)
        return r

    def incidents(self) -> list[dict[str, Any]]:
        r = self.get("/api/incidents", headers={"Authorization": f"Bearer {SECRETS['ONCALL_ADMIN_TOKEN']}"})
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def slack_signed(self, body: str, secret: str = SECRETS["ONCALL_SLACK_SIGNING_SECRET"]) -> dict[str, str]:
        ts = str(int(time.time()))
        sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded",
        }

    def twilio_signed(self, path: str, params: dict[str, str], token: str) -> dict[str, str]:
        return {"X-Twilio-Signature": RequestValidator(token).compute_signature(self.url + path, params)}


def wait_for(what: str, predicate: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    telegram, slack, twilio = FakeTelegram().start(), FakeSlack().start(), FakeTwilio().start()
    smtp = SmtpSink(users={SMTP_USER: SECRETS["ONCALL_SMTP_PASSWORD"]}).start()
    zendesk = FakeZendesk("soporte@tienda.example", SECRETS["ONCALL_ZENDESK_API_TOKEN"]).start()
    freshdesk = FakeFreshdesk(SECRETS["ONCALL_FRESHDESK_API_KEY"]).start()
    (tmp_path / "rotas").mkdir()
    (tmp_path / "escalation_rules.toml").write_text(RULES, encoding="utf-8")
    for name, text in ROTAS.items():
        (tmp_path / "rotas" / f"{name}.toml").write_text(text, encoding="utf-8")
    # The store, the files and the public URL are the Server's; ONCALL_* from outside are not passed.
    env = SECRETS | {
        "ONCALL_LOG_LEVEL": "DEBUG",
        "ONCALL_TELEGRAM_API_URL": telegram.api_url,
        "ONCALL_SLACK_API_URL": slack.api_url,
        "ONCALL_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "ONCALL_TWILIO_FROM": "+15550001111",
        "ONCALL_TWILIO_API_URL": twilio.api_url,
        "ONCALL_SMTP_HOST": "127.0.0.1",
        "ONCALL_SMTP_PORT": str(smtp.port),
        "ONCALL_SMTP_USERNAME": SMTP_USER,
        "ONCALL_SMTP_FROM": "Tienda Ejemplo <hola@tienda.example>",
        "ONCALL_SMTP_STARTTLS": "false",
        "ONCALL_ZENDESK_URL": zendesk.url,
        "ONCALL_ZENDESK_EMAIL": "soporte@tienda.example",
        "ONCALL_FRESHDESK_URL": freshdesk.url,
    }  # fmt: skip
    s = Story(tmp_path, Server(tmp_path, env=env), telegram, slack, twilio, smtp, zendesk, freshdesk)
    try:
        yield s
    finally:
        s.server.stop()
        for fake in (telegram, slack, twilio, zendesk, freshdesk):
            fake.stop()
        smtp.stop()


def by_kind(s: Story) -> dict[str, dict[str, Any]]:
    return {f"{i['kind']}:{i['rule']}": i for i in s.incidents()}


def test_the_weekend_story_with_every_channel_on_leaks_no_secret(story: Story) -> None:
    s = story
    for person_check in (s.oncall("test-page", "ana"), s.oncall("telegram", "setup")):
        assert person_check.returncode == 0, person_check.stderr
    s.server.start(ready="/readyz")  # graceful SIGTERM at the end: its shutdown lines count too
    try:
        # A payment failure and two urgent tickets, outside business hours: paged and reassured.
        for source, kind in (
            ("stripe", "payment_failed"),
            ("zendesk", "ticket_created"),
            ("freshdesk", "ticket_created"),
        ):
            done = s.oncall("trigger", source, kind)
            assert done.returncode == 0 and "-> 202" in done.stdout, done.stdout + done.stderr
        body = json.dumps({"id": "gen-1", "kind": "checkout_error", "summary": "checkout 500"}).encode()
        signed = generic.sign(body, b"gen-new-o5p6", datetime.now(UTC))  # the rotation's new part
        assert s.post("/webhooks/generic", content=body, headers=signed).status_code == 202

        wait_for(
            "three incidents paged", lambda: len([i for i in s.incidents() if i["state"] == "triggered"]) == 3
        )
        wait_for("the customers reassured", lambda: len(s.smtp.received) == 1
                 and len(s.zendesk.replies()) == 1 and len(s.freshdesk.replies()) == 1)  # fmt: skip
        incidents = by_kind(s)
        payment = incidents["payment_failed:payment failures while closed"]["id"]
        zd = incidents["ticket_created:urgent Zendesk tickets"]["id"]
        fd = incidents["ticket_created:urgent Freshdesk tickets"]["id"]
        # Each channel: the test page, then the pages (those due together come as one bundle).
        wait_for("pages on every channel", lambda: min(len(s.telegram.sent()), len(s.slack.posted()),
                 len(s.twilio.sent())) >= 2)  # fmt: skip

        # Ana acknowledges one by Telegram, one by Slack, one by SMS.
        chat, message_id = max(k for k in s.telegram.texts if k[0] == ANA_TELEGRAM)  # her newest page
        update = {
            "update_id": 5001,
            "callback_query": {
                "id": "cb1", "from": {"id": ANA_TELEGRAM, "is_bot": False, "first_name": "Ana"},
                "chat_instance": "1", "data": f"ack:{payment}",
                "message": {"message_id": message_id, "date": 0, "chat": {"id": chat, "type": "private"}},
            },
        }  # fmt: skip
        tg_secret = {"X-Telegram-Bot-Api-Secret-Token": SECRETS["ONCALL_TELEGRAM_WEBHOOK_SECRET"]}
        assert s.post("/telegram/webhook", json=update, headers=tg_secret).status_code == 200
        action = {
            "type": "block_actions", "user": {"id": ANA_SLACK},
            "container": {"type": "message", "channel_id": "D0ANA12345", "message_ts": "1.0"},
            "channel": {"id": "D0ANA12345"},
            "actions": [{"action_id": f"ack:{zd}", "value": str(zd), "type": "button"}],
        }  # fmt: skip
        form = urlencode({"payload": json.dumps(action)})
        assert s.post("/slack/actions", content=form, headers=s.slack_signed(form)).status_code == 200
        sms = {"MessageSid": "SMin1", "AccountSid": TWILIO_SID, "From": ANA_PHONE, "To": "+15550001111",
               "Body": f"{fd}a", "NumMedia": "0"}  # fmt: skip
        token = SECRETS["ONCALL_TWILIO_AUTH_TOKEN"]
        assert (
            s.post("/twilio/sms", data=sms, headers=s.twilio_signed("/twilio/sms", sms, token)).status_code
            == 200
        )
        wait_for(
            "every incident acknowledged", lambda: [i["state"] for i in s.incidents()] == ["acknowledged"] * 3
        )

        # The ack link of a page, opened from the phone.
        links = set(re.findall(r"/ack/([A-Za-z0-9_.=-]+)", " ".join(str(c.params) for c in s.twilio.sent())))
        assert links
        for link in links:
            assert s.get(f"/ack/{link}").status_code == 200

        # What the outside sees: refusals, health, metrics and the status page.
        refused = [
            s.post("/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"}),
            s.post(
                "/webhooks/generic", content=body, headers=generic.sign(body, b"wrong", datetime.now(UTC))
            ),
            s.post("/webhooks/freshdesk", content=b"{}", headers={"Authorization": "Bearer fd-hook-token"}),
            s.post("/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}),
            s.post("/slack/actions", content=form, headers=s.slack_signed(form, "not-the-secret")),
            s.post("/twilio/sms", data=sms, headers=s.twilio_signed("/twilio/sms", sms, "not-the-token")),
            s.get("/api/incidents", headers={"Authorization": "Bearer adm-9f8e7d6c5b4"}),
            s.get("/", headers={"Authorization": "Bearer wrong"}),
            s.get("/ack/MX5vd25lcn50cG1hNzE.kAS7kpb_1h8Da5s_ZiPM5Q"),
        ]
        assert [r.status_code for r in refused] == [401] * len(refused)
        assert s.get("/readyz").status_code == 200
        assert "oncall_" in s.get("/metrics").text
        page = s.get("/", headers={"Authorization": f"Bearer {SECRETS['ONCALL_ADMIN_TOKEN']}"})
        assert page.status_code == 200 and "Ana García" in page.text
    finally:
        s.server.stop()
    log = s.log.read_text()
    assert "DEBUG" in log and "HTTP Request: POST" in log and "/bot7000000001:***/sendMessage" in log
    with sqlite3.connect(s.tmp / "oncall.db") as db:
        [(ack_key,)] = db.execute("SELECT value FROM paging_secrets WHERE name = 'ack_key'").fetchall()
    # The ack links' tokens are shown to their holder (the ack page), never written to the log.
    for where, text, credentials in (
        ("the server's log", log, (*PARTS, *links, str(ack_key))),
        ("what the outside was shown", "\n".join(s.seen), (*PARTS, str(ack_key))),
    ):
        leaked = [c for c in credentials if c in text]
        assert not leaked, f"{where} holds {leaked}"
