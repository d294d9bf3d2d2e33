"""The escalation service: the one place where the pure core meets the store and the channels.

Each piece of work is one store transaction that loads state, calls the core (`core.dispatch`,
`core.incident.step`) and writes the new state, its timer and its page records together; only
after it committed are messages sent (`service.effects`):

    route_events(now)   events with routed_at NULL ─► incidents (open / join / cancel / close),
                        in-hours posts, maintenance records                  (service.intake)
    fire_due(now)       incidents whose wake_at has come ─► Tick; the digest; promises whose
                        reminder, escalation or deadline has come      (service.timers, .promises)
    send_pages(now)     pages recorded `pending` ─► `sending` ─► channel ─► `sent` / `failed`,
                        fail-over, edits after an ack           (service.paging, .claims, .edits)
    act(...)            ack / resolve / snooze / customer contacted from any channel, the API
                        or the terminal                        (service.actions, .promises)
    incidents(), who()  what the API, the status page and the chat commands read; report(),
    weekly()            the closed-hours report and its 8 weeks            (service.views)

`Service` only builds the parts; its API is their methods (`service.act` is
`service.actions.act`, …). What they share (the store, the configuration, the clock, the
channels, background tasks) is `service.plumbing`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from oncall.channels.base import Channel
from oncall.channels.console import ConsoleChannel
from oncall.channels.delivery import WINDOW
from oncall.clock import Clock, system_clock
from oncall.core.models import Config
from oncall.service.actions import Actions
from oncall.service.effects import Effects
from oncall.service.intake import Intake
from oncall.service.notices import Notices, Reassurer
from oncall.service.paging import AckLink, Paging
from oncall.service.plumbing import Plumbing
from oncall.service.promises import Promises
from oncall.service.timers import Timers
from oncall.service.views import Views
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
        bundle_window: float = WINDOW,
        send_clock: Callable[[], float] | None = None,
        send_sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        """`bundle_window`, `send_clock` and `send_sleep` go to the delivery dispatcher
        (bundling, rate limits, retries; a window of 0 sends every page on its own); tests run
        them in virtual time. `clock` is now for
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
        self.dispatcher = self.paging.dispatcher
        if reassurer is not None:
            # Customer texts leave from the paging number: one limit per sender, pages first.
            reassurer.share_rate_limits(self.dispatcher.limiter)
        self.notices = Notices(self.plumbing, self.dispatcher, reassurer)
        self.promises = Promises(
            self.plumbing, self.dispatcher, reassurer, self.paging.edits, self.paging.ack_link
        )
        effects = Effects(self.plumbing, self.notices, self.paging.edits, self.dispatcher.settle)
        effects.promises = self.promises
        self.intake = Intake(self.plumbing, effects, self.promises)
        self.timers = Timers(self.plumbing, effects, self.promises)
        self.actions = Actions(self.plumbing, effects, self.dispatcher.settle, self.promises.contacted)
        self.views = Views(self.plumbing)

        # What the parts share, and the service's API: each part's own methods.
        self.db, self.settings, self.clock = db, settings, clock
        self.channels = self.plumbing.channels  # read live: a test or a reload may change them
        self.config = self.plumbing.config
        self.world = self.plumbing.world
        self.recover = self.paging.recover  # at start: interrupted sends become `unknown`
        self.route_events = self.intake.route_events
        self.route_round = self.intake.route_round
        self.fire_due = self.timers.fire_due
        self.read_ahead = self.timers.read_ahead
        self.next_due = self.timers.next_due
        self.send_pages = self.paging.send_pages
        self.page_undelivered = self.paging.page_undelivered
        self.act = self.actions.act
        self.incidents = self.views.incidents
        self.incident = self.views.incident
        self.incidents_in_message = self.views.incidents_in_message
        self.who = self.views.who
        self.report = self.views.report
        self.weekly = self.views.weekly
        self.tell_fallback = self.notices.tell_fallback
        self.notify_fallback = self.notices.notify_fallback
        self.wake_event = self.plumbing.wake_event
        self.wake = self.plumbing.wake  # the scheduler looks again now; safe from any thread
        self.drain = self.plumbing.drain  # waits for background sends, posts and updates
        self._update = self.paging.edits.update  # edits every delivered page of an incident

    @property
    def fire_batch(self) -> int:
        """Timers per transaction (the scheduler fires again while a batch comes back full)."""
        return self.timers.fire_batch

    def on_event_stored(self, event_id: int) -> None:
        self.plumbing.wake()

    async def aclose(self, within: float = 2.0) -> None:
        """Lets background work finish for `within` seconds, then cancels the rest (pages
        waiting in a bundle go back to `pending` for the next start)."""
        await self.plumbing.drain(within)
        await self.plumbing.cancel_background()
        await self.dispatcher.aclose()
