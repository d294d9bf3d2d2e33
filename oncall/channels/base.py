"""The contract between the escalation service and each paging channel.

The core decides *what* to send (a `PageMessage`); a `Channel` only delivers it and, after an
acknowledgement, edits what it delivered. Alertmanager's `Notify() -> (retryable, error)`
contract is the model: a channel never decides escalation, it reports what happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import aiohttp

from oncall.core.models import Person

Verb = Literal["ack", "resolve", "snooze", "contacted"]


@dataclass(frozen=True, slots=True)
class PageMessage:
    """One message to one person on one channel; may bundle several incidents."""

    key: str  # idempotency key (incident, round, step, person, channel): sent at most once
    person: Person
    channel: str
    incident_ids: tuple[int, ...]
    title: str  # one line: "Tienda Ejemplo: 3 payment failures since 22:41"
    body: str  # the full text for rich channels (Telegram, Slack, console)
    sms: str  # the GSM-7 text kept to two segments, with reply codes and the ack link
    ack_url: str  # {ONCALL_PUBLIC_URL}/ack/{token}
    page_keys: tuple[str, ...] = ()  # the page records it carries (a bundle: several); () = (key,)
    sms_tail: str = ""  # the end of `sms` the person acts on (reply codes, the link): never cut
    shop: str = ""  # the shop's name, for the head of a bundle
    line: str = ""  # each incident on one line (what, order or ticket, amount), as a bundle names it
    lang: str | None = None  # what the person reads (`core.models.person_language`); None: English

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of the page records this message delivers."""
        return self.page_keys or (self.key,)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a channel reports for one send."""

    ok: bool
    ref: str | None = None  # provider's handle, to edit the message later (chat:msg, channel:ts, SID)
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds, from retry_after / Retry-After
    extra: dict[str, str] = field(default_factory=dict)
    settled: str | None = None  # not sent: its incidents were settled meanwhile ("acknowledged", …)
    taken_over: bool = False  # not sent here: another instance claimed its pages and sends them
    unmarked: bool = False  # not sent: the store failed before its pages were marked `sending`


def cancelled(what: str) -> Delivery:
    """Not sent, because the incident was `what` ("acknowledged", "resolved", "snoozed") since
    the page was decided: an ack stops the escalation (SPEC §5)."""
    return Delivery(ok=False, error=f"cancelled: the incident was {what}", settled=what)


def taken_over() -> Delivery:
    """Not sent by this instance: another one took the page over after this one's claim lapsed."""
    return Delivery(ok=False, error="taken over by another instance", taken_over=True)


def unmarked(reason: str) -> Delivery:
    """Not sent: the store could not mark the page `sending` (a database restart, a lock), so
    its channel was never called; it goes back to `pending`."""
    return Delivery(ok=False, error=f"not sent: {reason}", unmarked=True)


def sms_ref(sid: str, to: str) -> str:
    """A delivered SMS (or WhatsApp message) as its pages and Twilio's status callbacks name it:
    "<MessageSid>|<to>"."""
    return f"{sid}|{to}"


def sms_ref_number(ref: str) -> str:
    """The number an SMS delivery (`sms_ref`) went to."""
    return ref.partition("|")[2]


def refusal(error: str, status: int, retry_after: str | None) -> Delivery:
    """A provider's HTTP refusal: 429 (after its Retry-After, else 1 s) and 5xx are worth another try."""
    return Delivery(
        ok=False,
        error=error,
        retryable=status == 429 or status >= 500,
        retry_after=(float(retry_after) if retry_after else 1.0) if status == 429 else None,
    )


def transport_failure(provider: str, exc: BaseException) -> Delivery:
    """No answer from the provider: time-outs and connection errors are worth another try."""
    if isinstance(exc, TimeoutError):
        return Delivery(ok=False, error=f"{provider}: timed out", retryable=True)
    retryable = isinstance(exc, aiohttp.ClientError)
    return Delivery(ok=False, error=f"{provider}: {type(exc).__name__}: {exc}", retryable=retryable)


@runtime_checkable
class Prepares(Protocol):
    """A channel with work to do before a page that sends nothing to anyone (Slack: finding
    the person's DM channel). It runs before the page is marked `sending`, so that a crash in
    that state, whose page is never sent again, covers only the call that delivers."""

    async def prepare(self, message: PageMessage) -> None:
        """Never raises: `send` does the same work again and reports what fails."""
        ...


class Channel(Protocol):
    name: str

    def configured(self) -> bool:
        """False when credentials are missing: its pages then go to the console channel."""
        ...

    async def send(self, message: PageMessage) -> Delivery: ...

    async def update(self, ref: str, text: str) -> Delivery:
        """Edit a delivered page (Telegram/Slack) or send a short follow-up (SMS)."""
        ...


@runtime_checkable
class OffersContacted(Protocol):
    """A channel whose edit can carry a "Customer contacted" button (Telegram, Slack): after an
    ack, while a customer of the incident waits for the contact they were promised."""

    async def update_offering_contacted(
        self, ref: str, text: str, incident_id: int, lang: str | None = None
    ) -> Delivery: ...


# What the dispatcher is given by the service to reach the store and the ack links.
Relink = Callable[[Person, tuple[int, ...]], str]  # a fresh ack link covering a bundle
Record = Callable[[int, str], Awaitable[None]]  # append a timeline entry to an incident
# Which of these incidents were settled meanwhile (perhaps by another process), and how.
Check = Callable[[tuple[int, ...]], Awaitable[Mapping[int, str]]]


@dataclass(frozen=True, slots=True)
class Claimed:
    """What `claim` answers right before a message goes out: the page keys this process may
    send, and which incidents were settled meanwhile (the other keys: taken over)."""

    held: set[str]
    settled: Mapping[int, str]
    unavailable: str | None = None  # the store could not mark them: none may be sent now


Claim = Callable[[Sequence[str], Sequence[int]], Awaitable[Claimed]]
# The first slot of a rate-limit bucket shared with other instances at or after a time (wall
# seconds), taken: (bucket, not before, interval) -> when (`oncall.store.slots`).
Shared = Callable[[str, float, float], Awaitable[float]]
