"""SMS or WhatsApp to a customer, through the same twilio client as staff pages.

Unlike a page, a customer text is sent as written (accents included, so it may travel as
UCS-2 in more segments: a customer reads "está", not "esta"), carries no reply codes and asks
for no status callback — replies and delivery reports are about pages, not customers.
`ONCALL_TWILIO_FROM=whatsapp:+…` makes it a WhatsApp message.

It leaves from the number the pages leave from, so it shares their rate limit (Twilio: 1 a
second per sender, SPEC §5) through the dispatcher's limiter, behind them: a flood of customer
texts never queues an on-call page behind it at Twilio (`RateLimiter.wait_behind`).
"""

from __future__ import annotations

import aiohttp
from twilio.base.exceptions import TwilioException

from oncall.channels.base import Delivery, sms_ref
from oncall.channels.limits import MAX_WAIT, RateLimiter, limit_keys
from oncall.channels.sms import SmsChannel, failure
from oncall.settings import Settings


class CustomerSms:
    def __init__(
        self, settings: Settings, *, timeout: float = 10.0, limiter: RateLimiter | None = None
    ) -> None:
        self.limiter = limiter  # the paging dispatcher's, shared by the service (see the module doc)
        self._keys = limit_keys("sms", None, settings.twilio_from)
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
        self._twilio = SmsChannel(
            settings.twilio_account_sid,
            token,
            settings.twilio_from,
            api_url=settings.twilio_api_url,
            public_url=settings.public_url,
            timeout=timeout,
        )

    def configured(self) -> bool:
        return self._twilio.configured()

    @property
    def name(self) -> str:
        """ "whatsapp" or "sms": what the timeline says the customer was reached by."""
        return "whatsapp" if self._twilio.whatsapp else "sms"

    async def send(self, phone: str, text: str) -> Delivery:
        if not self.configured():
            return Delivery(ok=False, error="sms: not configured")
        if self.limiter is None:
            return await self._send(phone, text)
        await self.limiter.wait_behind(self._keys)
        result = await self._send(phone, text)
        if result.retry_after:
            self.limiter.hold(self._keys, min(result.retry_after, MAX_WAIT))
        return result

    async def _send(self, phone: str, text: str) -> Delivery:
        to = self._twilio.address(phone.strip())
        try:
            sent = await self._twilio.client.messages.create_async(to=to, from_=self._twilio.from_, body=text)
        except (TimeoutError, TwilioException, aiohttp.ClientError) as exc:
            return failure(exc)
        return Delivery(ok=True, ref=sms_ref(sent.sid, to))
