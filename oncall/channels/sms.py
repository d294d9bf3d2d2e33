"""SMS (and WhatsApp) pages through the twilio SDK.

`ONCALL_TWILIO_FROM=whatsapp:+…` sends WhatsApp messages instead; the rest is the same. A page
is kept to two GSM-7 segments and ends with its reply codes (`1a` ack, `1r` resolve, `1s`
snooze, for incident 1; `1c` once a customer waiting for contact was contacted) and its ack
link. A delivered page is referred to as `"<SID>|<to>"`;
`update()` cannot edit an SMS, so it sends one short confirmation to that number instead.

The SDK's own `AsyncTwilioHttpClient` opens an aiohttp session it may leave unclosed on a
time-out and cannot report `Retry-After`; `_TwilioHttp` is the same client with one session per
request and the header kept where `send()` can read it.
"""

from __future__ import annotations

import base64
import contextvars
import re
from collections.abc import Iterable
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from oncall import i18n
from oncall.channels.base import (
    Delivery,
    PageMessage,
    Verb,
    refusal,
    sms_ref,
    sms_ref_number,
    transport_failure,
)
from oncall.core.gsm7 import MULTIPART_SEGMENT, SEGMENT, septets, to_gsm7
from oncall.core.pagetext import sms_codes

# ---------------------------------------------------------------------------------------------
# Fitting a text to its segments (the alphabet: `oncall.core.gsm7`)

MAX_SEGMENTS = 2
MIN_HEAD = 40  # septets a bundle keeps before its summary, for the shop and the first incident


def fit(text: str, tail: str = "", max_segments: int = MAX_SEGMENTS) -> str:
    """`text` shortened so that `text + tail` fits in `max_segments`; the tail (reply codes, the
    link) is what the person acts on, so it is never cut."""
    text, tail = to_gsm7(text), to_gsm7(tail)
    budget = SEGMENT if max_segments == 1 else MULTIPART_SEGMENT * max_segments
    room = budget - septets(tail)
    if septets(text) <= room:
        return text + tail
    while text and septets(text) > room - 3:
        text = text[:-1]
    return text.rstrip() + "..." + tail


def reply_codes(incident_ids: Iterable[int], lang: str | None = None) -> str:
    ids = list(incident_ids)
    if len(ids) == 1:
        return i18n.text(lang, "sms.codes_one", n=ids[0])
    shown = ", ".join(f"{n}a" for n in ids[:6])
    more = "..." if len(ids) > 6 else ""
    return i18n.text(lang, "sms.codes_many", codes=shown + more)


def page_sms(message: PageMessage) -> str:
    """The SMS text of a page, always within two segments: the core's `sms` text, cut (if it
    must be) before its tail (`sms_tail`: the reply codes and the link); else the title with
    codes and link appended."""
    tail = message.sms_tail or _own_codes(message)
    if tail and message.sms.endswith(tail):
        return fit(message.sms.removesuffix(tail), tail)
    link = f" {message.ack_url}" if message.ack_url else ""
    return fit(message.sms or message.title, f"\n{reply_codes(message.incident_ids, message.lang)}{link}")


def fits(message: PageMessage) -> bool:
    """Whether a bundle goes as one SMS: it is summarised (a count and one link for all), so it
    always does unless the link itself grows too long for the segments (incident ids too
    scattered to write as ranges): then it is split."""
    tail = message.sms_tail or _own_codes(message)
    room = MULTIPART_SEGMENT * MAX_SEGMENTS - septets(to_gsm7(tail))
    return room >= MIN_HEAD


def _own_codes(message: PageMessage) -> str:
    """For a message made without `sms_tail` whose text carries the core's own reply codes for
    one of its incidents (`core.pagetext.sms_codes`): its tail from them on."""
    at = max((message.sms.rfind(sms_codes(i, message.lang)) for i in message.incident_ids), default=-1)
    return message.sms[at:] if at >= 0 else ""


# ---------------------------------------------------------------------------------------------
# Replies: "1a", "1 r", "a 1", "ACK", "resolve 3"

_VERBS: dict[str, Verb] = {
    "a": "ack", "ack": "ack", "r": "resolve", "res": "resolve", "resolve": "resolve",
    "s": "snooze", "snooze": "snooze", "c": "contacted", "contacted": "contacted",
}  # fmt: skip
# ASCII digits that fit the store's integer (`\d` is any script's digit and any length).
_NUMBER_FIRST = re.compile(r"^#?([0-9]{1,18})\s*([a-z]+)$")
_VERB_FIRST = re.compile(r"^([a-z]+)\s*#?([0-9]{1,18})?$")


