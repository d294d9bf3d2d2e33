"""What every inbound action shares — the ack page, Telegram, Slack and Twilio: who may act
(only people in `rotas/people.toml`), finding them by chat id, Slack id or phone, inbound
dedup, the help-text rate limit, the refusal, and the app's state as a request sees it (its
clock, service, configuration and channels).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from fastapi import FastAPI, Request

from oncall import i18n
from oncall.clock import Clock
from oncall.core.models import Config, Person, person_language
from oncall.store import inbound as inbound_store
from oncall.store.database import Database

SNOOZE = timedelta(minutes=30)
HELP_PER_HOUR = 3

# ---------------------------------------------------------------------------------------------
# The service, as the inbound side sees it (oncall.service.Service)


class ServiceLike(Protocol):
    async def act(
        self,
        incident_id: int | None,
        actor: Person,
        verb: Any,
        via: str,
        now: datetime,
        snooze_for: timedelta | None = None,
    ) -> Any: ...

    async def incidents(self, open_only: bool = True) -> list[Any]: ...

    async def incident(self, incident_id: int) -> Any: ...

    async def incidents_in_message(self, channel: str, ref: str, person: str) -> list[int]: ...

    def who(self, now: datetime) -> list[Any]: ...

    async def page_undelivered(
        self, ref: str, reason: str, now: datetime, *, channel: str = "sms", noted: bool = False
    ) -> int: ...


def now_of(app: FastAPI) -> datetime:
    """The app's now, by the clock `create_app()` was given (`app.state.clock`, which a test may
    also set afterwards: every part reads it at each call)."""
    clock: Clock = app.state.clock
    return clock()


def clock(request: Request) -> datetime:
    """Now, by the app's clock."""
    return now_of(request.app)


def service_of(request: Request) -> ServiceLike | None:
    return getattr(request.app.state, "service", None)


def config_of(request: Request) -> Config | None:
    return getattr(request.app.state, "config", None)


def channel_of(request: Request, name: str) -> Any:
    """The channel instance the service pages with (so edits and replies share its limits), or
    a fresh one built from the settings."""
    service = service_of(request)
    channels = getattr(service, "channels", None) or {}
    if name in channels:
        return channels[name]
    cache = request.app.state.__dict__.setdefault("_paging_channels", {})
    if not cache:
        from oncall.channels import build_channels

        cache.update(build_channels(request.app.state.settings))
    return cache[name]


def find_person(
    config: Config | None, *, telegram: int | None = None, slack: str | None = None, phone: str | None = None
) -> Person | None:
    if config is None:
        return None
    if phone is not None:
        phone = normalise_phone(phone)
    for p in config.people.values():
        if telegram is not None and p.telegram == telegram:
            return p
        if slack is not None and p.slack == slack:
            return p
        if phone is not None and p.phone is not None and normalise_phone(p.phone) == phone:
            return p
    return None


def incident_number(text: str) -> int | None:
    """An incident number someone typed or sent: ASCII digits (`"²".isdigit()` is true, yet
    `int("²")` fails) that fit the store's 64-bit integer; else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def normalise_phone(phone: str) -> str:
    phone = phone.removeprefix("whatsapp:").strip()
    return "+" + "".join(c for c in phone if c.isdigit()) if phone.startswith("+") else phone


def lang_of(config: Config | None, person: Person | None = None) -> str:
    """What `person` reads (their language, else the shop's); nobody: the shop's."""
    return person_language(person, config.rules.shop if config is not None else None)


def say(config: Config | None, person: Person | None, key: str, **fields: object) -> str:
    """The catalogue's `key` as `person` (or, for nobody, the shop) reads it."""
    return i18n.text(lang_of(config, person), key, **fields)


def refusal(config: Config | None) -> str:
    """The answer to someone not in people.toml (SPEC §5), in the shop's language: they are
    nobody this shop knows, so their own language is unknown."""
    return say(config, None, "reply.refusal")


async def first_time(db: Database, source: str, delivery_id: str, now: datetime) -> bool:
    """True the first time `(source, delivery_id)` is seen; a redelivery is False."""
    return await db.transaction(lambda conn: inbound_store.first_time(conn, source, delivery_id, now))


async def help_allowed(db: Database, number: str, now: datetime) -> bool:
    """At most HELP_PER_HOUR help texts (or refusals) an hour to one number, so a confused
    sender — or a loop with an auto-responder — cannot turn into a flood of texts."""
    return await db.transaction(lambda conn: inbound_store.help_allowed(conn, number, now, HELP_PER_HOUR))
