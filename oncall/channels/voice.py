"""Voice pages: a phone call through the twilio SDK's Calls API (SPEC §5 Voice).

A page places one call from `ONCALL_TWILIO_VOICE_FROM` (else `ONCALL_TWILIO_FROM`). Twilio
then fetches what to say from `{ONCALL_PUBLIC_URL}/twilio/voice?t=TOKEN` and reports how the
call ended to `/twilio/voice/status` (`oncall.web.voice`): both addresses are given per call,
so the number needs no Voice URL of its own. TOKEN is the page's signed ack-link token: it
names the person and the incidents, so what the call says and what its keys do belong to
that person and those incidents only, across restarts (the key lives in the store).

Answering-machine detection (`machine_detection="Enable"`) tells a voicemail from a person,
so a call that only reached a mailbox counts as not reached. A delivered call is referred to
as `"<CallSid>|<to>"`, as an SMS is. A call cannot be edited: `update()` does nothing (the
person who pressed a key heard the answer; the other messages of the incident are edited).
"""

from __future__ import annotations

import aiohttp
from twilio.base.exceptions import TwilioException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from oncall import i18n
from oncall.channels.base import Delivery, PageMessage, sms_ref
from oncall.channels.sms import failure, twilio_client
from oncall.core import voicetext

VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/voice/status"
RING_SECONDS = 30  # long enough to wake someone, short of most carriers' voicemail pickup


def token_of(ack_url: str) -> str | None:
    """The signed token of a page's ack link `{public}/ack/{token}`."""
    _, sep, token = ack_url.rpartition("/ack/")
    return token if sep and token and "/" not in token else None


def fits(message: PageMessage) -> bool:
    """A call summarises a bundle (a count, the shop, since when), so any bundle fits one call."""
    return True


class VoiceChannel:
    name = "voice"

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
        self._public = public_url.rstrip("/")
        self._timeout = timeout
        self._client: Client | None = None

    def configured(self) -> bool:
        return bool(self._sid and self._token and self.from_)

    @property
    def client(self) -> Client:
        if self._client is None:
            if not self.configured():
                raise RuntimeError("ONCALL_TWILIO_ACCOUNT_SID / _AUTH_TOKEN / _VOICE_FROM are not set")
            self._client = twilio_client(self._sid, self._token, self._api_url, self._timeout)
        return self._client

    async def prepare(self, message: PageMessage) -> None:
        """Builds the client before the page is marked `sending` (`channels.base.Prepares`)."""
        if self.configured():
            self.client.calls  # noqa: B018 - built on first use

    def voice_url(self, token: str) -> str:
        return f"{self._public}{VOICE_PATH}?t={token}"

    async def send(self, message: PageMessage) -> Delivery:
        phone = message.person.phone
        if phone is None:
            return Delivery(ok=False, error=f"voice: {message.person.id} has no phone")
        token = token_of(message.ack_url)
        try:
            if token is None:
                # A page with no incidents to act on (`oncall test-page`): the call only speaks.
                lang = message.person.language
                shop = message.shop or message.title.partition(":")[0]
                said = VoiceResponse()
                said.say(voicetext.test_call(shop, message.person.name, lang), language=i18n.voice(lang))
                call = await self.client.calls.create_async(to=phone, from_=self.from_, twiml=str(said))
            else:
                call = await self.client.calls.create_async(
                    to=phone,
                    from_=self.from_,
                    url=self.voice_url(token),
                    method="POST",
                    status_callback=f"{self._public}{STATUS_PATH}",
                    status_callback_method="POST",
                    machine_detection="Enable",
                    timeout=RING_SECONDS,
                )
        except (TimeoutError, TwilioException, aiohttp.ClientError) as exc:
            return failure(exc)
        return Delivery(ok=True, ref=sms_ref(call.sid, phone))

    async def update(self, ref: str, text: str) -> Delivery:
        """Nothing to edit in a call, and nobody wants a second one to hear it was handled."""
        return Delivery(ok=True, ref=ref)

    async def aclose(self) -> None:
        return None
