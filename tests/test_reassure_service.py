"""The weekend story, end to end through the escalation service: a payment failure on Saturday
at 23:10 pages Ana at 23:15, and Laura — whose payment failed — finds one Spanish e-mail in her
inbox (a real local SMTP server); a Zendesk customer gets a public reply on their ticket
instead. Nothing is sent for a failure that fixed itself during the hold, nor in hours, and a
helpdesk outage never holds up the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from oncall.channels.email import EmailSender
from oncall.channels.helpdesk import HelpdeskReplier
from oncall.core.models import Config, Customer, Event, Order, Ticket
from oncall.reassure import Reassurer
from oncall.service import Service
from oncall.settings import Settings
from oncall.store import Database, open_database
from tests.fakes.helpdesk import FakeZendesk
from tests.fakes.smtp import SmtpSink
from tests.recording import LAURA, REASSURING_RULES, RecordingChannel, event, madrid, shop_config

MESSAGES = {
    "payment_failed": {
        "es": "Hola {customer_name}, hemos visto que el pago de tu pedido {order_number} no se ha "
        "completado. Nuestro equipo de guardia ya está avisado y te escribirá en menos de {response_time}.",
        "en": "Hi {customer_name}, we noticed the payment for order {order_number} did not go through.",
    },
    "ticket": {
        "es": "Hola {customer_name}, hemos recibido tu consulta #{ticket_id}. Te respondemos en menos de "
        "{response_time}."
    },
    "ticket_deferred": {"es": "Hola {customer_name}, te respondemos {next_open}."},
}


def config() -> Config:
    return shop_config(REASSURING_RULES, messages=MESSAGES)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'oncall.db'}")
    await asyncio.to_thread(database.migrate)
    yield database
    await database.aclose()


class Shop:
    """The running pieces: the service with recording paging channels and a real reassurer."""

    def __init__(
        self, db: Database, smtp: SmtpSink, zendesk: FakeZendesk | None = None, timeout: float = 5.0
    ):
        values: dict[str, Any] = {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_from": "Tienda Ejemplo <soporte@tienda.example>",
        }
        if zendesk is not None:
            values.update(zendesk_url=zendesk.url, zendesk_email="soporte@tienda.example",
                          zendesk_api_token=SecretStr("zd-token"))  # fmt: skip
        self.settings = Settings.model_validate(values)
        self.db = db
        self.channels = {name: RecordingChannel(name) for name in ("telegram", "slack", "sms")}
        self.config = config()

        async def no_wait(seconds: float) -> None:
            return None

        reassurer = Reassurer(
            db,
            self.settings,
            email=EmailSender(self.settings, timeout=timeout),
            helpdesk=HelpdeskReplier(self.settings, timeout=timeout),
            attempts=2,
            sleep=no_wait,
        )
        self.service = Service(
            db, lambda: self.config, self.channels, self.settings, reassurer, bundle_window=0
        )

    async def receive(self, ev: Event) -> None:
        await self.db.store_event(ev, b"{}")

    async def at(self, when: datetime) -> None:
        """One scheduler round at `when` (as `Scheduler.run_once` does), background sends included."""
        await self.service.route_events(when)
        await self.service.fire_due(when)
        await self.service.send_pages(when)
        await self.service.drain(within=10)

    async def timeline(self, incident_id: int = 1) -> list[str]:
        view = await self.service.incident(incident_id)
        assert view is not None
        return [entry["what"] for entry in view.timeline]

    async def close(self) -> None:
        await self.service.aclose()


@pytest.fixture
async def shop(db: Database, smtp: SmtpSink) -> AsyncIterator[Shop]:
    s = Shop(db, smtp)
    yield s
    await s.close()


def payment_failed(at: str, customer: Customer = LAURA, order: str = "1001") -> Event:
    return replace(event("payment_failed", madrid(at), order=order), customer=customer)


class TestTheWeekendStory:
    async def test_the_customer_gets_one_spanish_email_when_ana_is_paged(
        self, shop: Shop, smtp: SmtpSink
    ) -> None:
        await shop.receive(payment_failed("2026-11-28 23:10"))
        await shop.at(madrid("2026-11-28 23:10"))
        await shop.at(madrid("2026-11-28 23:14"))
        assert smtp.received == [] and shop.channels["telegram"].sent == []  # held

        await shop.at(madrid("2026-11-28 23:15"))
        [page] = shop.channels["telegram"].sent
        assert page.person.id == "ana"
        [mail] = smtp.received
        assert mail.rcpt_tos == ["laura@cliente.example"]
        assert mail.message["Auto-Submitted"] == "auto-replied"
        assert mail.text().strip() == (
            "Hola Laura Pérez, hemos visto que el pago de tu pedido 1001 no se ha completado. "
            "Nuestro equipo de guardia ya está avisado y te escribirá en menos de 2 horas."
        )
        assert "Customer reassured: e-mail to laura@cliente.example (es)" in await shop.timeline()

        # Nobody acknowledges: the escalation goes on (SMS at 23:25, backup at 23:35); Laura
        # is not written to again.
        for t in ("2026-11-28 23:25", "2026-11-28 23:35", "2026-11-28 23:50"):
            await shop.at(madrid(t))
        assert shop.channels["sms"].sent and len(smtp.received) == 1

    async def test_a_burst_of_five_failures_from_three_customers_sends_three_emails(
        self, shop: Shop, smtp: SmtpSink
    ) -> None:
        john = Customer(name="John Smith", email="john@client.example", language="en")
        pedro = Customer(name="Pedro", email="pedro@cliente.example")
        for i, (minute, who) in enumerate([(10, LAURA), (11, john), (11, LAURA), (12, pedro), (13, LAURA)]):
            await shop.receive(payment_failed(f"2026-11-28 23:{minute}", who, order=f"20{i}"))
            await shop.at(madrid(f"2026-11-28 23:{minute}"))
        await shop.at(madrid("2026-11-28 23:15"))
        assert sorted(m.rcpt_tos[0] for m in smtp.received) == [
            "john@client.example", "laura@cliente.example", "pedro@cliente.example",
        ]  # fmt: skip
        english = next(m for m in smtp.received if m.rcpt_tos == ["john@client.example"])
        assert english.text().startswith("Hi John Smith, we noticed the payment for order 201")

    async def test_a_customer_whose_payment_fails_after_the_page_hears_from_the_shop_too(
        self, shop: Shop, smtp: SmtpSink
    ) -> None:
        await shop.receive(payment_failed("2026-11-28 23:10"))
        await shop.at(madrid("2026-11-28 23:10"))
        await shop.at(madrid("2026-11-28 23:15"))  # Ana is paged, Laura is written to
        john = Customer(name="John Smith", email="john@client.example", language="en")
        await shop.receive(payment_failed("2026-11-28 23:20", john, order="1002"))
        await shop.receive(payment_failed("2026-11-28 23:21", LAURA, order="1003"))
        await shop.at(madrid("2026-11-28 23:21"))
        received = sorted(m.rcpt_tos[0] for m in smtp.received)
        assert received == ["john@client.example", "laura@cliente.example"]  # Laura once
        english = next(m for m in smtp.received if m.rcpt_tos == ["john@client.example"])
        assert english.text().startswith("Hi John Smith, we noticed the payment for order 1002")
        assert len(shop.channels["telegram"].sent) == 1  # joining pages nobody again

    async def test_none_when_the_customer_pays_during_the_hold(self, shop: Shop, smtp: SmtpSink) -> None:
        await shop.receive(payment_failed("2026-11-28 23:10"))
        await shop.at(madrid("2026-11-28 23:10"))
        paid = replace(event("payment_succeeded", madrid("2026-11-28 23:12"), order="1001"), customer=LAURA)
        await shop.receive(paid)
        await shop.at(madrid("2026-11-28 23:12"))
        await shop.at(madrid("2026-11-28 23:15"))
        assert (smtp.received, shop.channels["telegram"].sent) == ([], [])

    async def test_none_in_business_hours(self, shop: Shop, smtp: SmtpSink) -> None:
        await shop.receive(payment_failed("2026-11-30 10:00"))
        for t in ("2026-11-30 10:00", "2026-11-30 10:05", "2026-11-30 10:30"):
            await shop.at(madrid(t))
        assert smtp.received == []


def urgent_ticket(at: str) -> Event:
    ev = event("ticket_created", madrid(at), source="zendesk")
    return replace(
        ev,
        customer=Customer(name="Marta", email="marta@cliente.example", language="es"),
        ticket=Ticket(id="4321", priority="urgent", status="new", subject="No puedo pagar"),
        order=Order(),
    )


class TestHelpdeskTickets:
    async def test_a_zendesk_ticket_gets_a_public_reply_instead_of_an_email(
        self, db: Database, smtp: SmtpSink, zendesk: FakeZendesk
    ) -> None:
        shop = Shop(db, smtp, zendesk)
        try:
            await shop.receive(urgent_ticket("2026-11-28 23:10"))
            await shop.at(madrid("2026-11-28 23:10"))
            assert shop.channels["telegram"].sent
            [reply] = zendesk.replies()
            assert (reply.ticket_id, reply.public) == ("4321", True)
            assert (
                reply.body
                == "Hola Marta, hemos recibido tu consulta #4321. Te respondemos en menos de 2 horas."
            )
            assert smtp.received == []
            assert "Customer reassured: public reply on Zendesk ticket 4321 (es)" in await shop.timeline()
        finally:
            await shop.close()

    async def test_a_helpdesk_outage_is_retried_and_recorded_without_holding_up_the_page(
        self, db: Database, smtp: SmtpSink, zendesk: FakeZendesk
    ) -> None:
        zendesk.down = "hang"
        shop = Shop(db, smtp, zendesk, timeout=0.5)
        try:
            await shop.receive(urgent_ticket("2026-11-28 23:10"))
            now = madrid("2026-11-28 23:10")
            await shop.service.route_events(now)
            await shop.service.fire_due(now)
            await shop.service.send_pages(now)
            for _ in range(100):  # the page goes out while the helpdesk still hangs
                if shop.channels["telegram"].sent:
                    break
                await asyncio.sleep(0.01)
            assert shop.channels["telegram"].sent and zendesk.replies() == []
            await shop.service.drain(within=10)
            assert len(zendesk.calls) == 2
            assert (
                "Customer reassurance to ticket 4321 by Zendesk failed after 2 tries: "
                "zendesk: timed out after 0.5 s"
            ) in await shop.timeline()
            assert smtp.received == []  # no fall-back e-mail: the reply may have been posted
        finally:
            await shop.close()


async def test_customer_texts_share_the_paging_numbers_rate_limit_with_the_pages(db: Database) -> None:
    """Customer SMS/WhatsApp leave from ONCALL_TWILIO_FROM like SMS pages: the service gives
    the reassurer its dispatcher's limiter (tests/test_delivery.py shows what that does in a flood)."""
    settings = Settings.model_validate(
        {"twilio_account_sid": "AC1", "twilio_auth_token": "tok", "twilio_from": "+15550001111"}
    )
    reassurer = Reassurer(db, settings)
    service = Service(db, config, {}, settings, reassurer)
    try:
        assert reassurer.sms.limiter is service.dispatcher.limiter
    finally:
        await service.aclose()
