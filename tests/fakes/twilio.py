"""A fake Twilio REST API: `POST /2010-04-01/Accounts/<SID>/Messages.json`, and Voice:
`POST …/Calls.json` (create) and `GET …/Calls/<CallSid>.json` (fetch).

A call placed here does nothing until the test plays its part as Twilio does: `pick_up`
fetches the TwiML from the product's `Url` (a POST with the call's form, `AnsweredBy` from
answering-machine detection), "presses" a key by posting `Digits` to the `<Gather>`'s action,
then posts the call's end to its `StatusCallback`; `ends` reports a call that never connected
(no-answer, busy, failed, canceled). Every request is signed as Twilio signs it: HMAC-SHA1
of the full URL (query string included) and the sorted form fields, with the auth token.
"""

from __future__ import annotations

import itertools
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

from tests.fakes import Call, FakeServer, FaultKind, Reply

MAX_BODY = 1600  # characters Twilio takes in one message body


@dataclass
class PlacedCall:
    """A call as the fake's Calls API created it, and what it heard of the product since."""

    sid: str
    to: str
    from_: str
    url: str | None
    status_callback: str | None
    machine_detection: str | None
    twiml: str | None  # a call created with inline TwiML (a test call)
    status: str = "queued"
    heard: list[str] = field(default_factory=list)  # each TwiML document the product answered

    def said(self) -> str:
        """Everything the product's <Say> verbs said, in order, as one text."""
        return " ".join(" ".join(t.split()) for doc in self.heard for t in _says(doc))


def _says(doc: str) -> list[str]:
    return [e.text or "" for e in ET.fromstring(doc).iter("Say")]


def _gather_action(doc: str) -> str | None:
    gather = ET.fromstring(doc).find("Gather")
    return gather.get("action") if gather is not None else None


class FakeTwilio(FakeServer):
    def __init__(self, clock: Callable[[], float] = time.monotonic, auth_token: str = "") -> None:
        super().__init__(clock)
        self._ids = itertools.count(1)
        self.auth_token = auth_token  # what callbacks to the product are signed with
        self.placed: list[PlacedCall] = []
        self._placed_lock = threading.Lock()

    def method_of(self, path: str) -> str:
        _, sep, sid = path.rpartition("/Calls/")
        return f"Calls/{sid.removesuffix('.json')}" if sep else super().method_of(path)

    # -- Voice: playing Twilio's part of a call ------------------------------------------------

    def call_to(self, phone: str) -> PlacedCall:
        """The last call placed to `phone`."""
        with self._placed_lock:
            return [c for c in self.placed if c.to == phone][-1]

    def sign(self, url: str, form: dict[str, str], token: str | None = None) -> dict[str, str]:
        sig = RequestValidator(self.auth_token if token is None else token).compute_signature(url, form)
        return {"X-Twilio-Signature": sig}

    async def _post(
        self, product: httpx.AsyncClient, url: str, form: dict[str, str], token: str | None
    ) -> httpx.Response:
        parts = urlsplit(url)  # the product's public address, reached through `product`
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return await product.post(target, data=form, headers=self.sign(url, form, token))

    def _form(self, call: PlacedCall, status: str, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": "AC" + "1" * 32,
            "CallSid": call.sid,
            "From": call.from_,
            "To": call.to,
            "Called": call.to,
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
            "CallStatus": status,
            **extra,
        }

    async def pick_up(
        self,
        product: httpx.AsyncClient,
        call: PlacedCall,
        *,
        press: str | None = None,
        answered_by: str = "human",
        hang_up: bool = True,
        token: str | None = None,
    ) -> httpx.Response:
        """The call is answered (by `answered_by`, as machine detection says): its TwiML is
        fetched; with `press`, that key is sent to the <Gather>'s action; with `hang_up`, the
        call's end is reported to its status callback. Returns the last answer of the product."""
        assert call.url is not None, "a call with inline TwiML fetches nothing"
        call.status = "in-progress"
        amd = {"AnsweredBy": answered_by} if call.machine_detection else {}
        res = await self._post(product, call.url, self._form(call, "in-progress", **amd), token)
        if res.status_code == 200:
            call.heard.append(res.text)
        if press is not None and res.status_code == 200:
            action = _gather_action(res.text)
            assert action is not None, f"no <Gather> to press {press} in: {res.text}"
            res = await self.press(product, call, press, action, token=token)
        if hang_up:
            await self.ends(product, call, "completed", **amd)
        return res

    async def press(
        self,
        product: httpx.AsyncClient,
        call: PlacedCall,
        digit: str,
        action: str,
        *,
        token: str | None = None,
    ) -> httpx.Response:
        """Key `digit` pressed during the <Gather> whose action is `action`."""
        form = self._form(call, "in-progress", Digits=digit, FinishedOnKey="")
        if call.machine_detection:
            form["AnsweredBy"] = "human"
        res = await self._post(product, action, form, token)
        if res.status_code == 200:
            call.heard.append(res.text)
        return res

    async def ends(
        self,
        product: httpx.AsyncClient,
        call: PlacedCall,
        status: str,
        *,
        token: str | None = None,
        **extra: str,
    ) -> httpx.Response:
        """The call's final status posted to its status callback: completed, no-answer, busy,
        failed or canceled."""
        call.status = status
        assert call.status_callback is not None
        duration = "42" if status == "completed" else "0"
        form = self._form(call, status, CallDuration=duration, Duration=duration, **extra)
        return await self._post(product, call.status_callback, form, token)

    # -- the REST side ---------------------------------------------------------------------------

    def _call_body(self, call: PlacedCall) -> dict[str, Any]:
        return {
            "sid": call.sid,
            "account_sid": "AC" + "0" * 32,
            "to": call.to,
            "from": call.from_,
            "status": call.status,
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "answered_by": None,
            "date_created": "Sat, 28 Nov 2026 22:25:00 +0000",
            "date_updated": "Sat, 28 Nov 2026 22:25:00 +0000",
            "uri": f"/2010-04-01/Accounts/AC/Calls/{call.sid}.json",
            "subresource_uris": {},
        }

    def _calls(self, call: Call) -> Reply:
        if call.method == "GET" and call.path.startswith("Calls/"):
            sid = call.path.partition("/")[2]
            with self._placed_lock:
                found = [c for c in self.placed if c.sid == sid]
            if not found:
                return Reply(
                    404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
                )
            return Reply(200, self._call_body(found[0]))
        p = call.params
        if not p.get("To") or not p.get("From") or not (p.get("Url") or p.get("Twiml")):
            return Reply(
                400, {"code": 21205, "message": "Url, Twiml or ApplicationSid is required", "status": 400}
            )
        placed = PlacedCall(
            sid=f"CA{next(self._ids):032x}",
            to=str(p["To"]),
            from_=str(p["From"]),
            url=p.get("Url"),
            status_callback=p.get("StatusCallback"),
            machine_detection=p.get("MachineDetection"),
            twiml=p.get("Twiml"),
        )
        with self._placed_lock:
            self.placed.append(placed)
        return Reply(201, self._call_body(placed))

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
        if call.path == "Calls.json" or call.path.startswith("Calls/"):
            return self._calls(call)
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
