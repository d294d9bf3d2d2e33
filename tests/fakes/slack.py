"""A fake Slack Web API: `POST /api/<method>`, answers as slack.com/api does."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from tests.fakes import Call, FakeServer, FaultKind, Reply


class FakeSlack(FakeServer):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self._ts = itertools.count(1)
        self.texts: dict[tuple[str, str], str] = {}  # (channel, ts) -> current text
        self.blocks: dict[tuple[str, str], Any] = {}

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def posted(self) -> list[Call]:
        return self.called("chat.postMessage")

    def error(self, call: Call, kind: FaultKind, retry_after: float) -> Reply:
        if kind == "429":
            return Reply(
                429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, round(retry_after)))}
            )
        return Reply(500, {"ok": False, "error": "internal_error"})

    def answer(self, call: Call) -> Reply:
        p = call.params
        if call.path == "conversations.open":
            users = str(p.get("users", ""))
            return Reply(200, {"ok": True, "channel": {"id": "D" + users.lstrip("U")}})
        if call.path in ("chat.postMessage", "chat.update") and (error := _invalid_blocks(p.get("blocks"))):
            return Reply(200, {"ok": False, "error": error})
        if call.path == "chat.postMessage":
            channel = str(p["channel"])
            ts = f"{1764000000 + next(self._ts)}.000100"
            self.texts[(channel, ts)] = str(p.get("text", ""))
            self.blocks[(channel, ts)] = _blocks(p.get("blocks"))
            return Reply(
                200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": p.get("text"), "ts": ts}}
            )
        if call.path == "chat.update":
            key = (str(p["channel"]), str(p["ts"]))
            if key not in self.texts:
                return Reply(200, {"ok": False, "error": "message_not_found"})
            self.texts[key] = str(p.get("text", ""))
            self.blocks[key] = _blocks(p.get("blocks"))
            return Reply(200, {"ok": True, "channel": key[0], "ts": key[1], "text": p.get("text")})
        if call.path == "chat.postEphemeral":
            return Reply(200, {"ok": True, "message_ts": f"{1764000000 + next(self._ts)}.000200"})
        if call.path == "auth.test":
            return Reply(200, {"ok": True, "user_id": "UBOT", "team_id": "T1"})
        return Reply(200, {"ok": False, "error": "unknown_method"})


# What slack.com refuses: Block Kit's documented limits, and the total it answers
# `msg_blocks_too_long` to (seen from about 13,000 characters of block text).
MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_ACTIONS = 25
MAX_BLOCKS_TEXT = 13_000


def _invalid_blocks(value: Any) -> str | None:
    blocks = _blocks(value) or []
    texts = [b["text"]["text"] for b in blocks if b.get("type") == "section"]
    if (
        len(blocks) > MAX_BLOCKS
        or any(not t or len(t) > MAX_SECTION for t in texts)
        or any(len(b.get("elements", [])) > MAX_ACTIONS for b in blocks if b.get("type") == "actions")
    ):
        return "invalid_blocks"
    if sum(len(t) for t in texts) > MAX_BLOCKS_TEXT:
        return "msg_blocks_too_long"
    return None


def _blocks(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
