"""Provider rate limits (SPEC §5): Telegram ~30 messages/s and 1/s per chat, Slack 1/s per
channel, Twilio 1 SMS/s per sender and 1 call/s per account. The buckets a send uses
(`limit_keys`) and the limiter that spaces sends in them, with injected time so that tests run
a flood in virtual time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from oncall.channels.base import PageMessage, sms_ref_number

Clock = Callable[[], float]  # monotonic seconds
Sleep = Callable[[float], Awaitable[None]]

MAX_WAIT = 30.0  # the longest any back-off or provider-asked wait is honoured

# Seconds between two sends sharing a key: the providers' documented limits.
TELEGRAM_GLOBAL = 0.034  # a hair under 30/s, so rounding never lets a 31st into a second
PER_CHAT = 1.0


def limit_keys(channel: str, target: str | int | None, sender: str | None = None) -> list[tuple[str, float]]:
    """The rate-limit buckets one send to `target` (chat, Slack user/channel, phone) uses."""
    if channel == "telegram":
        return [("telegram", TELEGRAM_GLOBAL), (f"telegram:{target}", PER_CHAT)]
    if channel == "slack":
        return [(f"slack:{target}", PER_CHAT)]
    if channel == "sms":
        return [(f"sms:{sender or ''}", PER_CHAT)]
    if channel == "voice":  # Twilio places 1 call a second per account unless raised
        return [("voice", PER_CHAT)]
    return []


def message_target(message: PageMessage) -> str | int | None:
    p = message.person
    return {"telegram": p.telegram, "slack": p.slack, "sms": p.phone, "voice": p.phone}.get(message.channel)


def ref_target(channel: str, ref: str) -> str:
    """The chat / channel / number inside a delivery ref ("chat:msg", "channel:ts", "SID|to")."""
    return sms_ref_number(ref) if channel in ("sms", "voice") else ref.partition(":")[0]


class RateLimiter:
    """Spaces sends so that no bucket ever sees two sends closer than its interval.

    A send reserves its slot in every bucket it uses before sleeping, so concurrent senders
    queue up in order instead of racing; after a 429 `hold()` pushes the bucket back."""

    def __init__(self, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._behind = asyncio.Lock()

    def reserve(self, keys: Sequence[tuple[str, float]]) -> float:
        """Takes the next free slot of every bucket in `keys`; returns when it is."""
        now = self._clock()
        at = max([now, *(self._next.get(k, now) for k, _ in keys)])
        for k, interval in keys:
            self._next[k] = at + interval
        return at

    async def wait(self, keys: Sequence[tuple[str, float]]) -> None:
        if not keys:
            return
        at = self.reserve(keys)
        now = self._clock()
        if at > now:
            await self._sleep(at - now)

    async def wait_behind(self, keys: Sequence[tuple[str, float]]) -> None:
        """`wait` for sends that must never delay a page (customer texts from the paging
        number): one at a time, each takes a slot only when no page has claimed it, so a page
        waits behind at most the one such send in flight and never behind a queue of them."""
        if not keys:
            return
        async with self._behind:
            while True:
                now = self._clock()
                at = max([now, *(self._next.get(k, now) for k, _ in keys)])
                if at <= now:
                    for k, interval in keys:
                        self._next[k] = now + interval
                    return
                await self._sleep(at - now)

    def push(self, keys: Sequence[tuple[str, float]], at: float) -> None:
        """A send was given the slot `at` elsewhere (another instance's share of the limit):
        the next one here comes after it."""
        for k, interval in keys:
            self._next[k] = max(self._next.get(k, at + interval), at + interval)

    def hold(self, keys: Sequence[tuple[str, float]], seconds: float) -> None:
        until = self._clock() + seconds
        for k, _ in keys:
            self._next[k] = max(self._next.get(k, until), until)
