"""Delivery discipline through the real SDKs against the fake providers, in virtual seconds:
retries honouring retry_after, provider rate limits, bundling, fail-over, nothing after an ack.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from oncall.channels.base import Delivery, PageMessage
from oncall.channels.customer_sms import CustomerSms
from oncall.channels.delivery import RateLimiter, merge
from oncall.core.gsm7 import segments
from oncall.core.models import Person
from oncall.settings import Settings
from tests.fakes.providers import NOW, SIGNER, Providers, Timed, VirtualTime, open_providers

ANA = Person("ana", "Ana García", phone="+34600111222", telegram=111, slack="UANA")


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def providers(vt: VirtualTime) -> AsyncIterator[Providers]:
    async with open_providers(vt) as p:
        yield p


def page(incident: int, channel: str, person: Person = ANA) -> PageMessage:
    return PageMessage(
        key=f"{incident}:0:0:{person.id}:{channel}",
        person=person,
        channel=channel,
        incident_ids=(incident,),
        title=f"Tienda Ejemplo: payment failure #{incident}",
        body=f"Tienda Ejemplo: payment failure for order 10{incident}",
        sms=f"Tienda Ejemplo: payment failure for order 10{incident}",
        ack_url=SIGNER.url("https://oncall.example", (incident,), person.id, NOW),
    )


CHANNELS = ["telegram", "slack", "sms"]


class TestRetries:
    @pytest.mark.parametrize("channel", CHANNELS)
    async def test_a_429_is_tried_again_only_after_the_wait_the_provider_asked_for(
        self, providers: Providers, channel: str
    ) -> None:
        only = {"telegram": "sendMessage", "slack": "chat.postMessage", "sms": "Messages.json"}[channel]
        providers.fake(channel).fail("429", retry_after=7, only=only)
        result = await providers.vt.run(providers.dispatcher().send(page(1, channel)))
        assert result.ok
        first, second = providers.sends(channel)
        assert second - first >= 7

    @pytest.mark.parametrize("channel", CHANNELS)
    async def test_two_500s_then_success_is_delivered_on_the_third_try(
        self, providers: Providers, channel: str
    ) -> None:
        only = {"telegram": "sendMessage", "slack": "chat.postMessage", "sms": "Messages.json"}[channel]
        providers.fake(channel).fail("500", times=2, only=only)
        result = await providers.vt.run(providers.dispatcher().send(page(1, channel)))
        assert result.ok
        assert len(providers.sends(channel)) == 3
        times = providers.sends(channel)
        waits = [b - a for a, b in itertools.pairwise(times)]
        assert all(0 < w <= 30 for w in waits)

    async def test_a_provider_that_hangs_times_out_and_is_tried_three_times(
        self, providers: Providers
    ) -> None:
        providers.telegram.fail("hang", times=3)
        result = await providers.vt.run(providers.dispatcher().send(page(1, "telegram")))
        assert not result.ok and result.retryable
        assert len(providers.sends("telegram")) == 3

    async def test_a_refusal_that_will_not_change_is_not_retried(self, providers: Providers) -> None:
        no_slack = Person("x", "X", telegram=5)
        d = providers.dispatcher()
        result = await providers.vt.run(d.send(PageMessage("k", no_slack, "slack", (1,), "t", "b", "s", "")))
        assert not result.ok and not result.retryable
        timed = providers.channels["slack"]
        assert isinstance(timed, Timed) and len(timed.calls) == 1  # one try only
        assert providers.slack.calls == []

    async def test_back_off_never_exceeds_30_seconds_even_when_asked_for_more(
        self, providers: Providers
    ) -> None:
        providers.twilio.fail("429", retry_after=120)
        result = await providers.vt.run(providers.dispatcher().send(page(1, "sms")))
        assert result.ok
        first, second = providers.sends("sms")
        assert 30 <= second - first < 31


class TestRateLimits:
    async def test_telegram_never_more_than_30_a_second_overall(self, providers: Providers) -> None:
        people = [Person(f"p{i}", f"P{i}", telegram=1000 + i) for i in range(60)]
        d = providers.dispatcher()
        results = await providers.vt.run(
            asyncio.gather(*(d.send(page(i, "telegram", p)) for i, p in enumerate(people)))
        )
        assert all(r.ok for r in results)
        times = sorted(providers.sends("telegram"))
        assert len(times) == 60
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 1 / 30
        assert all(sum(1 for t in times if s <= t < s + 1) <= 30 for s in times)

    async def test_one_message_a_second_to_one_telegram_chat(self, providers: Providers) -> None:
        d = providers.dispatcher(window=0.0)  # no bundling: the limiter alone
        await providers.vt.run(asyncio.gather(*(d.send(page(i, "telegram")) for i in range(5))))
        times = sorted(providers.sends("telegram"))
        assert [round(b - a, 6) >= 1 for a, b in itertools.pairwise(times)] == [True] * 4

    async def test_twilio_one_sms_a_second_from_the_sender(self, providers: Providers) -> None:
        people = [Person(f"p{i}", f"P{i}", phone=f"+3460000000{i}") for i in range(6)]
        d = providers.dispatcher()
        await providers.vt.run(asyncio.gather(*(d.send(page(i, "sms", p)) for i, p in enumerate(people))))
        times = sorted(providers.sends("sms"))
        assert len(times) == 6
        assert all(b - a >= 1 for a, b in itertools.pairwise(times))

    async def test_slack_one_message_a_second_per_channel(self, providers: Providers) -> None:
        d = providers.dispatcher(window=0.0)
        await providers.vt.run(asyncio.gather(*(d.send(page(i, "slack")) for i in range(4))))
        times = sorted(providers.sends("slack"))
        assert all(b - a >= 1 for a, b in itertools.pairwise(times))

    async def test_after_a_429_the_whole_chat_waits(self, vt: VirtualTime) -> None:
        limiter = RateLimiter(vt.clock, vt.sleep)
        keys = [("telegram:1", 1.0)]
        await vt.run(limiter.wait(keys))
        limiter.hold(keys, 10)
        before = vt.t
        await vt.run(limiter.wait(keys))
        assert vt.t - before >= 10


class TimedCustomerSms(CustomerSms):
    """The real customer SMS sender; its provider call holds the virtual clock like `Timed`."""

    def __init__(self, providers: Providers, limiter: RateLimiter) -> None:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            twilio_account_sid="AC1",
            twilio_auth_token=SecretStr("tok"),
            twilio_from="+15550001111",  # the number the pages leave from
            twilio_api_url=providers.twilio.api_url,
        )
        super().__init__(settings, limiter=limiter)
        self.vt = providers.vt

    async def _send(self, phone: str, text: str) -> Delivery:
        self.vt.in_flight += 1
        try:
            return await super()._send(phone, text)
        finally:
            self.vt.in_flight -= 1


class TestCustomerTextsShareTheSender:
    async def test_a_flood_of_customer_sms_never_exceeds_1_a_second_and_never_delays_a_page(
        self, providers: Providers
    ) -> None:
        """SPEC §5: Twilio 1 SMS/s per sender, pages and customer texts alike. 20 customers of a
        flood are texted from the paging number; the on-call page that follows half a second
        later goes out within a second, not after the 20 customers' texts."""
        vt, d = providers.vt, providers.dispatcher()
        customers = TimedCustomerSms(providers, d.limiter)

        async def flood_then_page() -> tuple[float, Delivery, list[Delivery]]:
            texts = [
                asyncio.ensure_future(customers.send(f"+346100000{i:02d}", "Hola, lo hemos visto"))
                for i in range(20)
            ]
            await vt.sleep(0.5)
            asked = vt.t
            paged = await d.send(page(1, "sms"))
            return asked, paged, await asyncio.gather(*texts)

        asked, paged, texts = await vt.run(flood_then_page())
        assert paged.ok and all(t.ok for t in texts)
        sent = providers.twilio.sent()
        assert len(sent) == 21
        times = sorted(c.at for c in sent)
        assert all(round(b - a, 6) >= 1 for a, b in itertools.pairwise(times))
        [page_at] = [c.at for c in sent if c.params["To"] == ANA.phone]
        assert page_at - asked <= 1.0
        assert sum(1 for c in sent if c.at < page_at) <= 1  # only the one already in flight

    async def test_a_429_on_a_customer_text_holds_the_pages_too(self, providers: Providers) -> None:
        vt, d = providers.vt, providers.dispatcher()
        customers = TimedCustomerSms(providers, d.limiter)
        providers.twilio.fail("429", retry_after=5)
        refused = await vt.run(customers.send("+34610000000", "Hola"))
        assert not refused.ok and refused.retry_after
        asked = vt.t
        assert (await vt.run(d.send(page(1, "sms")))).ok
        assert providers.twilio.sent()[-1].at - asked >= 5


