"""A fake Telegram Bot API: `POST /bot<TOKEN>/<method>`, answers as api.telegram.org does."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from tests.fakes import Call, FakeServer, FaultKind, Reply

BOT_ID = 7000000001


class FakeTelegram(FakeServer):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self._ids = itertools.count(100)
        self.texts: dict[tuple[int, int], str] = {}  # (chat, message id) -> current text
        self.webhook: dict[str, Any] = {}

    @property
    def api_url(self) -> str:
        """What ONCALL_TELEGRAM_API_URL is set to: the SDK appends the token."""
        return f"{self.url}/bot"

    def sent(self) -> list[Call]:
        return self.called("sendMessage")

    def error(self, call: Call, kind: FaultKind, retry_after: float) -> Reply:
        if kind == "429":
            seconds = max(1, round(retry_after))
            return Reply(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {seconds}",
                    "parameters": {"retry_after": seconds},
                },
            )
        return Reply(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})

    def answer(self, call: Call) -> Reply:
        p = call.params
        if call.path == "getMe":
            return _ok({"id": BOT_ID, "is_bot": True, "first_name": "Oncall", "username": "oncall_bot"})
        if call.path in ("sendMessage", "editMessageText") and (refusal := _too_big(p)) is not None:
            return refusal
        if call.path == "sendMessage":
            chat = int(p["chat_id"])
            mid = next(self._ids)
            self.texts[(chat, mid)] = p["text"]
            return _ok(self._message(chat, mid, p["text"], p.get("reply_markup")))
        if call.path == "editMessageText":
            chat, mid = int(p["chat_id"]), int(p["message_id"])
            if (chat, mid) not in self.texts:
                return Reply(
                    400,
                    {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"},
                )
            self.texts[(chat, mid)] = p["text"]
            return _ok(self._message(chat, mid, p["text"], p.get("reply_markup")))
        if call.path in ("answerCallbackQuery", "deleteWebhook"):
            return _ok(True)
        if call.path == "setWebhook":
            self.webhook = dict(p)
            return _ok(True)
        if call.path == "setMyCommands":
            return _ok(True)
        return Reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def _message(self, chat: int, mid: int, text: str, markup: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": mid,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "Ana"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Oncall"},
            "text": text,
        }
        if markup:
            msg["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
        return msg


# What api.telegram.org refuses (the Bot API's limits, and what it answers).
MAX_TEXT = 4096  # UTF-16 code units
MAX_BUTTONS = 100
MAX_ROW = 8


def _too_big(p: dict[str, Any]) -> Reply | None:
    if len(str(p.get("text", "")).encode("utf-16-le")) // 2 > MAX_TEXT:
        return _bad("Bad Request: message is too long")
    markup = p.get("reply_markup")
    rows = (json.loads(markup) if isinstance(markup, str) else markup or {}).get("inline_keyboard", [])
    if sum(len(r) for r in rows) > MAX_BUTTONS or any(len(r) > MAX_ROW for r in rows):
        return _bad("Bad Request: reply markup is too long")
    return None


def _bad(description: str) -> Reply:
    return Reply(400, {"ok": False, "error_code": 400, "description": description})


def _ok(result: Any) -> Reply:
    return Reply(200, {"ok": True, "result": result})
