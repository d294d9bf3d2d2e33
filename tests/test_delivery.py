"""Delivery discipline through the real SDKs against the fake providers, in virtual seconds:
retries honouring retry_after, provider rate limits, bundling, fail-over, nothing after an ack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from oncall.channels.base import Claimed, Delivery, PageMessage
from oncall.channels.bundle import merge
from oncall.channels.customer_sms import CustomerSms
from oncall.channels.delivery import Dispatcher
from oncall.channels.limits import RateLimiter
from oncall.core.gsm7 import segments
from oncall.core.models import Person
from oncall.settings import Settings
from tests.fakes import FaultKind
from tests.fakes.providers import NOW, SIGNER, Providers, Timed, VirtualTime, open_providers
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

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
SEND_CALL = {"telegram": "sendMessage", "slack": "chat.postMessage", "sms": "Messages.json"}


async def sent_despite(
    providers: Providers, channel: str, fault: FaultKind, times: int = 1, retry_after: float = 1.0
) -> list[float]:
    """One page by `channel` whose provider fails its first `times` sends with `fault`:
    delivered in the end; when each try was made (virtual seconds)."""
    providers.fake(channel).fail(fault, times=times, retry_after=retry_after, only=SEND_CALL[channel])
    result = await providers.vt.run(providers.dispatcher().send(page(1, channel)))
    assert result.ok
    return providers.sends(channel)


class TestRetries:
    @pytest.mark.parametrize("channel", CHANNELS)
    async def test_a_429_is_tried_again_only_after_the_wait_the_provider_asked_for(
        self, providers: Providers, channel: str
    ) -> None:
        first, second = await sent_despite(providers, channel, "429", retry_after=7)
        assert second - first >= 7

    @pytest.mark.parametrize("channel", CHANNELS)
    async def test_two_500s_then_success_is_delivered_on_the_third_try(
        self, providers: Providers, channel: str
    ) -> None:
        times = await sent_despite(providers, channel, "500", times=2)
        assert len(times) == 3
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


def flood_page(i: int, channel: str, person: Person = ANA, detail: str = "") -> PageMessage:
    """Incident `i`'s page as the service makes it: its own text, and its bundle line."""
    line = f"#{i} payment failure, order {1000 + i}, {10 + i % 90}.90 EUR" + (f": {detail}" if detail else "")
    return dataclasses.replace(
        page(i, channel, person),
        shop="Tienda Ejemplo",
        body=f"Tienda Ejemplo — incident {i}\n{line}",
        line=line,
    )


async def falling_due(
    vt: VirtualTime, d: Dispatcher, due: Sequence[tuple[float, PageMessage]]
) -> list[Delivery]:
    """Hands each page to the dispatcher when it falls due (virtual seconds from now), as the
    service does when a hold ends, and waits for all of them."""
    start = vt.t
    sends = []
    for at, message in sorted(due, key=lambda x: x[0]):
        if start + at > vt.t:
            await vt.sleep(start + at - vt.t)
        sends.append(asyncio.ensure_future(d.send(message)))
    return list(await asyncio.gather(*sends))


@dataclass(frozen=True)
class Received:
    """One message as the fake provider got it: when, the incidents its text names (each on
    its own line), the incidents its buttons act on, and its text."""

    at: float
    named: list[int]
    buttons: set[int]
    text: str


NAMED = re.compile(r"(?m)^#(\d+) ")


def telegram_received(fake: FakeTelegram) -> list[Received]:
    out = []
    for c in fake.sent():
        rows = json.loads(c.params["reply_markup"])["inline_keyboard"]
        data = [b["callback_data"] for row in rows for b in row]
        ids = {int(n) for d in data if (n := d.partition(":")[2]).isdigit()}
        text = c.params["text"]
        out.append(Received(c.at, [int(n) for n in NAMED.findall(text)], ids, text))
    return out


def slack_received(fake: FakeSlack) -> list[Received]:
    out = []
    for c in fake.posted():
        raw = c.params["blocks"]
        blocks = json.loads(raw) if isinstance(raw, str) else raw
        text = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
        ids = {int(e["value"]) for b in blocks if b["type"] == "actions" for e in b["elements"]}
        assert len(blocks) <= 50
        out.append(Received(c.at, [int(n) for n in NAMED.findall(text)], ids, text))
    return out


