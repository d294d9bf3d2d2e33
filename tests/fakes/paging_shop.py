"""The weekend shop wired to the three fake providers through the real SDKs and the real app.

`open_shop()` starts the fakes, builds `create_app()` on a fresh SQLite database, the real
escalation `Service` with `build_channels()` pointed at the fakes, and an httpx client that
calls the app in-process. Inbound callbacks are signed the way each platform signs them.
Escalation time (`shop.now`) and the dispatcher's seconds (`shop.vt`) are both virtual.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from oncall import acklinks as ack
from oncall.channels import build_channels
from oncall.channels.base import Channel, Delivery, PageMessage
from oncall.core.models import Config, Event
from oncall.scheduler import Scheduler
from oncall.service import Reassurer, Service
from oncall.settings import Settings
from oncall.store import incidents as store
from oncall.store.database import Database
from oncall.web.app import create_app
from tests.fakes import FakeServer
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.recording import event, madrid, shop_config

PUBLIC = "https://oncall.example"
TELEGRAM_SECRET = "tg-secret-123"
SLACK_SECRET = "slack-signing-secret"
TWILIO_TOKEN = "twilio-auth-token"
TWILIO_FROM = "+15550001111"


@dataclass
class VirtualTime:
    t: float = 1000.0

    def clock(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class Hanging:
    """A paging channel whose sends hang (once the page is marked as being sent) until
    `release()`: the provider is slow to answer, e.g. while someone acknowledges."""

    def __init__(self, inner: Channel) -> None:
        self.inner = inner
        self.name = inner.name
        self.entered = asyncio.Event()
        self._gate = asyncio.Event()

    def configured(self) -> bool:
        return self.inner.configured()

    async def send(self, message: PageMessage) -> Delivery:
        self.entered.set()
        await self._gate.wait()
        return await self.inner.send(message)

    async def update(self, ref: str, text: str) -> Delivery:
        return await self.inner.update(ref, text)

    def release(self) -> None:
        self._gate.set()

    async def aclose(self) -> None:
        await self.inner.aclose()  # type: ignore[attr-defined]


@dataclass
class PagingShop:
    app: FastAPI
    client: httpx.AsyncClient
    service: Service
    db: Database
    settings: Settings
    telegram: FakeTelegram
    slack: FakeSlack
    twilio: FakeTwilio
    vt: VirtualTime
    config: Config
    now: datetime = field(default_factory=lambda: madrid("2026-11-28 23:00"))
    _ids: Any = field(default_factory=lambda: itertools.count(1000))

    # -- escalation --------------------------------------------------------------------------

    async def receive(self, ev: Event) -> int:
        self.now = max(self.now, ev.received_at)
        event_id, _ = await self.db.store_event(ev, b"{}")
        return event_id

    async def at(self, when: str) -> None:
        self.now = madrid(when)
        await Scheduler(self.service, clock=lambda: self.now).run_once()
        await self.service.drain()

    def hang(self, channel: str) -> Hanging:
        """From now on sends by `channel` hang until the returned `Hanging` is released."""
        hanging = Hanging(self.service.channels[channel])
        self.service.channels[channel] = hanging
        return hanging

    async def state(self, incident_id: int) -> str | None:
        inc = await self.db.transaction(lambda conn: store.get_incident(conn, incident_id))
        return inc.state if inc is not None else None

    async def timeline(self, incident_id: int) -> list[str]:
        view = await self.service.incident(incident_id)
        return [e["what"] for e in view.timeline] if view is not None else []

    # -- Telegram ----------------------------------------------------------------------------

    async def telegram_update(
        self, update: dict[str, Any], secret: str | None = TELEGRAM_SECRET
    ) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        res = await self.client.post("/telegram/webhook", json=update, headers=headers)
        await self.service.drain()
        return res

    async def press(self, user: int, data: str, message_id: int = 100) -> httpx.Response:
        uid = next(self._ids)
        return await self.telegram_update(
            {
                "update_id": uid,
                "callback_query": {
                    "id": f"cb{uid}",
                    "from": {"id": user, "is_bot": False, "first_name": "X"},
                    "chat_instance": "1",
                    "data": data,
                    "message": {"message_id": message_id, "date": 0, "chat": {"id": user, "type": "private"}},
                },
            }
        )

    async def command(self, user: int, text: str) -> httpx.Response:
        uid = next(self._ids)
        return await self.telegram_update(
            {
                "update_id": uid,
                "message": {
                    "message_id": uid,
                    "date": 0,
                    "chat": {"id": user, "type": "private"},
                    "from": {"id": user, "is_bot": False, "first_name": "X"},
                    "text": text,
                },
            }
        )

    # -- Slack -------------------------------------------------------------------------------

    def slack_headers(
        self, body: str, timestamp: int | None = None, secret: str = SLACK_SECRET
    ) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = f"v0:{ts}:{body}".encode()
        sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded",
        }

    async def slack_press(
        self, user: str, action_id: str, channel: str = "DANA", **kw: Any
    ) -> httpx.Response:
        number = action_id.partition(":")[2]
        payload = {
            "type": "block_actions",
            "user": {"id": user},
            "container": {"type": "message", "channel_id": channel, "message_ts": "1.0"},
            "channel": {"id": channel},
            "actions": [{"action_id": action_id, "value": number, "type": "button"}],
        }
        body = urlencode({"payload": json.dumps(payload)})
        res = await self.client.post("/slack/actions", content=body, headers=self.slack_headers(body, **kw))
        await self.service.drain()
        return res

    async def slack_command(self, user: str, command: str = "/oncall", text: str = "") -> httpx.Response:
        body = urlencode({"command": command, "text": text, "user_id": user, "response_url": "https://x"})
        return await self.client.post("/slack/commands", content=body, headers=self.slack_headers(body))

    # -- Twilio ------------------------------------------------------------------------------

    def twilio_headers(self, path: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
        sig = RequestValidator(token).compute_signature(f"{PUBLIC}{path}", params)
        return {"X-Twilio-Signature": sig}

    async def sms_reply(self, sender: str, body: str, sid: str | None = None, **kw: Any) -> httpx.Response:
        params = {
            "MessageSid": sid or f"SMin{next(self._ids)}",
            "AccountSid": "AC1",
            "From": sender,
            "To": TWILIO_FROM,
            "Body": body,
            "NumMedia": "0",
        }
        res = await self.client.post(
            "/twilio/sms", data=params, headers=self.twilio_headers("/twilio/sms", params, **kw)
        )
        await self.service.drain()
        return res

    async def sms_status(self, sid: str, to: str, status: str) -> httpx.Response:
        params = {
            "MessageSid": sid,
            "MessageStatus": status,
            "To": to,
            "From": TWILIO_FROM,
            "ErrorCode": "30003",
        }
        res = await self.client.post(
            "/twilio/status", data=params, headers=self.twilio_headers("/twilio/status", params)
        )
        await self.service.drain()
        return res


async def paged(shop: PagingShop) -> int:
    """The weekend story: a payment failure at Saturday 23:10 pages at 23:15; its incident id."""
    await shop.receive(event(at=madrid("2026-11-28 23:10")))
    await shop.at("2026-11-28 23:10")
    await shop.at("2026-11-28 23:15")
    [incident] = [i.id for i in await shop.service.incidents()]
    return incident


@asynccontextmanager
async def open_shop(
    tmp_path: Path, config: Config | None = None, *, bundle_window: float = 0.0, **settings: Any
) -> AsyncIterator[PagingShop]:
    """`bundle_window` 0: every page is its own message (most tests read one page at a time);
    the product's is `channels.delivery.WINDOW`. `settings` are `Settings` fields, but for
    `reassurer`: a function of the database and the settings that builds the customer
    reassurer (e.g. on the settings' SMTP and helpdesk); by default customers are not written to."""
    reassurer: Callable[[Database, Settings], Reassurer] | None = settings.pop("reassurer", None)
    vt = VirtualTime()
    tg, sl, tw = (
        FakeTelegram(vt.clock).start(),
        FakeSlack(vt.clock).start(),
        FakeTwilio(vt.clock, auth_token=TWILIO_TOKEN).start(),
    )
    fakes: tuple[FakeServer, ...] = (tg, sl, tw)
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'oncall.db'}",
        "public_url": PUBLIC,
        "telegram_bot_token": "123:TEST",
        "telegram_webhook_secret": TELEGRAM_SECRET,
        "telegram_api_url": tg.api_url,
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": SLACK_SECRET,
        "slack_api_url": sl.api_url,
        "twilio_account_sid": "AC" + "1" * 32,
        "twilio_auth_token": TWILIO_TOKEN,
        "twilio_from": TWILIO_FROM,
        "twilio_api_url": tw.api_url,
    }
    s = Settings(_env_file=None, **(values | settings))  # type: ignore[call-arg]
    app = create_app(s)
    db: Database = app.state.db
    await asyncio.to_thread(db.migrate)
    await ack.load_signer(app)
    holder: list[PagingShop] = []
    service = Service(
        db,
        lambda: holder[0].config,
        build_channels(s, timeout=0.3),
        s,
        reassurer(db, s) if reassurer is not None else None,
        bundle_window=bundle_window,
        send_clock=vt.clock,
        send_sleep=vt.sleep,
    )
    app.state.service = service
    app.state.config = config or shop_config()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    shop = PagingShop(app, client, service, db, s, tg, sl, tw, vt, app.state.config)
    holder.append(shop)
    app.state.clock = lambda: shop.now
    ack.set_signer(ack.signer(), lambda: shop.now)
    try:
        yield shop
    finally:
        await client.aclose()
        await service.aclose()
        for ch in service.channels.values():
            close = getattr(ch, "aclose", None)
            if close is not None:
                await close()
        await db.aclose()
        ack.set_signer(None)
        for f in fakes:
            f.stop()
