"""Delivery discipline around the channels (SPEC §5): bundling, rate limits, retries, fail-over.

- `Dispatcher.send(page)`: bundling per person and channel. The first page goes at once and
  opens a 2 s window; pages falling due in it wait until it closes and go as one message;
  later ones go as they fall due, at the per-chat limit, coalescing whatever waits. A message
  takes what fits (`channels.bundle`: Telegram's 4,096 characters and 100 buttons, Slack's 50
  blocks); the rest goes in the next, one per-chat slot later; an SMS summarises. Right
  before the call, `claim` (the pages this process may still send) decides who is named;
  each try waits for its rate-limit slot (`channels.limits`, the per-chat slot shared by
  instances through `shared`) and is retried as `channels.retry` says.
- `Dispatcher.delivery_failed(ref, reason)`: a sent page reported undelivered later (Twilio's
  status callback) goes by the person's other channels.
- `Dispatcher.settle(incident_id)`: after an ack, waiting and retrying pages of that incident
  are dropped; nothing more goes out.

Why the window opens at the first page and not at the last: a flood that keeps coming must
not keep its first incidents waiting. Why a full message goes before the window closes: it
cannot take more, and the next one needs its own per-chat slot anyway.

Time is injected (`clock`, `sleep`), so tests run a flood of pages in virtual time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from oncall.channels.base import (
    Channel,
    Check,
    Claim,
    Delivery,
    OffersContacted,
    PageMessage,
    Prepares,
    Record,
    Relink,
    Shared,
    cancelled,
    taken_over,
    unmarked,
)
from oncall.channels.bundle import Fits, fits_for, merge
from oncall.channels.limits import (
    MAX_WAIT,
    Clock,
    RateLimiter,
    Sleep,
    limit_keys,
    message_target,
    ref_target,
)
from oncall.channels.retry import retrying
from oncall.core.failover import failover_key, other_channels

log = logging.getLogger("oncall.delivery")

WINDOW = 2.0  # seconds: pages for one person and channel due this close share a message


@dataclass(eq=False)
class _Waiting:
    """One page handed to `send`, until its message is delivered."""

    message: PageMessage
    future: asyncio.Future[Delivery]
    epochs: dict[int, int]  # incident -> times settled when it was handed over


@dataclass
class _Chat:
    """One person on one channel: what waits for the next message."""

    waiting: list[_Waiting] = field(default_factory=list)
    closes: float = float("-inf")  # the end of the window the first page opened
    gather: bool = False  # the first page went: what falls due in the window waits for its end
    full: asyncio.Event = field(default_factory=asyncio.Event)  # more waits than one message takes
    runner: asyncio.Task[None] | None = None


class Dispatcher:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        window: float = WINDOW,
        attempts: int = 3,
        max_wait: float = MAX_WAIT,
        relink: Relink | None = None,
        record: Record | None = None,
        sms_sender: str | None = None,
        check: Check | None = None,
        claim: Claim | None = None,
        shared: Shared | None = None,
        wall: Clock = time.time,
    ) -> None:
        """`window` 0 sends every page on its own (the rate limits still apply). `shared`: the
        per-chat limits are shared with other instances, in `wall` seconds."""
        self.channels = channels
        self.check = check
        self.claim = claim
        self.shared = shared
        self.wall = wall
        self.clock = clock
        self.sleep = sleep
        self.window = window
        self.attempts = attempts
        self.max_wait = max_wait
        self.relink = relink
        self.record = record
        self.sms_sender = sms_sender
        self.limiter = RateLimiter(clock, sleep)
        self._chats: dict[tuple[str, str], _Chat] = {}
        self._epoch: dict[int, int] = {}  # incident -> times settled; a page from an older epoch is stale
        self._sent: dict[str, list[PageMessage]] = {}  # delivery ref -> its pages, for a later failure report
        self._settled: dict[int, str] = {}  # incident -> what settled it last ("resolved", …)

    # -- bundling ----------------------------------------------------------------------------

    async def send(self, message: PageMessage) -> Delivery:
        """Sends `message`, bundled with other pages to the same person and channel (see the
        module doc); may wait a few seconds, so callers run their sends concurrently."""
        page = _Waiting(
            message, asyncio.get_running_loop().create_future(), self._epochs(message.incident_ids)
        )
        if self.window <= 0:
            await self._send_part([page], (), reserved=False)
            return await page.future
        key = (message.person.id, message.channel)
        chat = self._chats.setdefault(key, _Chat())
        chat.waiting.append(page)
        if chat.runner is None:
            now = self.clock()
            # Nothing under way for this chat. Inside the window a page before it opened, this
            # one waits for its end; else it goes at its first slot and opens a window.
            chat.gather = now < chat.closes
            if not chat.gather:
                chat.closes = now + self.window
            chat.full.clear()
            chat.runner = asyncio.create_task(self._run(chat))
        elif chat.gather and not chat.full.is_set() and not self._all_fit(chat):
            chat.full.set()
        return await page.future

    async def _run(self, chat: _Chat) -> None:
        try:
            while chat.waiting:
                if chat.gather and self.clock() < chat.closes and not chat.full.is_set():
                    await self._until(chat.closes, chat.full)
                if not chat.waiting:
                    break  # settled meanwhile
                message = chat.waiting[0].message
                keys = limit_keys(message.channel, message_target(message), self.sms_sender)
                await self._until(await self._slot(keys))
                if not self._all_fit(chat):  # else `claim` drops them, right before the call
                    await self._drop_settled(chat)
                part = self._take(chat)
                chat.gather = True
                chat.full.clear()
                if chat.waiting and not self._all_fit(chat):
                    chat.full.set()  # what is left fills another message: no reason to wait
                if part:
                    await self._send_part(part, keys, reserved=True, more=len(chat.waiting))
        except Exception as exc:  # never leave a waiting sender hanging
            for page in chat.waiting:
                _resolve(page, Delivery(ok=False, error=f"{type(exc).__name__}: {exc}"))
            chat.waiting.clear()
        finally:
            chat.runner = None

    async def _slot(self, keys: Sequence[tuple[str, float]]) -> float:
        """The next send slot of these buckets, taken: this process's, and the per-chat one
        shared with other instances (`shared`) when there is one."""
        at = self.limiter.reserve(keys) if keys else self.clock()
        if self.shared is None or not keys:
            return at
        key, interval = keys[-1]  # the per-chat bucket (`limit_keys` lists it last)
        now, wall = self.clock(), self.wall()
        try:
            taken = await self.shared(key, wall + (at - now), interval)
        except Exception as exc:  # the store is down: this process's own limit still holds
            log.warning("shared send slot for %s not taken (%s); this instance's own limit applies", key, exc)
            return at
        # Bounded: a wall clock that jumped (an NTP step) cannot stall the chat.
        later = now + min(taken - wall, self.max_wait)
        if later <= at:
            return at
        self.limiter.push(keys, later)
        return later

    async def _until(self, at: float, wake: asyncio.Event | None = None) -> None:
        """Sleeps until the clock reaches `at`, or until `wake` is set."""
        delay = at - self.clock()
        if delay <= 0:
            return
        if wake is None:
            await self.sleep(delay)
            return
        sleeper = asyncio.ensure_future(self.sleep(delay))
        waker = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _drop_settled(self, chat: _Chat) -> None:
        """An ack in another process (a second instance, `oncall ack`) while pages waited
        reached the store, not this dispatcher: when more waits than one message holds, what
        it settled is dropped before the message is made, so that it is filled with pages that
        still page."""
        if self.check is None:
            return
        waiting = tuple(dict.fromkeys(i for p in chat.waiting for i in p.message.incident_ids))
        if not waiting:
            return
        try:
            settled = await self.check(waiting)
        except Exception:
            settled = {}
        for incident_id, what in settled.items():
            self.settle(incident_id, what)

    def _take(self, chat: _Chat) -> list[_Waiting]:
        """The oldest waiting pages that fit one message (at least one: a single page that is
        too long is cut by its channel); they leave the queue."""
        chat.waiting = [p for p in chat.waiting if not p.future.done()]  # cancelled meanwhile
        if not chat.waiting:
            return []
        fits = fits_for(chat.waiting[0].message.channel)
        n = len(chat.waiting)
        if fits is not None and not self._fit(chat.waiting, fits):
            lo, hi = 1, n - 1  # 1 fits by definition, n does not: the largest k that fits
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._fit(chat.waiting[:mid], fits, more=n - mid):
                    lo = mid
                else:
                    hi = mid - 1
            n = lo
        part, chat.waiting = chat.waiting[:n], chat.waiting[n:]
        return part

    def _all_fit(self, chat: _Chat) -> bool:
        if not chat.waiting:
            return True
        fits = fits_for(chat.waiting[0].message.channel)
        return fits is None or self._fit(chat.waiting, fits)

    def _fit(self, pages: Sequence[_Waiting], fits: Fits, more: int = 0) -> bool:
        return len(pages) <= 1 or fits(self._render([p.message for p in pages], more))

    def _render(self, messages: Sequence[PageMessage], more: int = 0) -> PageMessage:
        ids = tuple(dict.fromkeys(i for m in messages for i in m.incident_ids))
        link = self.relink(messages[0].person, ids) if self.relink and len(ids) > 1 else None
        return merge(messages, link, more)

    # -- one message -------------------------------------------------------------------------

    async def _send_part(
        self, part: Sequence[_Waiting], keys: Sequence[tuple[str, float]], *, reserved: bool, more: int = 0
    ) -> None:
        """Sends `part` as one message and resolves each page's future. `reserved`: the first
        try's rate-limit slot is already taken (the bundle waited for it)."""
        first = part[0].message
        channel = self.channels.get(first.channel)
        if channel is None or not channel.configured():
            for page in part:
                _resolve(page, Delivery(ok=False, error=f"{first.channel}: not configured"))
            return
        keys = keys or limit_keys(first.channel, message_target(first), self.sms_sender)
        live = list(part)
        tries = 0

        async def attempt() -> Delivery:
            nonlocal live, tries
            tries += 1
            for page in live:
                if self._stale(page.epochs):
                    what = self._settled.get(next(iter(page.epochs)), "acknowledged")
                    _resolve(page, cancelled(what))
            live = [p for p in live if not p.future.done()]
            if live and isinstance(channel, Prepares):
                # Sends nothing to anyone: before the line, so a crash after it is the delivery alone.
                await channel.prepare(self._render([p.message for p in live], more))
            if live and self.claim is not None:
                live = await self._claimed(live)
            if not live:
                return Delivery(ok=False, error="nothing left to send")
            if tries > 1 or not reserved:
                await self.limiter.wait(keys)
            result = await channel.send(self._render([p.message for p in live], more))
            if result.retry_after:
                self.limiter.hold(keys, min(result.retry_after, self.max_wait))
            return result

        try:
            result = await self._retrying(attempt)
        except Exception as exc:  # never leave a waiting sender hanging
            result = Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")
        if result.ok and result.ref:
            self._remember(result.ref, [p.message for p in live])
        for page in live:
            _resolve(page, result)

    async def _claimed(self, pages: list[_Waiting]) -> list[_Waiting]:
        """The pages this process may still send right now (marked `sending`); the others are
        told why not: settled meanwhile, or taken over by another instance."""
        assert self.claim is not None
        keys = [k for p in pages for k in p.message.keys]
        ids = list(dict.fromkeys(i for p in pages for i in p.message.incident_ids))
        claimed = await self.claim(keys, ids)
        if claimed.unavailable is not None:
            for page in pages:
                _resolve(page, unmarked(claimed.unavailable))
            return []
        keep = []
        for page in pages:
            if any(k in claimed.held for k in page.message.keys):
                keep.append(page)
                continue
            settled = [claimed.settled[i] for i in page.message.incident_ids if i in claimed.settled]
            if settled and len(settled) == len(page.message.incident_ids):
                for incident_id in page.message.incident_ids:
                    self.settle(incident_id, claimed.settled[incident_id])
                _resolve(page, cancelled(settled[0]))
            else:
                _resolve(page, taken_over())
        return keep

    def _remember(self, ref: str, messages: list[PageMessage], keep: int = 10_000) -> None:
        self._sent[ref] = messages
        while len(self._sent) > keep:
            del self._sent[next(iter(self._sent))]

    async def update(
        self, channel_name: str, ref: str, text: str, contacted: int | None = None, lang: str | None = None
    ) -> Delivery:
        """Edits a delivered page (or, for SMS, confirms), with the same retries and limits;
        `contacted`: with a "Customer contacted" button for that incident (labelled in `lang`),
        where the channel has buttons."""
        channel = self.channels.get(channel_name)
        if channel is None or not channel.configured():
            return Delivery(ok=False, error=f"{channel_name}: not configured")
        keys = limit_keys(channel_name, ref_target(channel_name, ref), self.sms_sender)

        async def attempt() -> Delivery:
            await self.limiter.wait(keys)
            if contacted is not None and isinstance(channel, OffersContacted):
                return await channel.update_offering_contacted(ref, text, contacted, lang)
            return await channel.update(ref, text)

        return await self._retrying(attempt)

    async def _retrying(self, attempt: Callable[[], Awaitable[Delivery]]) -> Delivery:
        return await retrying(attempt, self.attempts, self.max_wait, self.sleep)

    # -- fail-over -------------------------------------------------------------------------

    def _usable(self, channel: str) -> bool:
        return channel in self.channels and self.channels[channel].configured()

    async def delivery_failed(self, ref: str, reason: str) -> Delivery | None:
        """A provider reported after the fact that a sent message never arrived (Twilio's
        status callback): its pages go to the same person by their other channels."""
        pages = [
            m for m in self._sent.pop(ref, []) if not self._stale(self._epochs(m.incident_ids), strict=False)
        ]
        if not pages:
            return None
        first = pages[0]
        ids = list(dict.fromkeys(i for m in pages for i in m.incident_ids))
        for other in other_channels(first.person, tried=[first.channel], usable=self._usable):
            again = [
                dataclasses.replace(
                    m,
                    channel=other,
                    key=failover_key(m.key, other),
                    page_keys=tuple(failover_key(k, other) for k in m.keys),
                )
                for m in pages
            ]
            results = await asyncio.gather(*(self.send(m) for m in again))
            if any(r.ok for r in results):
                await self._record(
                    ids, f"{first.channel} page to {first.person.name} {reason}; paged by {other} instead"
                )
                return next(r for r in results if r.ok)
        await self._record(ids, f"{first.channel} page to {first.person.name} {reason}")
        return None

    # -- after an ack ------------------------------------------------------------------------

    def settle(self, incident_id: int, what: str = "acknowledged") -> None:
        """The incident was acknowledged or resolved (`what`, as the timeline says it): what is
        still waiting or retrying for it is dropped (a bundle keeps its other incidents)."""
        self._epoch[incident_id] = self._epoch.get(incident_id, 0) + 1
        self._settled[incident_id] = what
        for chat in self._chats.values():
            keep = []
            for page in chat.waiting:
                m = page.message
                if incident_id not in m.incident_ids:
                    keep.append(page)
                    continue
                rest = tuple(i for i in m.incident_ids if i != incident_id)
                if not rest:
                    _resolve(page, cancelled(what))
                    continue
                page.message = dataclasses.replace(m, incident_ids=rest)
                keep.append(page)
            chat.waiting = keep

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
        for chat in self._chats.values():
            if chat.runner is not None:
                chat.runner.cancel()
            for page in chat.waiting:
                _resolve(page, Delivery(ok=False, error="shutting down"))
            chat.waiting.clear()


def _resolve(page: _Waiting, result: Delivery) -> None:
    if not page.future.done():
        page.future.set_result(result)
