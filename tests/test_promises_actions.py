""" "Customer contacted" everywhere an ack is (SPEC §2.1, §4): the Slack button after the ack,
SMS `1c`, the ack page, `POST /api/incidents/{id}/contacted`, the status page and `oncall
contacted ID` — each keeps the promise Laura's reassurance made, on the real app and SDKs."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from oncall.cli import main
from oncall.clock import system_clock
from oncall.config import load_config
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store.database import open_database
from tests.fakes.paging_shop import PagingShop, open_shop
from tests.fakes.smtp import SmtpSink
from tests.test_promises_service import (
    config,
    laura_fails,
    mail_settings,
    paged_and_told,
    promises,
    reassurer,
)

TOKEN = "promises-admin-token"
SAME_SITE = {"Origin": "http://testserver"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def shop(tmp_path: Path, smtp: SmtpSink) -> AsyncIterator[PagingShop]:
    async with open_shop(
        tmp_path, config(), reassurer=reassurer(smtp), admin_token=TOKEN, **mail_settings(smtp)
    ) as s:
        await paged_and_told(s)
        yield s


def slack_edits(shop: PagingShop) -> list[tuple[str, list[dict[str, Any]]]]:
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for c in shop.slack.called("chat.update"):
        blocks = c.params.get("blocks")
        out.append((str(c.params["text"]), json.loads(blocks) if isinstance(blocks, str) else blocks or []))
    return out


def ack_link(shop: PagingShop) -> str:
    page = str(shop.telegram.sent()[0].params["text"])
    found = re.search(r"https://oncall\.example(/ack/\S+)", page)
    assert found is not None, page
    return found.group(1)


async def test_slack_offers_the_button_after_the_ack_and_pressing_it_keeps_the_promise(
    shop: PagingShop,
) -> None:
    await shop.slack_press("UANA", "ack:1")
    text, blocks = slack_edits(shop)[-1]
    assert text.startswith("Incident 1 acknowledged by Ana García")
    [button] = blocks[-1]["elements"]
    assert (button["action_id"], button["text"]["text"]) == ("contacted:1", "Customer contacted")

    await shop.slack_press("UANA", "contacted:1")
    assert await promises(shop) == ["kept"]
    text, blocks = slack_edits(shop)[-1]
    assert text.endswith("customer contacted by Ana García at 23:15") and len(blocks) == 1


async def test_an_sms_ack_says_how_to_mark_the_contact_and_1c_does(shop: PagingShop) -> None:
    acked = await shop.sms_reply("+34600111222", "1a")
    assert (
        "Incident 1 acknowledged by Ana Garcia at 23:15 Reply 1c once the customer is contacted."  # GSM-7
        in acked.text
    )
    contacted = await shop.sms_reply("+34600111222", "1C")
    assert "Incident 1: Laura Pérez contacted, promise kept" in contacted.text
    assert await promises(shop) == ["kept"]
    again = await shop.sms_reply("+34600111222", "1c")
    assert "Incident 1 has no customer waiting for contact" in again.text


async def test_the_ack_page_shows_the_button_once_acknowledged_and_it_keeps_the_promise(
    shop: PagingShop,
) -> None:
    link = ack_link(shop)
    assert "Customer contacted" not in (await shop.client.get(link)).text  # not acknowledged yet
    await shop.client.post(link, data={"verb": "ack", "incident": "1"})
    page = await shop.client.get(link)
    assert "<button class=contacted name=verb value=contacted>Customer contacted</button>" in page.text
    done = await shop.client.post(link, data={"verb": "contacted", "incident": "1"})
    assert "Incident 1: Laura Pérez contacted, promise kept" in done.text
    assert "Customer contacted" not in done.text  # nobody waits any more
    assert await promises(shop) == ["kept"]


async def test_the_api_marks_the_contact_once(shop: PagingShop) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    r = await shop.client.post("/api/incidents/1/contacted", headers=bearer)
    assert r.status_code == 200 and r.json()["text"] == "Incident 1: Laura Pérez contacted, promise kept"
    kept = (
        "Promise to Laura Pérez kept: customer contacted by the owner (API) via api, 0 min after the message"
    )
    assert r.json()["incident"]["timeline"][-1]["what"] == kept
    # Still triggered: Ana's page keeps its Ack / Resolve / Snooze buttons, no edit.
    assert r.json()["incident"]["state"] == "triggered" and shop.telegram.called("editMessageText") == []
    again = await shop.client.post("/api/incidents/1/contacted", headers=bearer)
    assert (
        again.status_code == 409 and again.json()["text"] == "Incident 1 has no customer waiting for contact"
    )
    assert (await shop.client.post("/api/incidents/9/contacted", headers=bearer)).status_code == 404
    assert (await shop.client.post("/api/incidents/1/contacted")).status_code == 401


async def test_the_status_page_button_is_guarded_like_ack(shop: PagingShop) -> None:
    r = await shop.client.post("/login", data={"token": TOKEN}, headers=SAME_SITE)
    cookie = {"Cookie": r.headers["set-cookie"].split(";", 1)[0]}
    shop.client.cookies.clear()
    page = await shop.client.get("/", headers=cookie)
    found = re.search(r"name=form_token value=([A-Za-z0-9_-]+)", page.text)
    assert found is not None
    fields = {"form_token": found.group(1), "incident": "1", "verb": "contacted"}
    # The status page is in the shop's language (Spanish), its answers too.
    assert "value=contacted>Cliente contactado</button>" not in page.text  # until acknowledged
    await shop.client.post("/", data=fields | {"verb": "ack"}, headers=cookie | SAME_SITE)
    page = await shop.client.get("/", headers=cookie)
    assert "value=contacted>Cliente contactado</button>" in page.text
    refused = await shop.client.post("/", data=fields, headers=cookie | {"Origin": "https://evil.example"})
    assert refused.status_code == 403 and await promises(shop) == ["open"]
    done = await shop.client.post("/", data=fields, headers=cookie | SAME_SITE)
    assert "Incidente 1: Laura Pérez contactado, promesa cumplida" in done.text
    assert (
        "Promise to Laura Pérez kept: customer contacted by the owner (status page) via status" in done.text
    )


SHOP_RULES = """
[shop]
name = "Tienda Ejemplo"
timezone = "Europe/Madrid"
language = "es"
fallback = "person:ana"