def parse_reply(body: str) -> tuple[Verb, int | None] | None:
    """(verb, incident id or None for "the newest"), or None when not understood."""
    text = " ".join(body.strip().lower().split()).rstrip(".!")
    m = _NUMBER_FIRST.match(text)
    if m and m.group(2) in _VERBS:
        return _VERBS[m.group(2)], int(m.group(1))
    m = _VERB_FIRST.match(text)
    if m and m.group(1) in _VERBS:
        number = m.group(2)
        return _VERBS[m.group(1)], int(number) if number else None
    return None


# ---------------------------------------------------------------------------------------------
# Sending

_retry_after: contextvars.ContextVar[str | None] = contextvars.ContextVar("twilio_retry_after", default=None)


class _TwilioHttp(AsyncTwilioHttpClient):  # type: ignore[misc]
    def __init__(self, timeout: float) -> None:
        super().__init__(pool_connections=False, timeout=timeout)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the SDK's signature)
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        kwargs: dict[str, Any] = {
            "params": params,
            "data": data,
            "headers": headers,
            "timeout": aiohttp.ClientTimeout(total=timeout or self.timeout),
            "allow_redirects": allow_redirects,
        }
        async with aiohttp.ClientSession() as session, session.request(method.upper(), url, **kwargs) as res:
            text = await res.text()
            _retry_after.set(res.headers.get("Retry-After"))
            return Response(res.status, text, res.headers)


def twilio_client(sid: str | None, token: str | None, api_url: str, timeout: float) -> Client:
    """The SDK's client on our aiohttp transport (time-out, Retry-After), sending to `api_url`
    (ONCALL_TWILIO_API_URL: the fake in tests); shared by SMS and voice pages."""
    client = Client(sid, token, http_client=_TwilioHttp(timeout))
    client.api.base_url = api_url
    return client


def failure(exc: BaseException) -> Delivery:
    if isinstance(exc, TwilioRestException):
        status = int(exc.status)
        return refusal(f"twilio: {status} {exc.code or ''} {exc.msg}".strip(), status, _retry_after.get())
    return transport_failure("twilio", exc)


class SmsChannel:
    name = "sms"

    def __init__(
        self,
        account_sid: str | None,
        auth_token: str | None,
        from_: str | None,
        *,
        api_url: str = "https://api.twilio.com",
        public_url: str = "http://localhost:8000",
        timeout: float = 10.0,
    ):
        self._sid = account_sid
        self._token = auth_token
        self.from_ = from_
        self._api_url = api_url.rstrip("/")
        self._status_url = f"{public_url.rstrip('/')}/twilio/status"
        self._timeout = timeout
        self._client: Client | None = None
        self._confirmed: set[tuple[str, str]] = set()  # (to, text) confirmations already sent

    def configured(self) -> bool:
        return bool(self._sid and self._token and self.from_)

    @property
    def whatsapp(self) -> bool:
        return bool(self.from_ and self.from_.startswith("whatsapp:"))

    def address(self, phone: str) -> str:
        return f"whatsapp:{phone}" if self.whatsapp and not phone.startswith("whatsapp:") else phone

    @property
    def client(self) -> Client:
        if self._client is None:
            if not self.configured():
                raise RuntimeError("ONCALL_TWILIO_ACCOUNT_SID / _AUTH_TOKEN / _FROM are not set")
            self._client = twilio_client(self._sid, self._token, self._api_url, self._timeout)
        return self._client

    async def prepare(self, message: PageMessage) -> None:
        """Builds the client (a fifth of a second) before the first page is marked `sending`
        (see `channels.base.Prepares`)."""
        if self.configured():
            self.client.messages  # noqa: B018 - built on first use

    async def send(self, message: PageMessage) -> Delivery:
        phone = message.person.phone
        if phone is None:
            return Delivery(ok=False, error=f"sms: {message.person.id} has no phone")
        return await self.send_text(phone, page_sms(message))

    async def send_text(self, phone: str, text: str) -> Delivery:
        to = self.address(phone)
        try:
            sent = await self.client.messages.create_async(
                to=to, from_=self.from_, body=text, status_callback=self._status_url
            )
        except (TimeoutError, TwilioException, aiohttp.ClientError) as exc:
            return failure(exc)
        return Delivery(ok=True, ref=sms_ref(sent.sid, to))

    async def update(self, ref: str, text: str) -> Delivery:
        """One short confirmation per number and text: a person paged twice by SMS for the same
        incident gets "acknowledged by …" once, not once per page."""
        to = sms_ref_number(ref)
        short = fit(text, max_segments=1)
        if (to, short) in self._confirmed:
            return Delivery(ok=True, ref=ref)
        self._confirmed.add((to, short))
        result = await self.send_text(to, short)
        if not result.ok:
            self._confirmed.discard((to, short))
        return result

    def mark_confirmed(self, phone: str, text: str) -> None:
        """The person already has this confirmation (as the answer to their own reply)."""
        self._confirmed.add((self.address(phone.removeprefix("whatsapp:")), fit(text, max_segments=1)))

    async def aclose(self) -> None:
        return None