class TestBundling:
    async def test_fifty_incidents_in_a_minute_reach_ana_as_two_messages_per_channel(
        self, providers: Providers
    ) -> None:
        d = providers.dispatcher()
        sends = [d.send(page(i, ch)) for i in range(1, 51) for ch in CHANNELS]
        results = await providers.vt.run(asyncio.gather(*sends))
        assert all(r.ok for r in results)
        for ch in CHANNELS:
            times = providers.sends(ch)
            assert len(times) == 2, ch  # the first at once, the other 49 together a minute later
            assert times[1] - times[0] >= 60
        bundle = providers.telegram.sent()[1].params
        assert "Tienda Ejemplo: 49 incidents" in bundle["text"]
        rows = json.loads(bundle["reply_markup"])["inline_keyboard"]
        assert rows[0][0] == {"text": "Ack #2", "callback_data": "ack:2"}
        sms = providers.twilio.sent()[1].params["Body"]
        assert segments(sms) <= 2
        assert "https://oncall.example/ack/" in sms
        claim = SIGNER.verify(sms.rsplit("/ack/", 1)[1].split()[0], NOW)
        assert claim.incident_ids == tuple(range(2, 51))  # the bundle's link covers all 49
        # Every bundled page got the bundle's delivery, so an ack can edit it later.
        assert len({r.ref for r in results[3:] if r.ref and r.ref.startswith("111:")}) == 1

    async def test_a_page_acknowledged_while_waiting_for_its_bundle_is_not_sent(
        self, providers: Providers
    ) -> None:
        d = providers.dispatcher()
        first = asyncio.ensure_future(d.send(page(1, "telegram")))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(d.send(page(2, "telegram")))
        await asyncio.sleep(0)
        d.settle(2)
        assert (await providers.vt.run(first)).ok
        late = await providers.vt.run(second)
        assert not late.ok and "acknowledged" in (late.error or "")
        assert len(providers.sends("telegram")) == 1

    def test_a_merged_page_keeps_every_incident_once(self) -> None:
        merged = merge([page(3, "sms"), page(4, "sms"), page(3, "sms")], "https://oncall.example/ack/x")
        assert merged.incident_ids == (3, 4)
        assert merged.ack_url == "https://oncall.example/ack/x"

    def test_one_incident_queued_twice_for_a_person_goes_out_once_not_as_a_bundle_of_copies(self) -> None:
        # e.g. Telegram and Slack both without credentials: both pages fall back to the console.
        first, again = page(3, "console"), page(3, "console")
        merged = merge([first, again], "https://oncall.example/ack/x")
        assert merged.body == again.body and merged.ack_url == again.ack_url
        assert merged.key == f"{first.key}+{again.key}"  # both pages are marked sent


class TestFailOver:
    async def test_an_sms_reported_undelivered_goes_by_her_other_channels(self, providers: Providers) -> None:
        d = providers.dispatcher()
        sent = await providers.vt.run(d.send(page(8, "sms")))
        assert sent.ok and sent.ref
        again = await providers.vt.run(d.delivery_failed(sent.ref, "was undelivered"))
        assert again is not None and again.ok
        assert len(providers.telegram.sent()) == 1
