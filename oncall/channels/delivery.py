"""Delivery discipline around the channels: retries, provider rate limits, bundling, fail-over.

    Dispatcher.send(message)                bundling: a second page to the same person and
      │                                     channel within `window` waits and goes out with the
      │                                     others as one message when the window closes
      └─ _deliver(channel, message)         tenacity: up to `attempts` tries, jittered exponential
           │                                back-off, `retry_after` honoured, 30 s at most
           └─ RateLimiter.wait(keys)        before every try: ~30/s and 1/s per chat (Telegram),
                                            1/s per channel (Slack), 1/s per sender (Twilio);
                                            customer texts from the same sender share it with
                                            a lower priority (`wait_behind`, CustomerSms)
    Dispatcher.delivery_failed(ref, reason) a sent page reported undelivered later (Twilio's
                                            status callback): the person's other channels
    Dispatcher.settle(incident_id)          after an ack: queued and retrying pages of that
                                            incident are dropped, nothing more goes out

Time is injected (`clock`, `sleep`), so tests run a flood of pages in virtual time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from oncall.channels.base import Channel, Delivery, OffersContacted, PageMessage, cancelled, sms_ref_number
from oncall.core.failover import failover_key, other_channels
from oncall.core.models import Person

Clock = Callable[[], float]  # monotonic seconds
Sleep = Callable[[float], Awaitable[None]]
Relink = Callable[[Person, tuple[int, ...]], str]  # a fresh ack link covering a bundle
Record = Callable[[int, str], Awaitable[None]]  # append a timeline entry to an incident
# Which of these incidents were settled meanwhile (perhaps by another process), and how.
Check = Callable[[tuple[int, ...]], Awaitable[Mapping[int, str]]]

MAX_WAIT = 30.0

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
    return []


def message_target(message: PageMessage) -> str | int | None:
    p = message.person
    return {"telegram": p.telegram, "slack": p.slack, "sms": p.phone}.get(message.channel)


def ref_target(channel: str, ref: str) -> str:
    """The chat / channel / number inside a delivery ref ("chat:msg", "channel:ts", "SID|to")."""
    return sms_ref_number(ref) if channel == "sms" else ref.partition(":")[0]


class RateLimiter:
    """Spaces sends so that no bucket ever sees two sends closer than its interval.

    A send reserves its slot in every bucket it uses before sleeping, so concurrent senders
    queue up in order instead of racing; after a 429 `hold()` pushes the bucket back."""

    def __init__(self, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._behind = asyncio.Lock()

    async def wait(self, keys: Sequence[tuple[str, float]]) -> None:
        if not keys:
            return
        now = self._clock()
        at = max([now, *(self._next.get(k, now) for k, _ in keys)])
        for k, interval in keys:
            self._next[k] = at + interval
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

    def hold(self, keys: Sequence[tuple[str, float]], seconds: float) -> None:
        until = self._clock() + seconds
        for k, _ in keys:
            self._next[k] = max(self._next.get(k, until), until)


def merge(messages: Sequence[PageMessage], ack_url: str | None = None) -> PageMessage:
    """Several pages to one person on one channel as one message."""
    if len(messages) == 1 and ack_url is None:
        return messages[0]
    key = "+".join(m.key for m in messages)  # a name for logs; the records are `page_keys`
    page_keys = tuple(k for m in messages for k in m.keys)
    # The same incident queued twice for one person and channel (the console standing in for
    # two channels, or a fail-over meeting the next step) is shown once, as its latest page.
    latest: dict[tuple[int, ...], PageMessage] = {}
    for m in messages:
        latest[m.incident_ids] = m
    if len(latest) == 1:
        return dataclasses.replace(messages[-1], key=key, page_keys=page_keys)
    messages = list(latest.values())
    ids: list[int] = []
    for m in messages:
        ids.extend(i for i in m.incident_ids if i not in ids)
    first = messages[0]
    shop = first.title.partition(":")[0] if ":" in first.title else ""
    head = f"{shop}: {len(ids)} incidents" if shop else f"{len(ids)} incidents"
    lines = [f"#{','.join(map(str, m.incident_ids))} {_after_shop(m.title)}" for m in messages]
    return dataclasses.replace(
        first,
        key=key,
        page_keys=page_keys,
        incident_ids=tuple(ids),
        title=head,
        body=head + "\n\n" + "\n\n".join(f"#{','.join(map(str, m.incident_ids))} {m.body}" for m in messages),
        sms=head + ": " + "; ".join(lines),
        sms_tail="",
        ack_url=ack_url or messages[-1].ack_url,
    )


def _after_shop(title: str) -> str:
    return title.partition(": ")[2] or title


@dataclass
class _Bundle:
    last_sent: float | None = None
    pending: list[tuple[PageMessage, asyncio.Future[Delivery]]] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None


class Dispatcher:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        window: float = 60.0,
        attempts: int = 3,
        max_wait: float = MAX_WAIT,
        relink: Relink | None = None,
        record: Record | None = None,
        sms_sender: str | None = None,
        check: Check | None = None,
    ) -> None:
        self.channels = channels
        self.check = check
        self.clock = clock
        self.sleep = sleep
        self.window = window
        self.attempts = attempts
        self.max_wait = max_wait
        self.relink = relink
        self.record = record
        self.sms_sender = sms_sender
        self.limiter = RateLimiter(clock, sleep)
        self._bundles: dict[tuple[str, str], _Bundle] = {}
        self._epoch: dict[int, int] = {}  # incident -> times settled; a page from an older epoch is stale
        self._sent: dict[str, PageMessage] = {}  # delivery ref -> message, for a later failure report
        self._settled: dict[int, str] = {}  # incident -> what settled it last ("resolved", …)

    # -- one message -------------------------------------------------------------------------

    async def send(self, message: PageMessage) -> Delivery:
        """Sends `message`, bundled with other pages to the same person and channel inside the
        window; may take up to `window` seconds, so callers run their sends concurrently."""
        epochs = self._epochs(message.incident_ids)
        key = (message.person.id, message.channel)
        bundle = self._bundles.setdefault(key, _Bundle())
        now = self.clock()
        if not bundle.pending and (bundle.last_sent is None or now - bundle.last_sent >= self.window):
            bundle.last_sent = now
            return await self._deliver(message, epochs)
        future: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        bundle.pending.append((message, future))
        if bundle.flusher is None:
            bundle.flusher = asyncio.create_task(self._flush(key, bundle))
        return await future

    async def _flush(self, key: tuple[str, str], bundle: _Bundle) -> None:
        due = (bundle.last_sent or self.clock()) + self.window
        wait = due - self.clock()
        if wait > 0:
            await self.sleep(wait)
        if self.check is not None and bundle.pending:
            # An ack in another process (a second instance, `oncall ack`) during the window
            # reached the store, not this dispatcher: drop what it settled before merging.
            waiting = tuple(dict.fromkeys(i for m, _ in bundle.pending for i in m.incident_ids))
            try:
                settled = await self.check(waiting)
            except Exception:
                settled = {}
            for incident_id, what in settled.items():
                self.settle(incident_id, what)
        pending, bundle.pending, bundle.flusher = bundle.pending, [], None
        live = [(m, f) for m, f in pending if not f.done()]
        if not live:
            return
        bundle.last_sent = self.clock()
        messages = [m for m, _ in live]
        ids = tuple(dict.fromkeys(i for m in messages for i in m.incident_ids))
        link = self.relink(messages[0].person, ids) if self.relink and len(messages) > 1 else None
        merged = merge(messages, link)
        try:
            result = await self._deliver(merged, self._epochs(ids))
        except Exception as exc:  # never leave a waiting sender hanging
            result = Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")
        for _, f in live:
            if not f.done():
                f.set_result(result)

    async def _deliver(self, message: PageMessage, epochs: dict[int, int]) -> Delivery:
        channel = self.channels.get(message.channel)
        if channel is None or not channel.configured():
            return Delivery(ok=False, error=f"{message.channel}: not configured")
        keys = limit_keys(message.channel, message_target(message), self.sms_sender)

        async def attempt() -> Delivery:
            if self._stale(epochs):
                what = self._settled.get(next(iter(epochs)), "acknowledged")
                return cancelled(what)
            await self.limiter.wait(keys)
            result = await channel.send(message)
            if result.retry_after:
                self.limiter.hold(keys, min(result.retry_after, self.max_wait))
            return result

        result = await self._retrying(attempt)
        if result.ok and result.ref:
            self._sent[result.ref] = message
        return result

    async def update(self, channel_name: str, ref: str, text: str, contacted: int | None = None) -> Delivery:
        """Edits a delivered page (or, for SMS, confirms), with the same retries and limits;
        `contacted`: with a "Customer contacted" button for that incident, where the channel
        has buttons."""
        channel = self.channels.get(channel_name)
        if channel is None or not channel.configured():
            return Delivery(ok=False, error=f"{channel_name}: not configured")
        keys = limit_keys(channel_name, ref_target(channel_name, ref), self.sms_sender)

        async def attempt() -> Delivery:
            await self.limiter.wait(keys)
            if contacted is not None and isinstance(channel, OffersContacted):
                return await channel.update_offering_contacted(ref, text, contacted)
            return await channel.update(ref, text)

        return await self._retrying(attempt)

    async def _retrying(self, attempt: Callable[[], Awaitable[Delivery]]) -> Delivery:
        backoff = wait_random_exponential(multiplier=0.5, max=self.max_wait)

        def wait(state: RetryCallState) -> float:
            last = state.outcome.result() if state.outcome and not state.outcome.failed else None
            if isinstance(last, Delivery) and last.retry_after is not None:
                return min(float(last.retry_after), self.max_wait)
            return float(backoff(state))

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            retry=retry_if_result(lambda d: not d.ok and d.retryable),
            sleep=self.sleep,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            reraise=True,
        )
        result: Delivery = await retrying(attempt)
        return result

    # -- fail-over -------------------------------------------------------------------------

    def _usable(self, channel: str) -> bool:
        return channel in self.channels and self.channels[channel].configured()

    async def delivery_failed(self, ref: str, reason: str) -> Delivery | None:
        """A provider reported after the fact that a sent page never arrived (Twilio's status
        callback): the page goes to the same person by their other channels."""
        message = self._sent.pop(ref, None)
        if message is None or self._stale(self._epochs(message.incident_ids), strict=False):
            return None
        for other in other_channels(message.person, tried=[message.channel], usable=self._usable):
            again = dataclasses.replace(
                message,
                channel=other,
                key=failover_key(message.key, other),
                page_keys=tuple(failover_key(k, other) for k in message.keys),
            )
            result = await self.send(again)
            if result.ok:
                await self._record(
                    message.incident_ids,
                    f"{message.channel} page to {message.person.name} {reason}; paged by {other} instead",
                )
                return result
        await self._record(message.incident_ids, f"{message.channel} page to {message.person.name} {reason}")
        return None

    # -- after an ack ------------------------------------------------------------------------

    def settle(self, incident_id: int, what: str = "acknowledged") -> None:
        """The incident was acknowledged or resolved (`what`, as the timeline says it): what is
        still queued or retrying for it is dropped (a bundle keeps its other incidents)."""
        self._epoch[incident_id] = self._epoch.get(incident_id, 0) + 1
        self._settled[incident_id] = what
        for bundle in self._bundles.values():
            keep = []
            for message, future in bundle.pending:
                rest = tuple(i for i in message.incident_ids if i != incident_id)
                if not rest:
                    future.set_result(cancelled(what))
                    continue
                keep.append((dataclasses.replace(message, incident_ids=rest), future))
            bundle.pending = keep

    def _epochs(self, ids: Sequence[int]) -> dict[int, int]:
        return {i: self._epoch.get(i, 0) for i in ids}

    def _stale(self, epochs: dict[int, int], strict: bool = True) -> bool:
        """True when every incident of the message was settled since it was queued."""
        changed = [self._epoch.get(i, 0) != e for i, e in epochs.items()]
        return bool(changed) and all(changed) if strict else any(changed)

    async def _record(self, ids: Sequence[int], text: str) -> None:
        if self.record is not None:
            for i in ids:
                await self.record(i, text)

    async def aclose(self) -> None:
        for bundle in self._bundles.values():
            if bundle.flusher is not None:
                bundle.flusher.cancel()
            for _, future in bundle.pending:
                if not future.done():
                    future.set_result(Delivery(ok=False, error="shutting down"))