[business_hours]                     # never open: every event is after hours

[[policy]]
name = "night"
  [[policy.step]]
  notify = ["person:ana"]
  via = ["telegram"]
  ack_within = "10m"

[[rule]]
name = "payment failures"
match = { kind = ["payment_failed"] }
hold = "0s"
policy = "night"
reassure = "payment_failed"

[message.payment_failed]
es = "Hola {customer_name}, te escribimos en menos de {response_time}."
"""


def test_oncall_contacted_from_the_terminal(
    tmp_path: Path, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The terminal acts at the real now: the failure happened ten minutes before it.
    (tmp_path / "rotas").mkdir()
    (tmp_path / "rotas" / "people.toml").write_text('[person.ana]\nname = "Ana García"\ntelegram = 111\n')
    (tmp_path / "escalation_rules.toml").write_text(SHOP_RULES)
    url = f"sqlite:///{tmp_path / 'oncall.db'}"
    for name, value in {
        "ONCALL_DATABASE_URL": url,
        "ONCALL_RULES_FILE": str(tmp_path / "escalation_rules.toml"),
        "ONCALL_ROTAS_DIR": str(tmp_path / "rotas"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    shop_config = load_config(tmp_path / "escalation_rules.toml", tmp_path / "rotas")
    failed_at = system_clock() - timedelta(minutes=10)

    async def seed() -> None:
        db = open_database(url)
        await asyncio.to_thread(db.migrate)
        settings = Settings.model_validate(mail_settings(smtp))
        service = Service(
            db, lambda: shop_config, {}, settings, reassurer(smtp)(db, settings), bundle_window=0
        )
        await db.store_event(laura_fails(failed_at), b"{}")
        await Scheduler(service, clock=lambda: failed_at).run_once()
        await service.drain(10)
        await service.aclose()
        await db.aclose()

    asyncio.run(seed())
    assert len(smtp.received) == 1  # Laura was told: a promise for two hours
    assert main(["contacted", "1"]) == 0
    assert capsys.readouterr().out.strip() == "Incident 1: Laura Pérez contacted, promise kept"
    assert main(["contacted", "1"]) == 1
    assert capsys.readouterr().err.strip() == "error: incident 1 has no customer waiting for contact"