def link_ids(sms: str) -> tuple[int, ...]:
    """The incidents the ack link in an SMS acts on (its signed token's claim)."""
    token = sms.rsplit("/ack/", 1)[1].split()[0]
    return SIGNER.verify(token, NOW).incident_ids


def each_once(received: Sequence[Received]) -> list[int]:
    named = [i for r in received for i in r.named]
    assert len(named) == len(set(named)), "an incident named twice"
    return sorted(named)


class TestBundling:
    """SPEC §5: the first page goes at once; pages falling due within 2 s share a message;
    later ones go as they fall due, never faster than the per-chat limit; every incident is
    named on a line of its own, split over messages (Telegram, Slack) or summarised (SMS)."""

    async def test_the_first_page_goes_at_once(self, providers: Providers) -> None:
        d = providers.dispatcher()
        asked = providers.vt.t
        assert (await providers.vt.run(d.send(flood_page(1, "telegram")))).ok
        [got] = telegram_received(providers.telegram)
        assert got.at == asked and got.named == [1] and got.buttons == {1}

    async def test_pages_falling_due_within_2_s_share_one_message_and_a_later_one_goes_at_once(
        self, providers: Providers
    ) -> None:
        d, start = providers.dispatcher(), providers.vt.t
        due = [(0.0, 1), (0.5, 2), (1.2, 3), (1.9, 4), (4.0, 5)]
        results = await providers.vt.run(
            falling_due(providers.vt, d, [(t, flood_page(i, "telegram")) for t, i in due])
        )
        assert all(r.ok for r in results)
        got = telegram_received(providers.telegram)
        assert [(r.at - start, r.named) for r in got] == [(0.0, [1]), (2.0, [2, 3, 4]), (4.0, [5])]
        assert got[1].buttons == {2, 3, 4}
        assert "Tienda Ejemplo: 3 incidents" in got[1].text

    async def test_fifty_falling_due_together_go_at_once_each_named_once_on_every_channel(
        self, providers: Providers
    ) -> None:
        d, start = providers.dispatcher(), providers.vt.t
        sends = [d.send(flood_page(i, ch)) for i in range(1, 51) for ch in CHANNELS]
        results = await providers.vt.run(asyncio.gather(*sends))
        assert all(r.ok for r in results)
        for received in (telegram_received(providers.telegram), slack_received(providers.slack)):
            assert each_once(received) == list(range(1, 51))
            assert received[0].at == start and len(received) == 2  # what does not fit: 2 s later
            assert received[1].at - start == 2.0
            assert all(r.buttons == set(r.named) for r in received)
        [sms] = providers.twilio.bodies()
        assert segments(sms) <= 2 and "50 incidents" in sms
        assert link_ids(sms) == tuple(range(1, 51))
        # Every page got its message's delivery, so an ack can edit it later.
        refs = {r.ref for r in results[::3]}  # the Telegram ones
        assert len(refs) == 2

    async def test_later_pages_go_as_they_fall_due_at_most_one_message_a_second(
        self, providers: Providers
    ) -> None:
        d, start = providers.dispatcher(), providers.vt.t
        due = {i: 0.4 * i for i in range(1, 16)}  # one every 0.4 s for 6 s
        await providers.vt.run(
            falling_due(providers.vt, d, [(t, flood_page(i, "telegram")) for i, t in due.items()])
        )
        got = telegram_received(providers.telegram)
        assert each_once(got) == list(due)
        assert all(round(b.at - a.at, 6) >= 1 for a, b in itertools.pairwise(got))
        # Nothing waits longer than the window that its first page opened.
        assert max(r.at - start - due[i] for r in got for i in r.named) <= 2.0
        assert len(got) < len(due)

    async def test_200_incidents_within_2_s_are_all_named_in_a_few_messages_within_5_s(
        self, providers: Providers
    ) -> None:
        """The benchmark's flood: 200 incidents for one person falling due 10 ms apart."""
        d, start = providers.dispatcher(), providers.vt.t
        due = {i: 0.01 * (i - 1) for i in range(1, 201)}
        results = await providers.vt.run(
            falling_due(providers.vt, d, [(t, flood_page(i, "telegram")) for i, t in due.items()])
        )
        assert all(r.ok for r in results)
        got = telegram_received(providers.telegram)
        assert each_once(got) == list(range(1, 201))
        assert len(got) <= 6
        assert all(r.buttons == set(r.named) for r in got)  # the buttons cover each part's incidents
        assert all(round(b.at - a.at, 6) >= 1 for a, b in itertools.pairwise(got))  # 1/s per chat
        assert max(r.at - start - due[i] for r in got for i in r.named) <= 5.0
        assert "more follow" in got[1].text

    async def test_long_lines_are_split_over_messages_and_none_is_cut(self, providers: Providers) -> None:
        d = providers.dispatcher()
        detail = "el cliente dice que le han cobrado dos veces y pide la devolución " * 2
        pages = [flood_page(i, "telegram", detail=detail.strip()) for i in range(1, 41)]
        results = await providers.vt.run(asyncio.gather(*(d.send(p) for p in pages)))
        assert all(r.ok for r in results)
        got = telegram_received(providers.telegram)
        assert len(got) > 1 and each_once(got) == list(range(1, 41))
        for r in got:
            assert len(r.text.encode("utf-16-le")) // 2 <= 4096
            assert r.buttons == set(r.named)
        text = "\n".join(r.text for r in got)
        assert all(p.line in text for p in pages)  # whole lines: nothing cut at 4,096

    async def test_slack_splits_a_flood_within_block_kit_limits(self, providers: Providers) -> None:
        d = providers.dispatcher()
        results = await providers.vt.run(
            asyncio.gather(*(d.send(flood_page(i, "slack")) for i in range(1, 121)))
        )
        assert all(r.ok for r in results)  # the fake refuses more than 50 blocks, or too much text
        got = slack_received(providers.slack)
        assert each_once(got) == list(range(1, 121))
        assert len(got) == 3 and all(r.buttons == set(r.named) for r in got)

    async def test_an_sms_flood_is_one_summary_whose_link_acts_on_every_incident(
        self, providers: Providers
    ) -> None:
        d, start = providers.dispatcher(), providers.vt.t
        due = [(0.0, 1)] + [(0.5 + 0.01 * i, i) for i in range(2, 60)]
        await providers.vt.run(falling_due(providers.vt, d, [(t, flood_page(i, "sms")) for t, i in due]))
        first, summary = providers.twilio.sent()
        assert first.at == start and link_ids(first.params["Body"]) == (1,)
        body = summary.params["Body"]
        assert summary.at - start == 2.0
        assert segments(body) <= 2 and "58 incidents" in body
        assert link_ids(body) == tuple(range(2, 60))

    async def test_scattered_incidents_whose_link_would_not_fit_one_sms_go_in_several(
        self, providers: Providers
    ) -> None:
        d = providers.dispatcher()
        ids = list(range(1, 400, 4))  # 100 incidents; the others went to other people
        await providers.vt.run(asyncio.gather(*(d.send(flood_page(i, "sms")) for i in ids)))
        bodies = providers.twilio.bodies()
        assert len(bodies) > 1
        assert all(segments(b) <= 2 for b in bodies)
        linked = [i for b in bodies for i in link_ids(b)]
        assert sorted(linked) == ids  # every incident in exactly one link

    async def test_a_page_another_instance_took_over_is_left_out_of_the_bundle(
        self, providers: Providers
    ) -> None:
        taken = {"3:0:0:ana:telegram"}

        async def claim(keys: Sequence[str], ids: Sequence[int]) -> Claimed:
            return Claimed({k for k in keys if k not in taken}, {})

        d = providers.dispatcher(claim=claim)
        results = await providers.vt.run(
            asyncio.gather(*(d.send(flood_page(i, "telegram")) for i in (1, 2, 3, 4)))
        )
        assert [r.ok for r in results] == [True, True, False, True] and results[2].taken_over
        [got] = telegram_received(providers.telegram)
        assert got.named == [1, 2, 4] and got.buttons == {1, 2, 4}

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
