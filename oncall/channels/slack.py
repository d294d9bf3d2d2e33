"""Slack pages through slack-sdk: a direct message with Block Kit buttons.

Each button's `action_id` is `"<verb>:<incident id>"` (unique within the message, as Slack
requires) and its `value` the incident id. A delivered page is referred to as
`"<channel>:<ts>"`, which is what `chat.update` needs to edit it after an ack.

A bundle is its text in sections of at most 3,000 characters (split between lines), then an
actions block of three buttons per incident. Slack takes at most 50 blocks in a message and
refuses blocks whose text is too long altogether (`msg_blocks_too_long`, seen from about
13,000 characters, below the documented 40,000 for `text`): `fits` keeps a bundle within both,
so that the dispatcher splits it instead of it being refused or cut.
"""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from oncall import i18n
from oncall.channels.base import Delivery, PageMessage, Verb, refusal, transport_failure

MAX_SECTION = 3000  # Slack's limit for a section's text
MAX_BLOCKS = 50  # blocks in one message
MAX_BLOCKS_TEXT = 10_000  # all text of a message's blocks, kept well under msg_blocks_too_long
VERBS: tuple[Verb, ...] = ("ack", "resolve", "snooze")  # labels: the catalogue's `button.*`


def page_blocks(message: PageMessage) -> list[dict[str, Any]]:
    body = message.body or message.title
    if message.ack_url and message.ack_url not in body:
        body = f"{body}\n<{message.ack_url}|{i18n.text(message.lang, 'button.open')}>"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in sections(body)
    ]
    one = len(message.incident_ids) == 1
    for iid in message.incident_ids:
        elements = []
        for verb in VERBS:
            label = i18n.text(message.lang, f"button.{verb}")
            button: dict[str, Any] = {
                "type": "button",
                "action_id": f"{verb}:{iid}",
                "value": str(iid),
                "text": {"type": "plain_text", "text": label if one else f"{label} #{iid}"},
            }
            if verb == "ack":
                button["style"] = "primary"
            elif verb == "resolve":
                button["style"] = "danger"
            elements.append(button)
        blocks.append({"type": "actions", "block_id": f"incident:{iid}", "elements": elements})
    return blocks


def fits(message: PageMessage) -> bool:
    """Whether a bundle goes as one message: every line of it and a button row per incident."""
    blocks = page_blocks(message)
    text = sum(len(b["text"]["text"]) for b in blocks if b["type"] == "section")
    return len(blocks) <= MAX_BLOCKS and text <= MAX_BLOCKS_TEXT


def sections(text: str, limit: int = MAX_SECTION) -> list[str]:
    """`text` in pieces of at most `limit` characters, split between lines (a line longer
    than that alone is cut)."""
    out: list[str] = []
    piece = ""
    for line in text.split("\n"):
        line = clip(line, limit)
        if piece and len(piece) + 1 + len(line) > limit:
            out.append(piece)
            piece = line
        else:
            piece = f"{piece}\n{line}" if piece else line
    if piece or not out:
        out.append(piece)
    return out


def text_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text)}}]


def contacted_block(incident_id: int, lang: str | None = None) -> dict[str, Any]:
    button = {
        "type": "button",
        "action_id": f"contacted:{incident_id}",
        "value": str(incident_id),
        "text": {"type": "plain_text", "text": i18n.text(lang, "button.contacted")},
        "style": "primary",
    }
    return {"type": "actions", "block_id": f"incident:{incident_id}", "elements": [button]}


def clip(text: str, limit: int = MAX_SECTION) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure(exc: BaseException) -> Delivery:
    """429 (with its Retry-After), 5xx and time-outs are worth another try; `channel_not_found`,
    `invalid_auth` and the like are not."""
    if isinstance(exc, SlackApiError):
        status = int(getattr(exc.response, "status_code", 0) or 0)
        error = exc.response.get("error") if hasattr(exc.response, "get") else None
        headers = getattr(exc.response, "headers", {}) or {}
        return refusal(
            f"slack: {error or status}", status, headers.get("Retry-After") or headers.get("retry-after")
        )
    return transport_failure("slack", exc)


class SlackChannel:
    name = "slack"

    def __init__(self, token: str | None, api_url: str = "https://slack.com/api/", timeout: float = 10.0):
        self._token = token
        self._api_url = api_url
        self._timeout = timeout
        self._client: AsyncWebClient | None = None
        self._dm: dict[str, str] = {}  # Slack member id -> DM channel id

    def configured(self) -> bool:
        return bool(self._token)

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            if not self._token:
                raise RuntimeError("ONCALL_SLACK_BOT_TOKEN is not set")
            # No shared session: the SDK opens one per call and closes it, so nothing leaks.
            self._client = AsyncWebClient(
                self._token, base_url=self._api_url, timeout=int(max(1, self._timeout))
            )
            self._client.timeout = self._timeout  # type: ignore[assignment]  # sub-second for tests
        return self._client

    async def send(self, message: PageMessage) -> Delivery:
        user = message.person.slack
        if user is None:
            return Delivery(ok=False, error=f"slack: {message.person.id} has no slack id")
        try:
            channel = await self.dm_channel(user)
            res = await self.client.chat_postMessage(
                channel=channel, text=message.title, blocks=page_blocks(message), unfurl_links=False
            )
        except (TimeoutError, SlackClientError, aiohttp.ClientError) as exc:
            return failure(exc)
        return Delivery(ok=True, ref=f"{res['channel']}:{res['ts']}")

    async def prepare(self, message: PageMessage) -> None:
        """Opens the DM before the page is marked `sending` (see `channels.base.Prepares`)."""
        if message.person.slack is not None:
            with contextlib.suppress(TimeoutError, SlackClientError, aiohttp.ClientError):
                await self.dm_channel(message.person.slack)

    async def dm_channel(self, user: str) -> str:
        if user not in self._dm:
            res = await self.client.conversations_open(users=user)
            self._dm[user] = str(res["channel"]["id"])
        return self._dm[user]

    async def update(self, ref: str, text: str) -> Delivery:
        return await self._edit(ref, text, text_blocks(text))

    async def update_offering_contacted(
        self, ref: str, text: str, incident_id: int, lang: str | None = None
    ) -> Delivery:
        """The edit after an ack while a customer waits for contact: one button left."""
        return await self._edit(ref, text, [*text_blocks(text), contacted_block(incident_id, lang)])

    async def _edit(self, ref: str, text: str, blocks: list[dict[str, Any]]) -> Delivery:
        channel, _, ts = ref.partition(":")
        try:
            await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except (TimeoutError, SlackClientError, aiohttp.ClientError) as exc:
            return failure(exc)
        return Delivery(ok=True, ref=ref)

    async def ephemeral(self, channel: str, user: str, text: str) -> Delivery:
        """A reply only `user` sees (a refusal, "already resolved")."""
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except (TimeoutError, SlackClientError, aiohttp.ClientError) as exc:
            return failure(exc)
        return Delivery(ok=True)

    async def aclose(self) -> None:
        return None
