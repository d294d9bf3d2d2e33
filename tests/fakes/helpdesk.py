"""Fake Zendesk and Freshdesk ticket APIs for public replies, as real local HTTP servers.

- `FakeZendesk`: `PUT /api/v2/tickets/{id}.json` with `{"ticket": {"comment": {...}}}`, basic
  auth `{email}/token:{api_token}`; answers 200 with the ticket and its audit, as Zendesk does.
- `FakeFreshdesk`: `POST /api/v2/tickets/{id}/reply` with `{"body": html}`, basic auth
  `{api_key}:X`; answers 201 with the conversation.

Wrong credentials are 401, a ticket in `missing` is 404. Faults (`fail("500")`, `fail("429")`,
`fail("hang")`, `down = "500"`) work as for the other fakes in `tests.fakes`.
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes import Call, FakeServer, FaultKind, Reply

_ZENDESK_PATH = re.compile(r"^/api/v2/tickets/(\d+)\.json$")
_FRESHDESK_PATH = re.compile(r"^/api/v2/tickets/(\d+)/reply$")


@dataclass(frozen=True)
class TicketReply:
    ticket_id: str
    body: str
    public: bool


def _basic(call: Call) -> tuple[str, str] | None:
    value = call.headers.get("authorization", "")
    if not value.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    return user, password


class _FakeHelpdesk(FakeServer):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        # The shared fake handler speaks GET and POST; Zendesk's update is a PUT.
        handler = self._server.RequestHandlerClass
        setattr(handler, "do_PUT", handler.do_POST)  # type: ignore[attr-defined]  # noqa: B010
        # A short poll so that stop() takes milliseconds, not serve_forever's default half second.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self.missing: set[str] = set()
        self._replies: list[TicketReply] = []  # appended under the base's lock, in answer()
        self._ids = itertools.count(1001)

    def method_of(self, path: str) -> str:
        return path  # the whole path: the ticket id is in it

    def replies(self) -> list[TicketReply]:
        """The replies the helpdesk accepted (faulted or refused calls are only in `calls`)."""
        with self._lock:
            return list(self._replies)


class FakeZendesk(_FakeHelpdesk):
    def __init__(self, email: str, api_token: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.credentials = (f"{email}/token", api_token)

    def error(self, call: Call, kind: FaultKind, retry_after: float) -> Reply:
        if kind == "429":
            return Reply(
                429, {"error": "APIRateLimitExceeded"}, {"Retry-After": str(max(1, round(retry_after)))}
            )
        return Reply(500, {"error": "InternalError", "description": "Something went wrong"})

    def answer(self, call: Call) -> Reply:
        m = _ZENDESK_PATH.match(call.path)
        if _basic(call) != self.credentials:
            return Reply(401, {"error": "Couldn't authenticate you"})
        if not m or call.method != "PUT":
            return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})
        if m.group(1) in self.missing:
            return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
        comment = call.params.get("ticket", {}).get("comment", {})
        self._replies.append(TicketReply(m.group(1), str(comment.get("body")), bool(comment.get("public"))))
        audit_id = next(self._ids)
        return Reply(
            200,
            {
                "ticket": {"id": int(m.group(1)), "status": "open"},
                "audit": {
                    "id": audit_id,
                    "ticket_id": int(m.group(1)),
                    "events": [
                        {"type": "Comment", "body": comment.get("body"), "public": comment.get("public")}
                    ],
                },
            },
        )


class FakeFreshdesk(_FakeHelpdesk):
    def __init__(self, api_key: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.credentials = (api_key, "X")

    def error(self, call: Call, kind: FaultKind, retry_after: float) -> Reply:
        if kind == "429":
            return Reply(429, {"message": "You have exceeded the limit of requests per hour"},
                         {"Retry-After": str(max(1, round(retry_after)))})  # fmt: skip
        return Reply(500, {"message": "Internal server error"})

    def answer(self, call: Call) -> Reply:
        m = _FRESHDESK_PATH.match(call.path)
        if _basic(call) != self.credentials:
            return Reply(
                401,
                {
                    "code": "invalid_credentials",
                    "message": "You have to be logged in to perform this action.",
                },
            )
        if not m or call.method != "POST":
            return Reply(404, {"message": "Not found"})
        if m.group(1) in self.missing:
            return Reply(404, {"code": "access_denied", "message": "Record not found"})
        self._replies.append(TicketReply(m.group(1), str(call.params.get("body")), True))
        body: dict[str, Any] = {
            "id": next(self._ids),
            "ticket_id": int(m.group(1)),
            "body": call.params.get("body"),
            "body_text": re.sub(r"<[^>]+>", " ", str(call.params.get("body"))).strip(),
            "private": False,
            "incoming": False,
        }
        return Reply(201, body)
