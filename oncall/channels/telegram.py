"""Telegram pages through python-telegram-bot: a message with Ack / Resolve / Snooze buttons.

The button's callback data is `"<verb>:<incident id>"` ("ack:42"; "contacted:42" on the
edit after an ack while a customer waits for contact), well inside Telegram's
64-byte limit, and parsed back by `parse_callback`. A delivered page is referred to as
`"<chat id>:<message id>"`, which is all `editMessageText` needs to edit it after an ack.

A bundle has a row [Ack #N] [Resolve #N] for each of its incidents and a last row
[Ack all] [Resolve all] [Snooze all 30m] acting on every incident of that message (callback
data `"<verb>:all"`; the message itself says which incidents: the pages delivered as it). One
message holds at most 4,096 characters (UTF-16 code units, as Telegram counts) and 100 inline
buttons, 8 to a row: `fits` says whether a bundle stays within both, so that the dispatcher
splits it over several messages instead of cutting it. (Three buttons per incident would
hold 33 incidents a message; two and the "all" row, 48: a flood of 200 is 5 messages, not 7.)
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

from oncall import i18n
from oncall.channels.base import Delivery, PageMessage, Verb

MAX_TEXT = 4096  # Telegram's limit for one message, in UTF-16 code units
MAX_BUTTONS = 100  # inline keyboard buttons in one message (8 to a row; a row here has 2 or 3)
ALL = "all"  # callback data "ack:all": every incident of the message pressed
VERBS: dict[str, Verb] = {"ack": "ack", "resolve": "resolve", "snooze": "snooze", "contacted": "contacted"}


@dataclass(frozen=True, slots=True)
class Callback:
    verb: Verb
    incident_id: int | None  # None: every incident of the message whose button was pressed


def callback_data(verb: Verb, incident_id: int | None) -> str:
    data = f"{verb}:{ALL if incident_id is None else incident_id}"
    assert len(data.encode()) <= 64, data
    return data


def parse_callback(data: str | None) -> Callback | None:
    verb, _, number = (data or "").partition(":")
    if verb not in VERBS:
        return None
    if number == ALL:
        return Callback(VERBS[verb], None)
    if not (number.isascii() and number.isdigit() and len(number) <= 18):
        return None
    return Callback(VERBS[verb], int(number))


def keyboard(incident_ids: tuple[int, ...], lang: str | None = None) -> InlineKeyboardMarkup:
    """The buttons, labelled in the person's language (the callback data is the same in all)."""

    def t(key: str, **fields: object) -> str:
        return i18n.text(lang, f"button.{key}", **fields)

    if len(incident_ids) == 1:
        [iid] = incident_ids
        return InlineKeyboardMarkup(
            [
                [
                    _button(t("ack"), "ack", iid),
                    _button(t("resolve"), "resolve", iid),
                    _button(t("snooze"), "snooze", iid),
                ]
            ]
        )
    rows = [
        [_button(t("ack_one", id=i), "ack", i), _button(t("resolve_one", id=i), "resolve", i)]
        for i in incident_ids
    ]
    rows.append(
        [
            _button(t("ack_all"), "ack", None),
            _button(t("resolve_all"), "resolve", None),
            _button(t("snooze_all"), "snooze", None),
        ]
    )
    return InlineKeyboardMarkup(rows)


def _button(label: str, verb: Verb, incident_id: int | None) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=callback_data(verb, incident_id))


def buttons(incident_ids: tuple[int, ...]) -> int:
    """How many buttons `keyboard` gives these incidents."""
    return 3 if len(incident_ids) == 1 else 2 * len(incident_ids) + 3


def page_text(message: PageMessage) -> str:
    return clip(_full_text(message))


def _full_text(message: PageMessage) -> str:
    text = message.body or message.title
    if message.ack_url and message.ack_url not in text:
        text = f"{text}\n\n{message.ack_url}"
    return text


def fits(message: PageMessage) -> bool:
    """Whether a bundle goes as one message: its text uncut and a button for every incident."""
    return units(_full_text(message)) <= MAX_TEXT and buttons(message.incident_ids) <= MAX_BUTTONS


def units(text: str) -> int:
    """The length Telegram counts: UTF-16 code units (an emoji outside the BMP is two)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int = MAX_TEXT) -> str:
    if units(text) <= limit:
        return text
    out, used = [], 1  # room for the "…"
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            break
        out.append(ch)
    return "".join(out) + "…"


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

    async def prepare(self, message: PageMessage) -> None:
        """Builds the client (its TLS set-up takes a while) before the first page is marked
        `sending` (see `channels.base.Prepares`)."""
        if self._token:
            self.bot  # noqa: B018 - built on first use

    async def send(self, message: PageMessage) -> Delivery:
        chat = message.person.telegram
        if chat is None:
            return Delivery(ok=False, error=f"telegram: {message.person.id} has no telegram id")
        # A notice (no incident: a reminder, an owner's notice) has no buttons; an empty
        # keyboard would be sent as `{}`, which is no keyboard at all.
        markup = keyboard(message.incident_ids, message.lang) if message.incident_ids else None
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

    async def update_offering_contacted(
        self, ref: str, text: str, incident_id: int, lang: str | None = None
    ) -> Delivery:
        """The edit after an ack while a customer waits for contact: one button left."""
        label = i18n.text(lang, "button.contacted")
        button = InlineKeyboardButton(label, callback_data=callback_data("contacted", incident_id))
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
