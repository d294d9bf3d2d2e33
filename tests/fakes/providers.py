"""The three fake providers behind the real SDKs, in virtual seconds: for tests of delivery
(bundling, rate limits, retries) that count when each message reached the provider.

`open_providers()` starts the fakes and builds the real channels (`build_channels`) against
them, each wrapped in `Timed`; `VirtualTime.run(aw)` runs `aw` with a clock that jumps from one
sleeper's wake-up to the next while nothing else can run.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import SecretStr

from oncall.acktoken import AckSigner
from oncall.channels import build_channels
from oncall.channels.base import Channel, Delivery, PageMessage
from oncall.channels.delivery import Dispatcher
from oncall.settings import Settings
from tests.fakes import FakeServer
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio

T = TypeVar("T")
SIGNER = AckSigner(b"k" * 32)
NOW = datetime(2026, 11, 28, 22, 15, tzinfo=UTC)
PUBLIC = "https://oncall.example"
SENDER = "+15550001111"


class VirtualTime:
    """Seconds that pass only when everything is waiting: a sleeper wakes when the clock,
    moved by `run()` from one wake-up to the next, reaches its time. A send started at virtual
    time T is recorded at T exactly, however long the real HTTP call takes."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.in_flight = 0  # provider calls under way (real I/O): the clock waits for them
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.t + seconds, next(self._seq), fut))
        await fut

    async def run(self, aw: Awaitable[T]) -> T:
        task = asyncio.ensure_future(aw)
        while not task.done():
            if self.in_flight:
                await asyncio.sleep(0.001)
                continue
            for _ in range(20):
                await asyncio.sleep(0)
            if task.done() or self.in_flight:
                continue
            if not self._heap:
                await asyncio.sleep(0.001)
                continue
            when, _, fut = heapq.heappop(self._heap)
            self.t = max(self.t, when)
            if not fut.done():
                fut.set_result(None)
        return task.result()


class Timed:
    """A real channel, with the virtual time of every call it gets."""

    def __init__(self, inner: Channel, vt: VirtualTime) -> None:
        self.inner = inner
        self.vt = vt
        self.name = inner.name
        self.calls: list[float] = []

    def configured(self) -> bool:
        return self.inner.configured()

    async def send(self, message: PageMessage) -> Delivery:
        self.calls.append(self.vt.t)
        self.vt.in_flight += 1
        try:
            return await self.inner.send(message)
        finally:
            self.vt.in_flight -= 1

    async def update(self, ref: str, text: str) -> Delivery:
        self.vt.in_flight += 1
        try:
            return await self.inner.update(ref, text)
        finally:
            self.vt.in_flight -= 1


@dataclass
class Providers:
    telegram: FakeTelegram
    slack: FakeSlack
    twilio: FakeTwilio
    vt: VirtualTime
    channels: dict[str, Channel]

    def fake(self, channel: str) -> FakeServer:
        return {"telegram": self.telegram, "slack": self.slack, "sms": self.twilio}[channel]

    def sends(self, channel: str) -> list[float]:
        """When each send was handed to the SDK, in virtual seconds; checked against what the
        fake provider received."""
        timed = self.channels[channel]
        assert isinstance(timed, Timed)
        path = {"telegram": "sendMessage", "slack": "chat.postMessage", "sms": "Messages.json"}[channel]
        # A send that timed out (0.2 s) may not yet have been read by the fake's own thread on
        # a slow host: it was sent all the same, and is counted once the fake has read it.
        deadline = time.monotonic() + 5
        while len(self.fake(channel).called(path)) < len(timed.calls) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.fake(channel).called(path)) == len(timed.calls)
        return timed.calls

    def dispatcher(self, **kw: object) -> Dispatcher:
        return Dispatcher(
            self.channels,
            clock=self.vt.clock,
            sleep=self.vt.sleep,
            relink=lambda p, ids: SIGNER.url(PUBLIC, ids, p.id, NOW),
            sms_sender=SENDER,
            **kw,  # type: ignore[arg-type]
        )


@asynccontextmanager
async def open_providers(vt: VirtualTime) -> AsyncIterator[Providers]:
    tg, sl, tw = FakeTelegram(vt.clock).start(), FakeSlack(vt.clock).start(), FakeTwilio(vt.clock).start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=SecretStr("1:T"),
        telegram_api_url=tg.api_url,
        slack_bot_token=SecretStr("xoxb-1"),
        slack_api_url=sl.api_url,
        twilio_account_sid="AC1",
        twilio_auth_token=SecretStr("tok"),
        twilio_from=SENDER,
        twilio_api_url=tw.api_url,
    )
    real = build_channels(settings, timeout=0.2)
    try:
        yield Providers(tg, sl, tw, vt, {n: Timed(c, vt) for n, c in real.items()})
    finally:
        for ch in real.values():
            await ch.aclose()  # type: ignore[attr-defined]
        for f in (tg, sl, tw):
            f.stop()
