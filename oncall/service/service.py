"""The escalation service: the one place where the pure core meets the store and the channels.

Each piece of work is one store transaction that loads state, calls the core (`core.dispatch`,
`core.incident.step`) and writes the new state, its timer and its page records together; only
after it committed are messages sent (`service.effects`):

    route_events(now)   events with routed_at NULL ─► incidents (open / join / cancel / close),
                        in-hours posts, maintenance records                  (service.intake)
    fire_due(now)       incidents whose wake_at has come ─► Tick; the digest (service.timers)
    send_pages(now)     pages recorded `pending` ─► `sending` ─► channel ─► `sent` / `failed`,
                        fail-over, edits after an ack           (service.paging, .claims, .edits)
    act(...)            ack / resolve / snooze from any channel, the API or the terminal
                                                                            (service.actions)
    incidents(), who()  what the API, the status page and the chat commands read (service.views)

`Service` only builds the parts and hands each call to its part; what they share (the store,
the configuration, the clock, the channels, background tasks) is `service.plumbing`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from oncall.channels.base import Channel
from oncall.channels.console import ConsoleChannel
from oncall.channels.delivery import Dispatcher
from oncall.clock import Clock, system_clock
from oncall.core.incident import World
from oncall.core.models import Config, Person
from oncall.service.actions import Actions, ActResult, Verb
from oncall.service.effects import Effects
from oncall.service.intake import Intake
from oncall.service.notices import Notices, Reassurer
from oncall.service.paging import AckLink, Paging
from oncall.service.plumbing import Plumbing
from oncall.service.timers import Timers
from oncall.service.views import IncidentView, OnCallView, Views
from oncall.settings import Settings
from oncall.store.database import Database


class Service:
    def __init__(
        self,
        db: Database,
        config_provider: Callable[[], Config | None],
        channels: Mapping[str, Channel],
        settings: Settings,
        reassurer: Reassurer | None = None,
        *,
        ack_link: AckLink | None = None,
        bundle_window: float = 60.0,
        send_clock: Callable[[], float] | None = None,
        send_sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        """`bundle_window`, `send_clock` and `send_sleep` go to the delivery dispatcher
        (bundling, rate limits, retries); tests run them in virtual time. `clock` is now for
        everything the service does on its own (the scheduler's default, timeline notes, ack
        links); the app passes its own."""
        self.console = ConsoleChannel()
        self.plumbing = Plumbing(db, config_provider, {"console": self.console, **channels}, settings, clock)
        self.paging = Paging(
            self.plumbing,
            ack_link=ack_link,
            bundle_window=bundle_window,
            send_clock=send_clock,
            send_sleep=send_sleep,
        )
        settle = self.dispatcher.settle
        if reassurer is not None:
            # Customer texts leave from the paging number: one limit per sender, pages first.
            reassurer.share_rate_limits(self.dispatcher.limiter)
        self.notices = Notices(self.plumbing, self.dispatcher, reassurer)
        effects = Effects(self.plumbing, self.notices, self.paging.edits, settle)
        self.intake = Intake(self.plumbing, effects)
        self.timers = Timers(self.plumbing, effects)
        self.actions = Actions(self.plumbing, effects, settle)
        self.views = Views(self.plumbing)

    # -- what the parts share ----------------------------------------------------------------

    @property
    def db(self) -> Database:
        return self.plumbing.db

    @property
    def settings(self) -> Settings:
        return self.plumbing.settings

    @property
    def clock(self) -> Clock:
        return self.plumbing.clock

    @property
    def channels(self) -> dict[str, Channel]:
        """The channels pages go out by, read live (a test or a reload may change them)."""
        return self.plumbing.channels

    @property
    def dispatcher(self) -> Dispatcher:
        return self.paging.dispatcher

    @property
    def fire_batch(self) -> int:
        return self.timers.fire_batch

    def config(self) -> Config | None:
        return self.plumbing.config()

    def world(self, config: Config) -> World:
        return self.plumbing.world(config)

    # -- the scheduler's round ---------------------------------------------------------------

    async def recover(self, now: datetime) -> int:
        """At start: pages whose send was interrupted are marked `unknown` (not re-sent)."""
        return await self.paging.recover(now)

    async def route_events(self, now: datetime, limit: int = 200) -> int:
        return await self.intake.route_events(now, limit)

    async def fire_due(self, now: datetime, limit: int | None = None) -> int:
        """Runs every timer due at `now` (at most `limit`, default `fire_batch`, per call)."""
        return await self.timers.fire_due(now, limit)

    async def read_ahead(self, until: datetime) -> int:
        return await self.timers.read_ahead(until)

    async def next_due(self) -> datetime | None:
        return await self.timers.next_due()

    async def send_pages(self, now: datetime) -> int:
        """Sends every `pending` page; returns how many were handed over."""
        return await self.paging.send_pages(now)

    # -- from outside ------------------------------------------------------------------------

    async def act(
        self,
        incident_id: int | None,
        actor: Person,
        verb: Verb,
        via: str,
        now: datetime,
        snooze_for: timedelta | None = None,
    ) -> ActResult:
        """Acknowledge, resolve or snooze. `incident_id` None = the newest incident paged to
        `actor`."""
        return await self.actions.act(incident_id, actor, verb, via, now, snooze_for)

    async def page_undelivered(self, ref: str, reason: str, now: datetime) -> int:
        """A sent SMS reported undelivered (Twilio's status callback): fail-over."""
        return await self.paging.page_undelivered(ref, reason, now)

    async def incidents(
        self, open_only: bool = True, *, state: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[IncidentView]:
        return await self.views.incidents(open_only, state=state, limit=limit, before=before)

    async def incident(self, incident_id: int) -> IncidentView | None:
        return await self.views.incident(incident_id)

    def who(self, now: datetime) -> list[OnCallView]:
        return self.views.who(now)

    async def tell_fallback(self, text: str, now: datetime) -> None:
        """A message for the owner (`shop.fallback`), by every channel they have."""
        await self.notices.tell_fallback(text, now)

    def notify_fallback(self, text: str) -> None:
        """`tell_fallback` in the background (from synchronous code such as the config watcher)."""
        self.notices.notify_fallback(text)

    async def _update(self, incident_id: int, text: str, only: str | None = None) -> None:
        """Edits every delivered page of the incident to `text` (`service.edits`)."""
        await self.paging.edits.update(incident_id, text, only)

    # -- waking and stopping -----------------------------------------------------------------

    def wake_event(self) -> asyncio.Event:
        return self.plumbing.wake_event()

    def wake(self) -> None:
        """Something changed (an event stored, an ack): the scheduler looks again now. Safe to
        call from any thread."""
        self.plumbing.wake()

    def on_event_stored(self, event_id: int) -> None:
        self.plumbing.wake()

    async def drain(self, within: float | None = None) -> None:
        """Waits for background sends, posts and updates (tests; graceful shutdown)."""
        await self.plumbing.drain(within)

    async def aclose(self, within: float = 2.0) -> None:
        """Lets background work finish for `within` seconds, then cancels the rest (pages
        waiting in a bundle go back to `pending` for the next start)."""
        await self.plumbing.drain(within)
        await self.plumbing.cancel_background()
        await self.dispatcher.aclose()
