"""Each of the four ways of acknowledging stops the escalation and updates what was sent.

The weekend story: five payment failures from 23:10 on Saturday page Ana at 23:15 by Telegram
and Slack; without an ack, SMS at 23:25; then Luis and the owner at 23:35. Everything goes
through the real SDKs to local fakes of the Telegram, Slack and Twilio APIs, and every
inbound callback is signed as the platform signs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.paging_shop import PagingShop, open_shop
from tests.recording import PEOPLE, event, madrid

ANA = PEOPLE["ana"]


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[PagingShop]:
    async with open_shop(tmp_path) as s:
        yield s


async def paged_at_2315(shop: PagingShop) -> int:
    for minute in range(10, 15):
        await shop.receive(event(at=madrid(f"2026-11-28 23:{minute}"), customer=f"C{minute}"))
        await shop.at(f"2026-11-28 23:{minute}")
    await shop.at("2026-11-28 23:15")
    [page] = shop.telegram.sent()
    incident = int(
        json.loads(page.params["reply_markup"])["inline_keyboard"][0][0]["callback_data"].split(":")[1]
    )
    assert await shop.state(incident) == "triggered"
    return incident


def link_in(text: str) -> str:
    m = re.search(r"https://oncall\.example(/ack/[A-Za-z0-9_\-.]+)", text)
    assert m, text
    return m.group(1)


class TestAPageReachesAna:
    async def test_by_telegram_and_slack_with_buttons_and_an_ack_link(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        [tg] = shop.telegram.sent()
        assert tg.params["chat_id"] == str(ANA.telegram)
        assert "5 payment failures since 23:10" in tg.params["text"]
        buttons = json.loads(tg.params["reply_markup"])["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["Ack", "Resolve", "Snooze 30m"]
        assert [b["callback_data"] for b in buttons] == [
            f"ack:{incident}",
            f"resolve:{incident}",
            f"snooze:{incident}",
        ]
        assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
        link_in(tg.params["text"])

        [sl] = shop.slack.posted()
        # her DM, opened by conversations.open
        assert sl.params["channel"] == "D" + (ANA.slack or "").lstrip("U")
        actions = next(b for b in sl.params["blocks"] if b["type"] == "actions")["elements"]
        assert [a["action_id"] for a in actions] == [
            f"ack:{incident}",
            f"resolve:{incident}",
            f"snooze:{incident}",
        ]

    async def test_by_sms_at_2325_within_two_segments_with_codes_and_link(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        await shop.at("2026-11-28 23:25")
        [sms] = shop.twilio.sent()
        assert sms.params["To"] == ANA.phone and sms.params["From"] == "+15550001111"
        body = sms.params["Body"]
        assert f"Reply {incident}a to ack" in body
        link_in(body)
        from oncall.core.gsm7 import segments

        assert segments(body) <= 2
        assert sms.params["StatusCallback"] == "https://oncall.example/twilio/status"


class TestEachWayOfAcknowledgingStopsTheEscalation:
    async def assert_stopped(self, shop: PagingShop, incident: int, *, sms_sent: int) -> None:
        assert await shop.state(incident) == "acknowledged"
        await shop.at("2026-11-28 23:25")
        await shop.at("2026-11-28 23:35")
        await shop.at("2026-11-28 23:50")
        assert len(shop.twilio.sent()) == sms_sent  # no further page
        assert len(shop.telegram.sent()) == 1

    async def test_telegram_button(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        shop.now = madrid("2026-11-28 23:17")
        res = await shop.press(ANA.telegram or 0, f"ack:{incident}")
        assert res.status_code == 200
        [answer] = shop.telegram.called("answerCallbackQuery")
        assert answer.params["text"] == f"Incident {incident} acknowledged by Ana García at 23:17"
        # Both pages now say who acknowledged and when; the Telegram buttons are gone.
        [edit] = shop.telegram.called("editMessageText")
        assert edit.params["text"] == f"Incident {incident} acknowledged by Ana García at 23:17"
        assert "reply_markup" not in edit.params
        [update] = shop.slack.called("chat.update")
        assert update.params["text"] == f"Incident {incident} acknowledged by Ana García at 23:17"
        await self.assert_stopped(shop, incident, sms_sent=0)

    async def test_slack_button(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        shop.now = madrid("2026-11-28 23:18")
        res = await shop.slack_press(ANA.slack or "", f"ack:{incident}")
        assert res.status_code == 200
        [update] = shop.slack.called("chat.update")
        assert update.params["text"] == f"Incident {incident} acknowledged by Ana García at 23:18"
        assert len(shop.telegram.called("editMessageText")) == 1
        await self.assert_stopped(shop, incident, sms_sent=0)

    async def test_sms_reply(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        await shop.at("2026-11-28 23:25")
        shop.now = madrid("2026-11-28 23:27")
        res = await shop.sms_reply(ANA.phone or "", f"{incident}A")
        assert res.status_code == 200 and res.headers["content-type"].startswith("application/xml")
        assert f"Incident {incident} acknowledged by Ana Garc" in res.text
        assert len(shop.telegram.called("editMessageText")) == 1
        assert len(shop.slack.called("chat.update")) == 1
        # The TwiML answer is her confirmation: no second SMS saying the same.
        await self.assert_stopped(shop, incident, sms_sent=1)

    async def test_web_link(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        path = link_in(shop.telegram.sent()[0].params["text"])
        page = await shop.client.get(path)
        assert page.status_code == 200
        assert "Ack</button>" in page.text and "Snooze 30m</button>" in page.text
        assert await shop.state(incident) == "triggered"  # looking changes nothing
        shop.now = madrid("2026-11-28 23:19")
        done = await shop.client.post(path, data={"verb": "ack", "incident": str(incident)})
        assert done.status_code == 200
        assert f"Incident {incident} acknowledged by Ana Garc" in done.text
        await shop.service.drain()
        assert len(shop.telegram.called("editMessageText")) == 1
        assert len(shop.slack.called("chat.update")) == 1
        await self.assert_stopped(shop, incident, sms_sent=0)

    async def test_after_an_sms_page_the_ack_is_confirmed_once_to_each_number(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        await shop.at("2026-11-28 23:25")
        shop.now = madrid("2026-11-28 23:26")
        await shop.press(ANA.telegram or 0, f"ack:{incident}")
        bodies = shop.twilio.bodies(ANA.phone)
        assert len(bodies) == 2
        assert bodies[1] == f"Incident {incident} acknowledged by Ana Garcia at 23:26"


class TestUnknownPeopleChangeNothing:
    async def test_a_stranger_on_telegram_is_refused(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        await shop.press(999, f"ack:{incident}")
        [answer] = shop.telegram.called("answerCallbackQuery")
        # A stranger is nobody this shop knows: the refusal is in the shop's language (SPEC §5).
        assert answer.params["text"].startswith("No estás en el turno de guardia de esta tienda")
        assert await shop.state(incident) == "triggered"
        await shop.at("2026-11-28 23:25")
        assert len(shop.twilio.sent()) == 1  # the escalation goes on

    async def test_a_stranger_on_slack_is_refused(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        await shop.slack_press("USTRANGER", f"ack:{incident}")
        [eph] = shop.slack.called("chat.postEphemeral")
        assert eph.params["user"] == "USTRANGER"
        assert eph.params["text"].startswith("No estás en el turno de guardia")
        assert await shop.state(incident) == "triggered"

    async def test_a_stranger_by_sms_is_refused(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        res = await shop.sms_reply("+34911000000", f"{incident}a")
        assert "No estas en el turno de guardia de esta tienda" in res.text  # GSM-7: no "á"
        assert await shop.state(incident) == "triggered"

    async def test_a_forged_link_is_refused(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        path = link_in(shop.telegram.sent()[0].params["text"])
        forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        res = await shop.client.post(forged, data={"verb": "ack"})
        assert res.status_code == 401
        assert await shop.state(incident) == "triggered"


class TestProviderTrouble:
    async def test_a_telegram_outage_reaches_ana_by_sms_within_the_step(self, tmp_path: Path) -> None:
        from datetime import timedelta

        from oncall.core.models import Policy, Step, Target
        from tests.recording import shop_config

        policy = Policy(
            "weekend", (Step((Target("rota", "weekend"),), ("telegram",), timedelta(minutes=10)),)
        )
        async with open_shop(tmp_path, shop_config(policies={"weekend": policy})) as shop:
            shop.telegram.down = "500"
            for minute in range(10, 12):
                await shop.receive(event(at=madrid(f"2026-11-28 23:{minute}")))
                await shop.at(f"2026-11-28 23:{minute}")
            await shop.at("2026-11-28 23:15")
            assert len(shop.telegram.sent()) == 3  # tried three times
            await shop.at("2026-11-28 23:15")  # the scheduler wakes for the fail-over page
            [sms] = shop.twilio.sent()
            assert sms.params["To"] == ANA.phone
            incident = int(re.search(r"Reply (\d+)a", sms.params["Body"]).group(1))  # type: ignore[union-attr]
            notes = await shop.timeline(incident)
            assert "Ana García not reached by telegram: paging by slack, sms instead" in notes

    async def test_an_sms_reported_undelivered_goes_to_her_other_channels(self, shop: PagingShop) -> None:
        incident = await paged_at_2315(shop)
        await shop.at("2026-11-28 23:25")
        [sms] = shop.twilio.sent()
        res = await shop.sms_status(
            "SM" + f"{1:032x}", ANA.phone or "", "undelivered"
        )  # the fake's first SID
        assert res.status_code == 204
        await shop.at("2026-11-28 23:26")
        assert len(shop.telegram.sent()) == 2  # Telegram again, within the SMS step
        assert any("undelivered" in t or "not reached" in t for t in await shop.timeline(incident))
        assert sms.params["To"] == ANA.phone
