"""Messages that are not pages: an in-hours post or the morning digest to the team channel,
a notice to the owner (`shop.fallback`, e.g. "your edit was not applied"), and the hand-off of
customer reassurance to the `Reassurer`. They go through the same dispatcher as pages (rate
limits, retries) but belong to no page record and carry no ack link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from oncall.channels.base import PageMessage
from oncall.channels.delivery import Dispatcher
from oncall.channels.limits import RateLimiter
from oncall.core import pagetext
from oncall.core.customer_text import contact_of
from oncall.core.failover import other_channels
from oncall.core.gsm7 import to_gsm7
from oncall.core.incident import Incident
from oncall.core.models import Config, Event, Person
from oncall.service.plumbing import Plumbing

log = logging.getLogger("oncall.escalation")


class Reassurer(Protocol):
    async def reassure(
        self,
        incident_id: int,
        message: str,
        customers: list[Any],
        config: Config,
        now: datetime,
        record: Callable[[str], Any],
    ) -> None: ...

    def share_rate_limits(self, limiter: RateLimiter) -> None: ...

    async def follow_up(
        self,
        message: str,
        contact: Any,
        config: Config,
        now: datetime,
        record: Callable[[str], Any],
        kind: str,
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class Reassurance:
    """Customers of `incident` to reassure with `message` (a `[message.*]` table)."""

    incident: Incident
    message: str
    now: datetime
    events: tuple[Event, ...] | None = None  # None: every live event of the incident


class Notices:
    def __init__(self, plumbing: Plumbing, dispatcher: Dispatcher, reassurer: Reassurer | None) -> None:
        self.plumbing = plumbing
        self.dispatcher = dispatcher
        self.reassurer = reassurer

    async def post(self, target: str | None, text: str) -> None:
        """`text` to the team channel `target` ("slack:#soporte", …; None or unusable: the log)."""
        channel_name, _, where = (target or "console:").partition(":")
        person = Person(id=f"team:{target}", name=target or "the log")
        if channel_name == "telegram":
            try:
                person = replace(person, telegram=int(where))
            except ValueError:
                channel_name = "console"
        elif channel_name == "slack":
            person = replace(person, slack=where)
        elif channel_name == "sms":
            person = replace(person, phone=where)
        channel = self.plumbing.channels.get(channel_name)
        if channel is None or not channel.configured():
            channel_name = "console"
        key = f"post:{self.plumbing.clock().isoformat()}:{hash(text)}"
        result = await self.dispatcher.send(_notice(key, person, channel_name, text, to_gsm7(text)[:306]))
        if not result.ok:
            log.error("posting to %s failed: %s", target, result.error)

    async def tell_fallback(self, text: str, now: datetime) -> None:
        """A message for the owner (`shop.fallback`), by every channel they have, e.g. "your
        edit of escalation_rules.toml was not applied"."""
        config = self.plumbing.config()
        if config is None:
            log.error("%s (no configuration to find shop.fallback in)", text)
            return
        target = config.rules.shop.fallback
        pid = self.plumbing.world(config).on_call(target.name, now) if target.kind == "rota" else target.name
        person = config.people.get(pid or "")
        if person is None:
            log.error("%s (shop.fallback %s has nobody to tell)", text, target)
            return
        channels = self.plumbing.channels
        usable = other_channels(person, usable=lambda c: c in channels and channels[c].configured())
        for channel in usable or ["console"]:
            message = _notice(
                f"notice:{now.isoformat()}:{channel}", person, channel, text, pagetext.sms_fit(text, "")
            )
            result = await self.dispatcher.send(message)
            if not result.ok:
                log.error("telling %s by %s failed: %s", person.name, channel, result.error)

    def notify_fallback(self, text: str) -> None:
        """`tell_fallback` in the background (from synchronous code such as the config watcher)."""
        self.plumbing.spawn(self.tell_fallback(text, self.plumbing.clock()))

    async def reassure(self, r: Reassurance) -> None:
        config = self.plumbing.config()
        if self.reassurer is None or config is None:
            return
        customers = [contact_of(e) for e in (r.incident.live_events if r.events is None else r.events)]
        iid = r.incident.id

        async def record(text: str) -> None:
            await self.plumbing.record((iid,), text)

        await self.reassurer.reassure(iid, r.message, customers, config, r.now, record)
        self.plumbing.wake()  # each message sent made a promise: its timer may be the next one


def _notice(key: str, person: Person, channel: str, text: str, sms: str) -> PageMessage:
    """A message to `person` that is no page: no incident, no ack link."""
    return PageMessage(
        key=key,
        person=person,
        channel=channel,
        incident_ids=(),
        title=text.split("\n", 1)[0],
        body=text,
        sms=sms,
        ack_url="",
    )
