"""A fake Twilio REST API: `POST /2010-04-01/Accounts/<SID>/Messages.json`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from tests.fakes import Call, FakeServer, FaultKind, Reply

MAX_BODY = 1600  # characters Twilio takes in one message body


class FakeTwilio(FakeServer):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self._ids = itertools.count(1)

    @property
    def api_url(self) -> str:
        return self.url

    def sent(self) -> list[Call]:
        return self.called("Messages.json")

    def bodies(self, to: str | None = None) -> list[str]:
        return [str(c.params["Body"]) for c in self.sent() if to is None or c.params["To"] == to]

    def error(self, call: Call, kind: FaultKind, retry_after: float) -> Reply:
        if kind == "429":
            return Reply(
                429,
                {
                    "code": 20429,
                    "message": "Too Many Requests",
                    "more_info": "https://www.twilio.com/docs/errors/20429",
                    "status": 429,
                },
                {"Retry-After": str(max(1, round(retry_after)))},
            )
        return Reply(500, {"code": 20500, "message": "Internal Server Error", "more_info": "", "status": 500})

    def answer(self, call: Call) -> Reply:
        if call.path != "Messages.json" or call.method != "POST":
            return Reply(
                404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
            )
        p = call.params
        if len(str(p.get("Body", ""))) > MAX_BODY:
            message = "The concatenated message body exceeds the 1600 character limit"
            return Reply(400, {"code": 21617, "message": message, "status": 400})
        sid = f"SM{next(self._ids):032x}"
        body: dict[str, Any] = {
            "sid": sid,
            "account_sid": "AC" + "0" * 32,
            "to": p["To"],
            "from": p.get("From"),
            "body": p.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": "Wed, 25 Nov 2026 22:10:00 +0000",
            "date_updated": "Wed, 25 Nov 2026 22:10:00 +0000",
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/AC/Messages/{sid}.json",
            "subresource_uris": {},
            "messaging_service_sid": None,
        }
        return Reply(201, body)
