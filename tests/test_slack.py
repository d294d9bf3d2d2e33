"""Slack: signed interactivity and slash commands, checked with the SDK's verifier."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.fakes.paging_shop import PagingShop, open_shop, paged
from tests.recording import PEOPLE, madrid

ANA = PEOPLE["ana"]


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[PagingShop]:
    async with open_shop(tmp_path) as s:
        yield s


class TestSignatures:
    async def test_a_signature_with_the_wrong_secret_is_401_and_changes_nothing(
        self, shop: PagingShop
    ) -> None:
        incident = await paged(shop)
        body = urlencode({"payload": '{"type":"block_actions"}'})
        headers = shop.slack_headers(body, secret="not-the-secret")
        res = await shop.client.post("/slack/actions", content=body, headers=headers)
        assert res.status_code == 401
        assert await shop.state(incident) == "triggered"

    async def test_a_request_older_than_five_minutes_is_401(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        res = await shop.slack_press(ANA.slack or "", f"ack:{incident}", timestamp=int(time.time()) - 301)
        assert res.status_code == 401
        assert await shop.state(incident) == "triggered"

    async def test_within_five_minutes_is_accepted(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        res = await shop.slack_press(ANA.slack or "", f"ack:{incident}", timestamp=int(time.time()) - 240)
        assert res.status_code == 200
        assert await shop.state(incident) == "acknowledged"

    async def test_the_slash_command_is_signed_too(self, shop: PagingShop) -> None:
        body = urlencode({"command": "/oncall", "user_id": ANA.slack})
        res = await shop.client.post("/slack/commands", content=body, headers={"X-Slack-Signature": "v0=00"})
        assert res.status_code == 401


class TestButtons:
    async def test_the_answer_is_immediate_and_empty_and_the_page_is_edited(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        shop.now = madrid("2026-11-28 23:21")
        res = await shop.slack_press(ANA.slack or "", f"resolve:{incident}")
        assert res.status_code == 200 and res.content == b""
        [update] = shop.slack.called("chat.update")
        [page] = shop.slack.posted()
        assert update.params["channel"] == page.params["channel"]
        assert shop.slack.texts[(page.params["channel"], update.params["ts"])] == update.params["text"]
        assert update.params["text"] == f"Incident {incident} resolved by Ana García at 23:21"
        assert not any(b["type"] == "actions" for b in update.params["blocks"])  # buttons gone
        assert await shop.state(incident) == "resolved"

    async def test_acting_on_a_resolved_incident_tells_only_the_presser(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        await shop.slack_press(ANA.slack or "", f"resolve:{incident}")
        await shop.slack_press(ANA.slack or "", f"ack:{incident}")
        [eph] = shop.slack.called("chat.postEphemeral")
        assert eph.params["user"] == ANA.slack
        assert "already resolved" in eph.params["text"]


class TestSlashCommand:
    async def test_oncall_answers_who_until_when_and_who_is_next(self, shop: PagingShop) -> None:
        shop.now = madrid("2026-11-28 23:20")
        res = await shop.slack_command(ANA.slack or "")
        assert res.status_code == 200
        body = res.json()
        assert body["response_type"] == "ephemeral"
        assert "weekend: Ana García until Mon 30 Nov 09:00; next Luis" in body["text"]

    async def test_a_stranger_is_refused(self, shop: PagingShop) -> None:
        res = await shop.slack_command("USTRANGER")
        assert "not on this shop's rota" in res.json()["text"]


async def test_a_button_whose_answer_cannot_be_sent_still_acts_without_an_error(tmp_path: Path) -> None:
    async with open_shop(tmp_path, slack_bot_token=None) as shop:  # the bot token was removed
        incident = await paged(shop)
        stranger = await shop.slack_press("USTRANGER", f"resolve:{incident}")  # refusal: not sent
        assert stranger.status_code == 200 and await shop.state(incident) == "triggered"
        await shop.slack_press(ANA.slack or "", f"ack:{incident}")
        late = await shop.slack_press(ANA.slack or "", f"ack:{incident}")  # "already": not sent
        assert late.status_code == 200 and await shop.state(incident) == "acknowledged"
