"""Promises kept, end to end, in injected time: Laura's payment fails on Saturday at 23:10, Ana
is paged at 23:15 and Laura gets the e-mail "we will contact you within 2 hours" (a real local
SMTP server) — a promise with its deadline at 01:15. With `[promise] remind = "90m"` and
`escalate = "105m"`:

- Ana acks and marks Laura contacted at 23:55 (40 min): kept, no reminder, no `_late`;
- a Zendesk customer's ticket goes to pending: kept;
- nobody marks the contact: Ana is reminded at 00:45, the owner paged at 01:00, the promise is
  broken at 01:15 and the `_late` message goes once, however many rounds and instances run;
- a restart between the reminder and the deadline loses nothing, and a contact after it keeps
  the promise.

Pages go through the real SDKs to the fake Telegram, Slack and Twilio servers
(`tests.fakes.paging_shop`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from oncall.channels.email import EmailSender
from oncall.channels.helpdesk import HelpdeskReplier
from oncall.core.models import Config, Customer, Event, PromiseRules, Ticket
from oncall.metrics import METRICS
from oncall.reassure import Reassurer
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store import Database, open_database
from oncall.store import promises as promise_store
from tests.fakes.helpdesk import FakeZendesk
from tests.fakes.paging_shop import PagingShop, open_shop
from tests.fakes.smtp import SmtpSink
from tests.recording import PEOPLE, RULES, RecordingChannel, event, madrid, shop_config

LAURA = Customer(name="Laura Pérez", email="laura@cliente.example", language="es")
MESSAGES = {
    "payment_failed": {
        "es": "Hola {customer_name}, el pago de tu pedido {order_number} no se ha completado. "
        "Te escribimos en menos de {response_time}.",
        "en": "Hi {customer_name}, we will contact you within {response_time}.",
    },
    "payment_failed_late": {
        "es": "Hola {customer_name}, sentimos no haberte escrito en {response_time}. "
        "Te llamamos {next_open}.",
    },
    "payment_failed_resolved": {"es": "Hola {customer_name}, ya está resuelto: tu pedido {order_number}."},
    "ticket": {"es": "Hola {customer_name}, hemos recibido tu consulta #{ticket_id}."},
}
REMINDER = "Laura Pérez was promised contact by 01:15: 30 min left (incident 1)"
ESCALATION = (
    "Laura Pérez was promised contact by 01:15: 15 min left and nobody has marked them contacted (incident 1)"
)


def config(**promise: timedelta) -> Config:
    rules = tuple(
        replace(r, reassure="ticket") if r.name == "urgent tickets while closed" else r for r in RULES
    )
    rules_promise = (
        PromiseRules(**promise) if promise else PromiseRules(timedelta(minutes=90), timedelta(minutes=105))
    )
    return shop_config(rules, messages=MESSAGES, promise=rules_promise)


def laura_fails(at: str | datetime = "2026-11-28 23:10") -> Event:
    when = madrid(at) if isinstance(at, str) else at
    return replace(event(at=when, order="1001"), customer=LAURA)


def reassurer(smtp: SmtpSink) -> Callable[[Database, Settings], Reassurer]:
    async def no_wait(seconds: float) -> None:
        return None

    def build(db: Database, settings: Settings) -> Reassurer:
        return Reassurer(
            db,
            settings,
            email=EmailSender(settings, timeout=5),
            helpdesk=HelpdeskReplier(settings, timeout=5),
            attempts=2,
            sleep=no_wait,
        )

    return build


def mail_settings(smtp: SmtpSink) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_starttls": False,
        "smtp_from": "Tienda Ejemplo <soporte@tienda.example>",
    }


@pytest.fixture
async def shop(tmp_path: Path, smtp: SmtpSink) -> AsyncIterator[PagingShop]:
    async with open_shop(tmp_path, config(), reassurer=reassurer(smtp), **mail_settings(smtp)) as s:
        yield s


def telegram_texts(shop: PagingShop, chat: int) -> list[str]:
    return [str(c.params["text"]) for c in shop.telegram.sent() if int(c.params["chat_id"]) == chat]


def edits(shop: PagingShop, chat: int) -> list[tuple[str, Any]]:
    """(text, reply markup) of every edit of a message in `chat`."""
    out = []
    for c in shop.telegram.called("editMessageText"):
        if int(c.params["chat_id"]) == chat:
            markup = c.params.get("reply_markup")
            out.append((str(c.params["text"]), json.loads(markup) if isinstance(markup, str) else markup))
    return out


def mails_to(smtp: SmtpSink, address: str) -> list[str]:
    return [m.text().strip() for m in smtp.received if address in m.rcpt_tos]


async def promises(shop: PagingShop, incident: int = 1) -> list[str]:
    return [p.state for p in await shop.db.transaction(lambda c: promise_store.of_incident(c, incident))]


async def paged_and_told(shop: PagingShop) -> None:
    await shop.receive(laura_fails())
    await shop.at("2026-11-28 23:10")
    await shop.at("2026-11-28 23:15")
    assert len(telegram_texts(shop, 111)) == 1  # Ana's page


class TestKeptByAContact:
    async def test_ack_then_customer_contacted_at_40_minutes_keeps_it_and_nobody_is_reminded(
        self, shop: PagingShop, smtp: SmtpSink
    ) -> None:
        await paged_and_told(shop)
        assert await promises(shop) == ["open"]
        shop.now = madrid("2026-11-28 23:20")
        await shop.press(111, "ack:1")
        # The edited page keeps one button: "Customer contacted".
        [(text, markup)] = edits(shop, 111)
        assert text == "Incident 1 acknowledged by Ana García at 23:20"
        assert markup["inline_keyboard"] == [[{"text": "Customer contacted", "callback_data": "contacted:1"}]]

        shop.now = madrid("2026-11-28 23:55")
        await shop.press(111, "contacted:1")
        assert await promises(shop) == ["kept"]
        timeline = await shop.timeline(1)
        kept = "Promise to Laura Pérez kept: customer contacted by Ana García via telegram, 40 min after"
        assert f"{kept} the message" in timeline
        text, markup = edits(shop, 111)[-1]
        assert (
            text
            == "Incident 1 acknowledged by Ana García at 23:20; customer contacted by Ana García at 23:55"
        )
        assert not markup  # no button left

        for t in ("2026-11-29 00:45", "2026-11-29 01:00", "2026-11-29 01:15", "2026-11-29 02:00"):
            await shop.at(t)
        assert len(telegram_texts(shop, 111)) == 1 and telegram_texts(shop, 444) == []  # no reminder
        assert not any("broken" in line or "Reminder" in line for line in await shop.timeline(1))
        assert len(mails_to(smtp, "laura@cliente.example")) == 1  # the first message only

    async def test_resolving_sends_the_resolved_message_once(self, shop: PagingShop, smtp: SmtpSink) -> None:
        await paged_and_told(shop)
        shop.now = madrid("2026-11-28 23:30")
        await shop.command(111, "/resolve 1")
        await shop.service.drain()
        assert await promises(shop) == ["kept"]
        assert "Promise to Laura Pérez kept: incident resolved by Ana García, 15 min after the message" in (
            await shop.timeline(1)
        )
        await shop.command(111, "/resolve 1")  # again: nothing more
        await shop.at("2026-11-29 01:20")
        assert mails_to(smtp, "laura@cliente.example")[1:] == [
            "Hola Laura Pérez, ya está resuelto: tu pedido 1001."
        ]
        assert "Customer told the incident is resolved: e-mail to laura@cliente.example (es)" in (
            await shop.timeline(1)
        )


class TestKeptByTheHelpdesk:
    async def test_a_zendesk_reply_that_sets_the_ticket_pending_keeps_it(
        self, tmp_path: Path, smtp: SmtpSink, zendesk: FakeZendesk
    ) -> None:
        helpdesk: dict[str, Any] = {
            "zendesk_url": zendesk.url,
            "zendesk_email": "soporte@tienda.example",
            "zendesk_api_token": SecretStr("zd-token"),
        }
        async with open_shop(
            tmp_path, config(), reassurer=reassurer(smtp), **mail_settings(smtp), **helpdesk
        ) as shop:
            ticket = Ticket("4321", "urgent", "new", "No puedo pagar")
            created = replace(
                event("ticket_created", madrid("2026-11-28 23:10"), source="zendesk"),
                customer=LAURA,
                ticket=ticket,
            )
            await shop.receive(created)
            await shop.at("2026-11-28 23:10")  # hold 0s: paged, and a public reply on the ticket
            [reply] = zendesk.replies()
            assert reply.ticket_id == "4321" and reply.public
            assert await promises(shop) == ["open"]

            answered = replace(
                created,
                kind="ticket_updated",
                dedup_key="zd-update-1",
                received_at=madrid("2026-11-28 23:50"),
                ticket=replace(ticket, status="pending"),
            )
            await shop.receive(answered)
            await shop.at("2026-11-28 23:50")
            assert await promises(shop) == ["kept"]
            timeline = await shop.timeline(1)
            assert (
                "Promise to Laura Pérez kept: ticket 4321 pending in zendesk, 40 min after the message"
                in timeline
            )
            assert await shop.state(1) == "acknowledged"
            for t in ("2026-11-29 00:40", "2026-11-29 01:10", "2026-11-29 02:00"):
                await shop.at(t)
            assert telegram_texts(shop, 444) == [] and len(telegram_texts(shop, 111)) == 1
            assert len(zendesk.replies()) == 1  # no `_late` reply


class TestBroken:
    async def test_reminder_then_owner_then_the_late_message_exactly_once(
        self, shop: PagingShop, smtp: SmtpSink
    ) -> None:
        await paged_and_told(shop)
        shop.now = madrid("2026-11-28 23:20")
        await shop.press(111, "ack:1")

        await shop.at("2026-11-29 00:44")
        assert len(telegram_texts(shop, 111)) == 1
        await shop.at("2026-11-29 00:45")
        [_, reminder] = telegram_texts(shop, 111)
        assert reminder.startswith(
            REMINDER + "\nOnce contacted: /contacted 1, or the link.\nhttps://oncall.example/ack/"
        )
        assert telegram_texts(shop, 444) == []

        await shop.at("2026-11-29 01:00")
        [escalation] = telegram_texts(shop, 444)  # Olga, the owner (shop.fallback)
        assert escalation.startswith(ESCALATION)
        assert len(telegram_texts(shop, 111)) == 2

        for t in ("2026-11-29 01:15", "2026-11-29 01:16", "2026-11-29 01:30", "2026-11-29 03:00"):
            await shop.at(t)
        assert await promises(shop) == ["broken"]
        timeline = await shop.timeline(1)
        assert [line for line in timeline if "Laura Pérez" in line or "promise" in line.lower()] == [
            "Reminder to Ana García by telegram: Laura Pérez waiting for contact by 01:15",
            "Promise escalated to Olga Dueña by telegram: Laura Pérez waiting for contact by 01:15",
            "Promise to Laura Pérez broken: nobody contacted them by 01:15 (promised within 2 hours)",
            "Customer told the promise was broken: e-mail to laura@cliente.example (es)",
        ]
        [_, late] = mails_to(smtp, "laura@cliente.example")
        assert (
            late == "Hola Laura Pérez, sentimos no haberte escrito en 2 horas. Te llamamos mañana a las 9:00."
        )

        # Ana contacts Laura afterwards: the timeline says so, the promise stays broken.
        shop.now = madrid("2026-11-29 03:10")
        await shop.press(111, "contacted:1")
        assert await promises(shop) == ["broken"]
        assert (await shop.timeline(1))[-1] == (
            "Laura Pérez contacted by Ana García via telegram, after the promise (by 01:15) was broken"
        )
        assert len(mails_to(smtp, "laura@cliente.example")) == 2


class TestRestart:
    async def test_a_restart_between_the_reminder_and_the_deadline_keeps_every_timer(
        self, tmp_path: Path, smtp: SmtpSink
    ) -> None:
        async with open_shop(tmp_path, config(), reassurer=reassurer(smtp), **mail_settings(smtp)) as shop:
            await paged_and_told(shop)
            shop.now = madrid("2026-11-28 23:20")
            await shop.press(111, "ack:1")
            await shop.at("2026-11-29 00:45")
            assert telegram_texts(shop, 111)[-1].startswith(REMINDER)
        # oncall stops here and starts again on the same database.
        async with open_shop(tmp_path, config(), reassurer=reassurer(smtp), **mail_settings(smtp)) as shop:
            await shop.at("2026-11-29 00:50")
            assert telegram_texts(shop, 111) == []  # the reminder is not sent again
            await shop.at("2026-11-29 01:00")
            [escalation] = telegram_texts(shop, 444)
            assert escalation.startswith(ESCALATION)
            shop.now = madrid("2026-11-29 01:05")
            res = await shop.sms_reply("+34600111222", "1c")
            assert "Incident 1: Laura Pérez contacted, promise kept" in res.text
            for t in ("2026-11-29 01:15", "2026-11-29 02:00"):
                await shop.at(t)
            assert await promises(shop) == ["kept"]
            assert not any("broken" in line for line in await shop.timeline(1))
        assert len(mails_to(smtp, "laura@cliente.example")) == 1  # no `_late` message


class TestTwoInstances:
    """Two instances on one store, firing the same due promises at the same moment."""

    async def test_one_reminder_one_broken_promise_one_late_message(
        self, db_url: str, smtp: SmtpSink
    ) -> None:
        settings = Settings.model_validate(mail_settings(smtp))
        cfg = config()
        dbs = [open_database(db_url), open_database(db_url)]
        await asyncio.to_thread(dbs[0].migrate)
        channels = [{n: RecordingChannel(n) for n in ("telegram", "slack", "sms")} for _ in dbs]
        services = [
            Service(db, lambda: cfg, ch, settings, reassurer(smtp)(db, settings), bundle_window=0)
            for db, ch in zip(dbs, channels, strict=True)
        ]
        a, b = services
        try:
            await dbs[0].store_event(laura_fails(), b"{}")
            for t in ("2026-11-28 23:10", "2026-11-28 23:15"):
                await Scheduler(a, clock=lambda t=t: madrid(t)).run_once()  # type: ignore[misc]
                await a.drain(10)
            await a.act(1, PEOPLE["ana"], "ack", "telegram", madrid("2026-11-28 23:20"))
            for t in ("2026-11-29 00:45", "2026-11-29 01:00", "2026-11-29 01:15", "2026-11-29 01:16"):
                await asyncio.gather(a.fire_due(madrid(t)), b.fire_due(madrid(t)))
                await asyncio.gather(a.drain(10), b.drain(10))
            reminders = [m.title for ch in channels for m in ch["telegram"].sent if m.person.id == "ana"][1:]
            owner = [m.title for ch in channels for m in ch["telegram"].sent if m.person.id == "owner"]
            assert reminders == [REMINDER] and owner == [ESCALATION]
            timeline = [e["what"] for e in (await a.incident(1)).timeline]  # type: ignore[union-attr]
            assert sum(line.startswith("Promise to Laura Pérez broken") for line in timeline) == 1
            assert len(mails_to(smtp, "laura@cliente.example")) == 2  # the first message and `_late`
        finally:
            for s in services:
                await s.aclose()
            for db in dbs:
                await db.aclose()


def team_posts(shop: PagingShop) -> list[str]:
    """What was posted to the team channel (the body is the Slack message's first block)."""
    out = []
    for c in shop.slack.posted():
        if c.params.get("channel") != "D#soporte":
            continue
        blocks = c.params["blocks"]
        out.append(str((json.loads(blocks) if isinstance(blocks, str) else blocks)[0]["text"]["text"]))
    return out


class TestTheNightReported:
    async def test_the_opening_digest_ends_with_the_closed_hours_report(self, shop: PagingShop) -> None:
        await paged_and_told(shop)
        shop.now = madrid("2026-11-28 23:20")
        await shop.press(111, "ack:1")
        shop.now = madrid("2026-11-28 23:55")
        await shop.press(111, "contacted:1")
        await shop.at("2026-11-30 08:59")
        assert team_posts(shop) == []
        await shop.at("2026-11-30 09:00")
        [digest] = team_posts(shop)
        # The team channel is the shop's: the report is in its language (Spanish); `oncall
        # report` words the same figures in English (tests/test_report_cli.py).
        assert digest.splitlines() == [
            "Informe fuera de horario, viernes 27 nov, 15:00 a lunes 30 nov, 09:00:",
            "- 1 incidente, 2 avisos",
            "- tiempo hasta reconocer: mediana 5 min, peor 5 min (reconocidos: 1)",
            "- clientes tranquilizados: 1; promesas cumplidas: 1, incumplidas: 0",
        ]

    async def test_metrics_count_promises_and_time_to_acknowledge(self, shop: PagingShop) -> None:
        METRICS.reset()
        await paged_and_told(shop)
        shop.now = madrid("2026-11-28 23:27")
        await shop.press(111, "ack:1")
        await shop.at("2026-11-29 01:15")
        text = (await shop.client.get("/metrics")).text
        assert 'oncall_promises_total{outcome="broken"} 1' in text
        assert 'oncall_promises_total{outcome="kept"} 0' in text
        assert 'oncall_promises{state="broken"} 1' in text
        # 12 minutes from the page to the ack: in the 15-minute bucket, not the 10-minute one.
        assert 'oncall_time_to_acknowledge_seconds_bucket{le="600"} 0' in text
        assert 'oncall_time_to_acknowledge_seconds_bucket{le="900"} 1' in text
        assert "oncall_time_to_acknowledge_seconds_sum 720.0" in text
        assert "oncall_time_to_acknowledge_seconds_count 1" in text
