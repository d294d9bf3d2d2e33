"""Slack: signed interactivity and slash commands, checked with the SDK's verifier."""

from __future__ import annotations

import json
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
        assert res.json()["text"].startswith("No estás en el turno de guardia")  # the shop's language


async def test_a_button_whose_answer_cannot_be_sent_still_acts_without_an_error(tmp_path: Path) -> None:
    async with open_shop(tmp_path, slack_bot_token=None) as shop:  # the bot token was removed
        incident = await paged(shop)
        stranger = await shop.slack_press("USTRANGER", f"resolve:{incident}")  # refusal: not sent
        assert stranger.status_code == 200 and await shop.state(incident) == "triggered"
        await shop.slack_press(ANA.slack or "", f"ack:{incident}")
        late = await shop.slack_press(ANA.slack or "", f"ack:{incident}")  # "already": not sent
        assert late.status_code == 200 and await shop.state(incident) == "acknowledged"


class TestHostileRequests:
    @pytest.mark.parametrize("path", ["/slack/actions", "/slack/commands"])
    async def test_a_timestamp_that_is_not_a_number_or_missing_is_401_without_a_traceback(
        self, shop: PagingShop, path: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        incident = await paged(shop)
        body = urlencode({"command": "/ack", "text": str(incident), "user_id": ANA.slack})
        signed = shop.slack_headers(body)
        for timestamp in (b"abc", b"1e9", b"12.5", b"-1", b" ", b"\xb2", b"1" * 5000, None):
            headers = [
                (k.encode(), v.encode()) for k, v in signed.items() if k != "X-Slack-Request-Timestamp"
            ]
            if timestamp is not None:
                headers.append((b"X-Slack-Request-Timestamp", timestamp))
            res = await shop.client.post(path, content=body, headers=headers)
            assert res.status_code == 401, (timestamp, res.text)
            assert list(res.json()) == ["error"]
        assert [r.getMessage() for r in caplog.records if r.exc_info] == []
        assert await shop.state(incident) == "triggered"

    async def test_a_signature_that_is_not_ascii_is_401(self, shop: PagingShop) -> None:
        body = urlencode({"command": "/oncall", "user_id": ANA.slack})
        headers = [(k.encode(), v.encode()) for k, v in shop.slack_headers(body).items()]
        headers = [(k, b"v0=\xe9" if k == b"X-Slack-Signature" else v) for k, v in headers]
        res = await shop.client.post("/slack/commands", content=body, headers=headers)
        assert res.status_code == 401

    async def test_a_button_press_replayed_within_five_minutes_acts_once(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        payload = {
            "type": "block_actions",
            "user": {"id": ANA.slack},
            "container": {"channel_id": "DANA"},
            "actions": [{"action_id": f"snooze:{incident}", "value": str(incident)}],
        }
        body = urlencode({"payload": json.dumps(payload)})
        headers = shop.slack_headers(body)  # one delivery, captured and sent three times
        for _ in range(3):
            res = await shop.client.post("/slack/actions", content=body, headers=headers)
            await shop.service.drain()
            assert res.status_code == 200 and res.content == b""
        snoozes = [t for t in await shop.timeline(incident) if "snooze" in t.lower()]
        assert len(snoozes) == 1, snoozes
        # A new press (new timestamp, so a new signature) is a new delivery and acts.
        await shop.slack_press(ANA.slack or "", f"resolve:{incident}", timestamp=int(time.time()) - 1)
        assert await shop.state(incident) == "resolved"

    async def test_a_slash_command_replayed_answers_already_handled_and_acts_once(
        self, shop: PagingShop
    ) -> None:
        incident = await paged(shop)
        body = urlencode({"command": "/ack", "text": str(incident), "user_id": ANA.slack})
        headers = shop.slack_headers(body)
        first = await shop.client.post("/slack/commands", content=body, headers=headers)
        assert "acknowledged" in first.json()["text"].lower()
        again = await shop.client.post("/slack/commands", content=body, headers=headers)
        assert again.status_code == 200 and again.json()["text"] == "This request was already handled."
        acks = [t for t in await shop.timeline(incident) if "acknowledged" in t.lower()]
        assert len(acks) == 1, acks

    async def test_a_payload_of_another_shape_is_400(self, shop: PagingShop) -> None:
        for payload in (
            "[]",
            '"x"',
            '{"user": "U1", "actions": [1]}',
            '{"user": {"id": 5}, "actions": [{}]}',
        ):
            body = urlencode({"payload": payload})
            res = await shop.client.post("/slack/actions", content=body, headers=shop.slack_headers(body))
            assert res.status_code == 400, payload
