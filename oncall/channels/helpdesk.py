"""Public replies on helpdesk tickets: the customer who wrote to Zendesk or Freshdesk gets the
reassurance as an answer on their own ticket, in the thread they already watch.

- Zendesk: `PUT {ONCALL_ZENDESK_URL}/api/v2/tickets/{id}.json` with a public comment; basic
  auth `{ONCALL_ZENDESK_EMAIL}/token` : `{ONCALL_ZENDESK_API_TOKEN}` (an API token).
- Freshdesk: `POST {ONCALL_FRESHDESK_URL}/api/v2/tickets/{id}/reply` (replies are always public
  and HTML); basic auth `{ONCALL_FRESHDESK_API_KEY}` : `X`.

A 429 or a 5xx is retryable (honouring `Retry-After`); a time-out or connection failure is
retryable too; any other 4xx (wrong credentials, no such ticket) is not.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from oncall.channels.base import Delivery
from oncall.clock import Clock, system_clock
from oncall.settings import Settings

Helpdesk = Literal["zendesk", "freshdesk"]
HELPDESKS: tuple[Helpdesk, ...] = ("zendesk", "freshdesk")

# Both helpdesks number tickets with integers; anything else would be spliced into the URL path.
_TICKET_ID = re.compile(r"^\d{1,20}$")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds at `now`: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def freshdesk_html(text: str) -> str:
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


class HelpdeskReplier:
    """Posts public replies; one `httpx.AsyncClient` per call so nothing is left open."""

    name = "helpdesk"

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = system_clock,
    ):
        self.settings = settings
        self.clock = clock  # an HTTP-date Retry-After is read against it
        self.timeout = timeout
        self.transport = transport

    def configured(self, helpdesk: str) -> bool:
        s = self.settings
        if helpdesk == "zendesk":
            return bool(s.zendesk_url and s.zendesk_email and s.zendesk_api_token)
        if helpdesk == "freshdesk":
            return bool(s.freshdesk_url and s.freshdesk_api_key)
        return False

    def _request(
        self, helpdesk: Helpdesk, ticket_id: str, text: str
    ) -> tuple[httpx.Request, httpx.BasicAuth]:
        s = self.settings
        if helpdesk == "zendesk":
            assert s.zendesk_url and s.zendesk_email and s.zendesk_api_token
            auth = httpx.BasicAuth(f"{s.zendesk_email}/token", s.zendesk_api_token.get_secret_value())
            url = f"{s.zendesk_url.rstrip('/')}/api/v2/tickets/{ticket_id}.json"
            body: dict[str, object] = {"ticket": {"comment": {"body": text, "public": True}}}
            request = httpx.Request("PUT", url, json=body)
        else:
            assert s.freshdesk_url and s.freshdesk_api_key
            auth = httpx.BasicAuth(s.freshdesk_api_key.get_secret_value(), "X")
            url = f"{s.freshdesk_url.rstrip('/')}/api/v2/tickets/{ticket_id}/reply"
            request = httpx.Request("POST", url, json={"body": freshdesk_html(text)})
        return request, auth

    async def reply(self, helpdesk: str, ticket_id: str, text: str) -> Delivery:
        """A public reply with `text` on the ticket; `ref` is "zendesk:123" on success."""
        if helpdesk not in HELPDESKS or not self.configured(helpdesk):
            return Delivery(ok=False, error=f"{helpdesk}: not configured")
        ticket_id = str(ticket_id).strip()
        if not _TICKET_ID.match(ticket_id):
            return Delivery(ok=False, error=f"{helpdesk}: {ticket_id!r} is not a ticket id")
        which: Helpdesk = "zendesk" if helpdesk == "zendesk" else "freshdesk"
        request, auth = self._request(which, ticket_id, text)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                response = await client.send(request, auth=auth)
        except httpx.TimeoutException:
            return Delivery(ok=False, error=f"{helpdesk}: timed out after {self.timeout:g} s", retryable=True)
        except httpx.TransportError as exc:
            return Delivery(ok=False, error=f"{helpdesk}: {type(exc).__name__}", retryable=True)
        if response.is_success:
            return Delivery(ok=True, ref=f"{helpdesk}:{ticket_id}")
        status = response.status_code
        return Delivery(
            ok=False,
            error=f"{helpdesk}: HTTP {status} {_detail(response)}".strip(),
            retryable=status == 429 or status >= 500,
            retry_after=retry_after_seconds(response.headers.get("Retry-After"), self.clock()),
        )


def _detail(response: httpx.Response) -> str:
    # The helpdesk's own words ("RecordNotFound", "Couldn't authenticate you"), never our request.
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("description", "error", "message"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:200]
    return ""
