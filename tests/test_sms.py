"""SMS and WhatsApp through Twilio: the page text, the reply codes, and the signed webhooks."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.channels.base import PageMessage
from oncall.channels.delivery import WINDOW
from oncall.channels.sms import SmsChannel, fit, page_sms, parse_reply
from oncall.core.gsm7 import segments, septets, to_gsm7
from oncall.core.models import Ticket
from oncall.scheduler import Scheduler
from tests.fakes.paging_shop import PagingShop, open_shop
from tests.fakes.twilio import FakeTwilio
from tests.recording import PEOPLE, event, madrid

ANA = PEOPLE["ana"]


class TestReplies:
    @pytest.mark.parametrize(
        ("text", "parsed"),
        [
            ("1a", ("ack", 1)), ("1A", ("ack", 1)), ("1 a", ("ack", 1)), ("a 1", ("ack", 1)),
            ("A1", ("ack", 1)), ("12r", ("resolve", 12)), ("r 12", ("resolve", 12)),
            ("Resolve 12", ("resolve", 12)), ("3s", ("snooze", 3)), ("snooze", ("snooze", None)),
            (" ack. ", ("ack", None)), ("ACK", ("ack", None)),
            ("#4 a", ("ack", 4)), ("hello", None), ("1x", None), ("", None), ("ok thanks", None),
        ],
    )  # fmt: skip
    def test_codes_are_read_case_insensitively(
        self, text: str, parsed: tuple[str, int | None] | None
    ) -> None:
        assert parse_reply(text) == parsed


class TestGsm7:
    def test_accents_outside_gsm7_are_replaced_so_the_sms_stays_gsm7(self) -> None:
        assert to_gsm7("García: pago “fallido” — 189,90 €") == 'Garcia: pago "fallido" - 189,90 €'

    def test_segments(self) -> None:
        assert segments("a" * 160) == 1
        assert segments("a" * 161) == 2
        assert segments("a" * 306) == 2
        assert segments("€" * 80) == 1  # two septets each
        assert segments("€" * 81) == 2

    @settings(max_examples=60, deadline=None)
    @given(
        text=st.text(max_size=600) | st.just("Reply to the customer"),
        incident=st.integers(min_value=1, max_value=10**6),
    )
    def test_a_page_always_fits_two_segments_and_keeps_its_codes_and_link(
        self, text: str, incident: int
    ) -> None:
        link = "https://oncall.example/ack/MywxfmFuYX5zOHp5eXk.AAAAAAAAAAAAAAAAAAAAAA"
        message = PageMessage("k", ANA, "sms", (incident,), text, text, text, link)
        sms = page_sms(message)
        assert segments(sms) <= 2
        assert sms.endswith(link)
        assert f"Reply {incident}a ack" in sms

    def test_the_core_text_with_its_own_codes_is_kept_and_cut_before_them(self) -> None:
        tail = "Reply 7a to ack, 7r to resolve https://oncall.example/ack/x"
        message = PageMessage(
            "k", ANA, "sms", (7,), "t", "b", "x" * 400 + " " + tail, "https://oncall.example/ack/x"
        )
        sms = page_sms(message)
        assert sms.endswith(tail) and septets(sms) <= 306

    def test_fit_to_one_segment(self) -> None:
        assert septets(fit("y" * 500, " end", max_segments=1)) <= 160


async def paged_by_sms(shop: PagingShop) -> int:
    await shop.receive(event(at=madrid("2026-11-28 23:10")))
    await shop.at("2026-11-28 23:10")
    await shop.at("2026-11-28 23:15")
    await shop.at("2026-11-28 23:25")
    [incident] = [i.id for i in await shop.service.incidents()]
    assert len(shop.twilio.sent()) == 1
    return incident


class TestTheSmsWebhook:
    async def test_a_wrong_or_missing_signature_is_401_and_changes_nothing(self, shop: PagingShop) -> None:
        incident = await paged_by_sms(shop)
        res = await shop.sms_reply(ANA.phone or "", f"{incident}a", token="wrong-token")
        assert res.status_code == 401
        res = await shop.client.post(
            "/twilio/sms", data={"MessageSid": "SM1", "From": ANA.phone, "Body": "ack"}
        )
        assert res.status_code == 401
        assert await shop.state(incident) == "triggered"

    async def test_ack_alone_acts_on_the_newest_incident_paged_to_that_number(self, shop: PagingShop) -> None:
        incident = await paged_by_sms(shop)
        res = await shop.sms_reply(ANA.phone or "", "ACK")
        assert "<Message>" in res.text and f"Incident {incident} acknowledged" in res.text
        assert await shop.state(incident) == "acknowledged"

    async def test_ack_alone_skips_a_newer_incident_already_resolved_for_the_one_still_paging(
        self, shop: PagingShop
    ) -> None:
        incident = await paged_by_sms(shop)
        ticket = event("ticket_created", madrid("2026-11-28 23:26"), source="zendesk", amount=None)
        await shop.receive(replace(ticket, ticket=Ticket("88", "urgent", "open", "Cobro doble")))
        await shop.at("2026-11-28 23:26")  # a newer incident pages Ana, then is resolved
        newer = max(i.id for i in await shop.service.incidents())
        assert newer != incident
        assert (await shop.service.act(newer, ANA, "resolve", "api", madrid("2026-11-28 23:27"))).ok
        res = await shop.sms_reply(ANA.phone or "", "ack")
        assert f"Incident {incident} acknowledged" in res.text
        assert await shop.state(incident) == "acknowledged"

    async def test_verb_first_is_accepted(self, shop: PagingShop) -> None:
        incident = await paged_by_sms(shop)
        await shop.sms_reply(ANA.phone or "", f"r {incident}")
        assert await shop.state(incident) == "resolved"

    async def test_a_redelivered_message_sid_acts_once(self, shop: PagingShop) -> None:
        incident = await paged_by_sms(shop)
        await shop.sms_reply(ANA.phone or "", f"{incident}a", sid="SMdup")
        again = await shop.sms_reply(ANA.phone or "", f"{incident}r", sid="SMdup")
        assert again.status_code == 200 and "<Message>" not in again.text
        assert await shop.state(incident) == "acknowledged"

    async def test_a_reply_not_understood_gets_help_a_few_times_an_hour(self, shop: PagingShop) -> None:
        incident = await paged_by_sms(shop)
        answers = [(await shop.sms_reply(ANA.phone or "", "what?")).text for _ in range(5)]
        assert ["reply 1a to ack incident 1" in a for a in answers] == [True] * 3 + [False] * 2
        assert await shop.state(incident) == "triggered"
        shop.now = madrid("2026-11-29 00:30")
        assert "<Message>" in (await shop.sms_reply(ANA.phone or "", "what?")).text

    async def test_stop_is_left_to_twilio(self, shop: PagingShop) -> None:
        incident = await paged_by_sms(shop)
        res = await shop.sms_reply(ANA.phone or "", "STOP")
        assert "<Message>" not in res.text
        assert await shop.state(incident) == "triggered"

    async def test_a_whatsapp_reply_is_read_like_an_sms(self, shop: PagingShop) -> None:
        incident = await paged_by_sms(shop)
        await shop.sms_reply(f"whatsapp:{ANA.phone}", f"{incident}a")
        assert await shop.state(incident) == "acknowledged"

    async def test_a_delivered_status_changes_nothing(self, shop: PagingShop) -> None:
        await paged_by_sms(shop)
        res = await shop.sms_status("SM" + f"{1:032x}", ANA.phone or "", "delivered")
        assert res.status_code == 204
        assert len(shop.telegram.sent()) == 1


class TestWhatsApp:
    async def test_a_whatsapp_sender_sends_to_the_persons_whatsapp(self) -> None:
        fake = FakeTwilio().start()
        try:
            channel = SmsChannel("AC1", "tok", "whatsapp:+15550001111", api_url=fake.api_url)
            message = PageMessage(
                "k", ANA, "sms", (1,), "Tienda: pago fallido", "b", "", "https://o.example/ack/t"
            )
            result = await channel.send(message)
            assert result.ok
            [call] = fake.sent()
            assert call.params["To"] == f"whatsapp:{ANA.phone}"
            assert call.params["From"] == "whatsapp:+15550001111"
            # The confirmation after an ack goes to the same WhatsApp number.
            assert (await channel.update(result.ref or "", "Incident 1 acknowledged by Ana")).ok
            assert fake.sent()[-1].params["To"] == f"whatsapp:{ANA.phone}"
        finally:
            fake.stop()


async def test_an_sms_page_still_on_its_way_when_ana_acks_gets_its_confirmation(tmp_path: Path) -> None:
    """SPEC §5: every SMS page of an acknowledged incident gets one short confirmation. Twilio is
    slow to take the 23:25 SMS page while Ana acks from Telegram; once it is sent, she gets the
    confirmation for it too."""
    async with open_shop(tmp_path) as shop:
        await shop.receive(event(at=madrid("2026-11-28 23:10")))
        await shop.at("2026-11-28 23:10")
        await shop.at("2026-11-28 23:15")
        [incident] = [i.id for i in await shop.service.incidents()]
        sms = shop.hang("sms")
        shop.now = madrid("2026-11-28 23:25")
        await Scheduler(shop.service, clock=lambda: shop.now).run_once()
        await asyncio.wait_for(sms.entered.wait(), 5)
        shop.now = madrid("2026-11-28 23:26")
        press = asyncio.ensure_future(shop.press(ANA.telegram or 0, f"ack:{incident}"))
        for _ in range(200):
            if await shop.state(incident) == "acknowledged":
                break
            await asyncio.sleep(0.01)
        sms.release()
        await press
        await shop.service.drain()
        assert shop.twilio.bodies(ANA.phone)[1:] == [
            f"Incident {incident} acknowledged by Ana Garcia at 23:26"  # GSM-7
        ]


async def test_a_flood_by_sms_is_one_summary_and_acking_it_all_one_confirmation(tmp_path: Path) -> None:
    """SPEC §5: 30 urgent tickets at 23:10 reach Ana's phone at 23:20 (the policy's SMS step) as
    one summary whose link acts on all 30. Acknowledging them all from it gets her one short
    confirmation, not 30 texts."""
    async with open_shop(tmp_path, bundle_window=WINDOW) as shop:
        for n in range(30):
            t = event("ticket_created", madrid("2026-11-28 23:10"), source="zendesk", amount=None)
            await shop.receive(replace(t, ticket=Ticket(str(600 + n), "urgent", "open", "Cobro doble")))
        await shop.at("2026-11-28 23:10")
        await shop.at("2026-11-28 23:20")
        [summary] = shop.twilio.bodies(ANA.phone)
        assert (
            segments(summary) <= 2 and "30 incidents, ack/resolve all: https://oncall.example/ack/" in summary
        )
        link = summary.rsplit(" ", 1)[1]
        res = await shop.client.post(link.removeprefix("https://oncall.example"), data={"verb": "ack"})
        assert res.status_code == 200
        await shop.service.drain()
        assert [await shop.state(i) for i in range(1, 31)] == ["acknowledged"] * 30
        [confirmation] = shop.twilio.bodies(ANA.phone)[1:]
        assert confirmation.startswith("All 30 incidents of this message are settled.")
