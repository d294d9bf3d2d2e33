"""Telegram pages through python-telegram-bot: a message with Ack / Resolve / Snooze buttons.

The button's callback data is `"<verb>:<incident id>"` ("ack:42"; "contacted:42" on the
edit after an ack while a customer waits for contact), well inside Telegram's
64-byte limit, and parsed back by `parse_callback`. A delivered page is referred to as
`"<chat id>:<message id>"`, which is all `editMessageText` needs to edit it after an ack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

# Opt in to python-telegram-bot's future `timedelta` fields now: without it, merely building a
# `RetryAfter` from a 429 issues a deprecation warning (an error under `-W error`).
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from oncall.channels.base import Delivery, PageMessage, Verb
from oncall.core.promisetext import CONTACTED_BUTTON

MAX_TEXT = 4096  # Telegram's limit for one message
MAX_BUTTON_ROWS = 10  # a bundle shows buttons for its first incidents; the link covers all
VERBS: dict[str, Verb] = {"ack": "ack", "resolve": "resolve", "snooze": "snooze", "contacted": "contacted"}


@dataclass(frozen=True, slots=True)
class Callback:
    verb: Verb
    incident_id: int


def callback_data(verb: Verb, incident_id: int) -> str:
    data = f"{verb}:{incident_id}"
    assert len(data.encode()) <= 64, data
    return data


def parse_callback(data: str | None) -> Callback | None:
    verb, _, number = (data or "").partition(":")
    if verb not in VERBS or not (number.isascii() and number.isdigit() and len(number) <= 18):
        return None
    return Callback(VERBS[verb], int(number))


def keyboard(incident_ids: tuple[int, ...]) -> InlineKeyboardMarkup:
    one = len(incident_ids) == 1
    rows = []
    for iid in incident_ids[:MAX_BUTTON_ROWS]:
        suffix = "" if one else f" #{iid}"
        rows.append(
            [
                InlineKeyboardButton(f"Ack{suffix}", callback_data=callback_data("ack", iid)),
                InlineKeyboardButton(f"Resolve{suffix}", callback_data=callback_data("resolve", iid)),
                InlineKeyboardButton(f"Snooze 30m{suffix}", callback_data=callback_data("snooze", iid)),
            ]
        )
    return InlineKeyboardMarkup(rows)


def page_text(message: PageMessage) -> str:
    text = message.body or message.title
    if message.ack_url and message.ack_url not in text:
        text = f"{text}\n\n{message.ack_url}"
    return clip(text)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure(exc: BaseException) -> Delivery:
    """How a python-telegram-bot error reads as a `Delivery`: 429, 5xx and time-outs are worth
    another try (BadRequest and Forbidden are `NetworkError`s too, but trying again won't help)."""
    if isinstance(exc, RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return Delivery(ok=False, error=f"telegram: {exc}", retryable=True, retry_after=seconds)
    retryable = isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)
    return Delivery(ok=False, error=f"telegram: {type(exc).__name__}: {exc}", retryable=retryable)


class TelegramChannel:
    name = "telegram"

    def __init__(
        self, token: str | None, api_url: str = "https://api.telegram.org/bot", timeout: float = 10.0
    ):
        self._token = token
        self._api_url = api_url
        self._timeout = timeout
        self._bot: Bot | None = None

    def configured(self) -> bool:
        return bool(self._token)

    @property
    def bot(self) -> Bot:
        if self._bot is None:
            if not self._token:
                raise RuntimeError("ONCALL_TELEGRAM_BOT_TOKEN is not set")
            t = self._timeout
            request = HTTPXRequest(
                connection_pool_size=16, read_timeout=t, write_timeout=t, connect_timeout=t, pool_timeout=t
            )
            self._bot = Bot(self._token, base_url=self._api_url, request=request)
        return self._bot

    async def send(self, message: PageMessage) -> Delivery:
        chat = message.person.telegram
        if chat is None:
            return Delivery(ok=False, error=f"telegram: {message.person.id} has no telegram id")
        # A notice (no incident: a reminder, an owner's notice) has no buttons; an empty
        # keyboard would be sent as `{}`, which is no keyboard at all.
        markup = keyboard(message.incident_ids) if message.incident_ids else None
        return await self.send_text(chat, page_text(message), markup)

    async def send_text(self, chat: int, text: str, markup: InlineKeyboardMarkup | None = None) -> Delivery:
        try:
            sent = await self.bot.send_message(
                chat_id=chat,
                text=clip(text),
                reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except TelegramError as exc:
            return failure(exc)
        return Delivery(ok=True, ref=f"{chat}:{sent.message_id}")

    async def update(self, ref: str, text: str) -> Delivery:
        return await self._edit(ref, text, None)

    async def update_offering_contacted(self, ref: str, text: str, incident_id: int) -> Delivery:
        """The edit after an ack while a customer waits for contact: one button left."""
        button = InlineKeyboardButton(CONTACTED_BUTTON, callback_data=callback_data("contacted", incident_id))
        return await self._edit(ref, text, InlineKeyboardMarkup([[button]]))

    async def _edit(self, ref: str, text: str, markup: InlineKeyboardMarkup | None) -> Delivery:
        chat, _, mid = ref.partition(":")
        try:
            # Without markup the edit removes the buttons, so nobody acts twice by accident.
            await self.bot.edit_message_text(
                text=clip(text), chat_id=int(chat), message_id=int(mid), reply_markup=markup
            )
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return Delivery(ok=True, ref=ref)
            return failure(exc)
        except TelegramError as exc:
            return failure(exc)
        return Delivery(ok=True, ref=ref)

    async def answer_callback(self, query_id: str, text: str) -> Delivery:
        try:
            await self.bot.answer_callback_query(query_id, text=clip(text, 200))
        except TelegramError as exc:
            return failure(exc)
        return Delivery(ok=True)

    async def set_webhook(self, url: str, secret: str) -> None:
        await self.bot.set_webhook(
            url=url,
            secret_token=secret,
            allowed_updates=["message", "callback_query"],
            drop_pending_updates=False,
        )

    async def aclose(self) -> None:
        if self._bot is not None:
            # Not `bot.shutdown()`: it only closes what `initialize()` (a getMe call) opened.
            await self._bot.request.shutdown()
