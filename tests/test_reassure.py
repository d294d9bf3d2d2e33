"""Customer reassurance end to end below the service: real SMTP (aiosmtpd), fake Zendesk,
Freshdesk and Twilio over HTTP, a real SQLite and PostgreSQL store.

The shop is the SPEC's Tienda Ejemplo in Madrid: closed on weekends, so Saturday 23:15 (when
the weekend story's page goes out) is a time to reassure, and Monday 10:00 is not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from oncall.channels.email import EmailSender
from oncall.channels.helpdesk import HelpdeskReplier
from oncall.core.models import BusinessHours, Config, RulesConfig, Shop, Target, Window
from oncall.reassure import CustomerContact, Reassurer
from oncall.settings import Settings
from oncall.store import Database, open_database
from tests.fakes.helpdesk import FakeFreshdesk, FakeZendesk
from tests.fakes.smtp import SmtpSink
from tests.fakes.twilio import FakeTwilio
from tests.recording import MADRID

SAT_2315 = datetime(2026, 11, 28, 23, 15, tzinfo=MADRID)
MON_1000 = datetime(2026, 11, 30, 10, 0, tzinfo=MADRID)

ES = (
    "Hola {customer_name}, hemos visto que el pago de tu pedido {order_number} no se ha completado. "
    "Nuestro equipo de guardia ya está avisado y te escribirá en menos de {response_time}. "
    "Si no, abrimos {next_open}."
)
EN = (
    "Hi {customer_name}, we noticed the payment for order {order_number} did not go through. "
    "Our on-call team has been alerted and will contact you within {response_time}. "
    "Otherwise we open {next_open}."
)

LAURA = CustomerContact(name="Laura Pérez", email="laura@cliente.example", language="es", source="stripe",
                        order_number="1001")  # fmt: skip
JOHN = CustomerContact(name="John Smith", email="john@client.example", language="en", source="shopify",
                       order_number="1002")  # fmt: skip
PEDRO = CustomerContact(name="Pedro", phone="+34600999888", source="woocommerce", order_number="1003")
TICKET = CustomerContact(name="Marta", email="marta@cliente.example", language="es", source="zendesk",
                         ticket_id="4321")  # fmt: skip


def config() -> Config:
    weekday = (Window(9 * 60, 14 * 60), Window(16 * 60, 19 * 60))
    rules = RulesConfig(
        shop=Shop("Tienda Ejemplo", MADRID, "es", timedelta(hours=2), Target("person", "owner")),
        business_hours=BusinessHours(
            week={0: weekday, 1: weekday, 2: weekday, 3: weekday, 4: (Window(9 * 60, 15 * 60),)}
        ),
        policies={},
        rules=(),
        messages={
            "payment_failed": {"es": ES, "en": EN},
            "ticket": {
                "es": "Hola {customer_name}, hemos recibido tu consulta #{ticket_id}.",
                "en": "Hi {customer_name}, we got your request #{ticket_id}.",
            },
        },
    )
    return Config(rules=rules, people={}, rotas={})


# ---------------------------------------------------------------------------------------------
# The world: store, SMTP server, fake helpdesks and Twilio


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = open_database(db_url)
    await asyncio.to_thread(database.migrate)
    yield database
    await database.aclose()


def settings(
    smtp: SmtpSink | None = None,
    zendesk: FakeZendesk | None = None,
    freshdesk: FakeFreshdesk | None = None,
    twilio: FakeTwilio | None = None,
    twilio_from: str = "+34910000000",
) -> Settings:
    values: dict[str, Any] = {}
    if smtp is not None:
        values.update(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False,
                      smtp_from="Tienda Ejemplo <soporte@tienda.example>")  # fmt: skip
    if zendesk is not None:
        values.update(zendesk_url=zendesk.url, zendesk_email="soporte@tienda.example",
                      zendesk_api_token=SecretStr("zd-token"))  # fmt: skip
    if freshdesk is not None:
        values.update(freshdesk_url=freshdesk.url, freshdesk_api_key=SecretStr("fd-key"))
    if twilio is not None:
        values.update(twilio_account_sid="AC" + "0" * 32, twilio_auth_token=SecretStr("tw-token"),
                      twilio_from=twilio_from, twilio_api_url=twilio.api_url)  # fmt: skip
    return Settings.model_validate(values)


class Timeline:
    def __init__(self) -> None:
        self.entries: list[str] = []

    async def __call__(self, text: str) -> None:
        self.entries.append(text)


class Sleeps:
    """Back-off without waiting: the delays the reassurer asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def reassurer(
    db: Database, s: Settings, sleeps: Sleeps | None = None, timeout: float = 5.0, attempts: int = 4
) -> Reassurer:
    return Reassurer(
        db,
        s,
        email=EmailSender(s, timeout=timeout),
        helpdesk=HelpdeskReplier(s, timeout=timeout),
        attempts=attempts,
        sleep=sleeps or Sleeps(),
    )


async def rows(db: Database) -> list[tuple[Any, ...]]:
    found = await db.transaction(
        lambda conn: conn.fetchall(
            "SELECT incident_id, customer, channel, state, attempts FROM reassurances"
            " ORDER BY incident_id, customer"
        )
    )
    return [tuple(r) for r in found]


# ---------------------------------------------------------------------------------------------


class TestWhatTheCustomerReads:
    async def test_a_spanish_customer_gets_the_spanish_email(self, db: Database, smtp: SmtpSink) -> None:
        timeline = Timeline()
        await reassurer(db, settings(smtp)).reassure(
            1, "payment_failed", [LAURA], config(), SAT_2315, timeline
        )
        [mail] = smtp.received
        assert mail.rcpt_tos == ["laura@cliente.example"]
        assert mail.message["Subject"] == "Tienda Ejemplo: estamos con tu pedido 1001"
        assert mail.message["Auto-Submitted"] == "auto-replied"
        assert mail.text().strip() == (
            "Hola Laura Pérez, hemos visto que el pago de tu pedido 1001 no se ha completado. "
            "Nuestro equipo de guardia ya está avisado y te escribirá en menos de 2 horas. "
            "Si no, abrimos el lunes a las 9:00."
        )
        assert "<p>Hola Laura Pérez, hemos visto" in mail.html()
        assert timeline.entries == ["Customer reassured: e-mail to laura@cliente.example (es)"]

    async def test_an_english_customer_gets_the_english_email(self, db: Database, smtp: SmtpSink) -> None:
        await reassurer(db, settings(smtp)).reassure(
            1, "payment_failed", [JOHN], config(), SAT_2315, Timeline()
        )
        [mail] = smtp.received
        assert mail.message["Subject"] == "Tienda Ejemplo: we are on your order 1002"
        assert mail.text().strip() == (
            "Hi John Smith, we noticed the payment for order 1002 did not go through. "
            "Our on-call team has been alerted and will contact you within 2 hours. "
            "Otherwise we open Monday at 9:00."
        )

    async def test_a_customer_without_name_or_language_gets_a_greeting_in_the_shops_language(
        self, db: Database, smtp: SmtpSink
    ) -> None:
        anon = CustomerContact(email="x@cliente.example", source="stripe")
        await reassurer(db, settings(smtp)).reassure(
            1, "payment_failed", [anon], config(), SAT_2315, Timeline()
        )
        assert (
            smtp.received[0]
            .text()
            .startswith("Hola, hemos visto que el pago de tu pedido no se ha completado.")
        )


class TestOncePerCustomer:
    async def test_a_burst_of_five_failures_from_three_customers_sends_three_messages(
        self, db: Database, smtp: SmtpSink
    ) -> None:
        timeline = Timeline()
        pedro = CustomerContact(name="Pedro", email="pedro@cliente.example", source="woocommerce")
        burst = [LAURA, JOHN, LAURA, CustomerContact(email="LAURA@cliente.example ", source="stripe"), pedro]
        r = reassurer(db, settings(smtp))
        await r.reassure(1, "payment_failed", burst, config(), SAT_2315, timeline)
        assert sorted(m.rcpt_tos[0] for m in smtp.received) == [
            "john@client.example", "laura@cliente.example", "pedro@cliente.example",
        ]  # fmt: skip
        # The service calling again (a restart, a second instance) sends nothing more.
        await r.reassure(1, "payment_failed", burst, config(), SAT_2315 + timedelta(minutes=5), timeline)
        assert len(smtp.received) == 3
        assert len(timeline.entries) == 3

    async def test_the_same_message_within_12_hours_is_not_sent_again(
        self, db: Database, smtp: SmtpSink
    ) -> None:
        timeline = Timeline()
        r = reassurer(db, settings(smtp))
        await r.reassure(1, "payment_failed", [LAURA], config(), SAT_2315, timeline)
        await r.reassure(
            2, "payment_failed", [LAURA], config(), SAT_2315 + timedelta(hours=11, minutes=59), timeline
        )
        assert len(smtp.received) == 1
        assert timeline.entries[1] == (
            'Customer reassurance not sent to laura@cliente.example: "payment_failed" already went to them '
            "at 2026-11-28 23:15 (incident 1)"
        )
        await r.reassure(3, "payment_failed", [LAURA], config(), SAT_2315 + timedelta(hours=12), timeline)
        assert len(smtp.received) == 2

    async def test_another_message_within_12_hours_is_sent(self, db: Database, smtp: SmtpSink) -> None:
        r = reassurer(db, settings(smtp))
        await r.reassure(1, "payment_failed", [LAURA], config(), SAT_2315, Timeline())
        await r.reassure(2, "ticket", [LAURA], config(), SAT_2315 + timedelta(hours=1), Timeline())
        assert len(smtp.received) == 2

    async def test_two_instances_racing_for_the_same_customer_send_once(
        self, db_url: str, db: Database, smtp: SmtpSink
    ) -> None:
        other = open_database(db_url)  # a second process: its own connection and writer
        try:
            a, b = reassurer(db, settings(smtp)), reassurer(other, settings(smtp))
            await asyncio.gather(
                a.reassure(1, "payment_failed", [LAURA], config(), SAT_2315, Timeline()),
                b.reassure(2, "payment_failed", [LAURA], config(), SAT_2315, Timeline()),
            )
        finally:
            await other.aclose()
        assert len(smtp.received) == 1

    async def test_every_outcome_is_in_the_store(self, db: Database, smtp: SmtpSink) -> None:
        r = reassurer(db, settings(smtp))
        await r.reassure(1, "payment_failed", [LAURA, JOHN], config(), SAT_2315, Timeline())
        await r.reassure(2, "payment_failed", [LAURA], config(), SAT_2315, Timeline())
        assert await rows(db) == [
            (1, "email:john@client.example", "email", "sent", 1),
            (1, "email:laura@cliente.example", "email", "sent", 1),
            (2, "email:laura@cliente.example", "email", "skipped", 0),
        ]


class TestWhenNot:
    async def test_none_while_business_hours_are_open(self, db: Database, smtp: SmtpSink) -> None:
        timeline = Timeline()
        await reassurer(db, settings(smtp)).reassure(
            1, "payment_failed", [LAURA], config(), MON_1000, timeline
        )
        assert (smtp.received, timeline.entries, await rows(db)) == ([], [], [])

    async def test_a_message_without_text_is_noted_and_nothing_sent(
        self, db: Database, smtp: SmtpSink
    ) -> None:
        timeline = Timeline()
        await reassurer(db, settings(smtp)).reassure(1, "nope", [LAURA], config(), SAT_2315, timeline)
        assert smtp.received == []
        assert timeline.entries == ["Customer reassurance not sent: no [message.nope] text"]

    async def test_a_customer_nobody_can_reach_is_noted_once(self, db: Database) -> None:
        timeline = Timeline()
        r = reassurer(db, settings())
        await r.reassure(
            1, "payment_failed", [LAURA, CustomerContact(name="Ana")], config(), SAT_2315, timeline
        )
        await r.reassure(1, "payment_failed", [LAURA], config(), SAT_2315, timeline)
        assert timeline.entries == [
            "Customer reassurance not sent to laura@cliente.example: no channel configured for their e-mail",
            "Customer reassurance not sent to Ana: no e-mail, phone or ticket",
        ]


class TestTheChannelFollowsTheCustomer:
    async def test_a_zendesk_ticket_gets_a_public_reply_not_an_email(
        self, db: Database, smtp: SmtpSink, zendesk: FakeZendesk
    ) -> None:
        timeline = Timeline()
        await reassurer(db, settings(smtp, zendesk)).reassure(
            1, "ticket", [TICKET], config(), SAT_2315, timeline
        )
        assert smtp.received == []
        [reply] = zendesk.replies()
        assert (reply.ticket_id, reply.public) == ("4321", True)
        assert reply.body == "Hola Marta, hemos recibido tu consulta #4321."
        assert timeline.entries == ["Customer reassured: public reply on Zendesk ticket 4321 (es)"]

    async def test_a_freshdesk_ticket_gets_a_reply(
        self, db: Database, smtp: SmtpSink, freshdesk: FakeFreshdesk
    ) -> None:
        fd = CustomerContact(name="Marta", email="marta@cliente.example", source="freshdesk", ticket_id="77")
        r = reassurer(db, settings(smtp, freshdesk=freshdesk))
        await r.reassure(1, "ticket", [fd], config(), SAT_2315, Timeline())
        assert smtp.received == []
        assert [r.body for r in freshdesk.replies()] == ["<p>Hola Marta, hemos recibido tu consulta #77.</p>"]

    async def test_without_helpdesk_credentials_the_ticket_customer_gets_an_email(
        self, db: Database, smtp: SmtpSink
    ) -> None:
        await reassurer(db, settings(smtp)).reassure(1, "ticket", [TICKET], config(), SAT_2315, Timeline())
        assert smtp.received[0].rcpt_tos == ["marta@cliente.example"]

    async def test_a_customer_with_only_a_phone_gets_an_sms(self, db: Database, twilio: FakeTwilio) -> None:
        timeline = Timeline()
        r = reassurer(db, settings(twilio=twilio))
        await r.reassure(1, "payment_failed", [PEDRO], config(), SAT_2315, timeline)
        [call] = twilio.sent()
        assert call.params["To"] == "+34600999888"
        assert call.params["Body"].startswith("Hola Pedro, hemos visto que el pago de tu pedido 1003")
        assert "StatusCallback" not in call.params
        assert timeline.entries == ["Customer reassured: SMS to +34600999888 (es)"]

    async def test_whatsapp_when_the_sender_is_a_whatsapp_number(
        self, db: Database, twilio: FakeTwilio
    ) -> None:
        s = settings(twilio=twilio, twilio_from="whatsapp:+34910000000")
        await reassurer(db, s).reassure(1, "payment_failed", [PEDRO], config(), SAT_2315, Timeline())
        assert twilio.sent()[0].params["To"] == "whatsapp:+34600999888"


class TestFailures:
    async def test_a_helpdesk_outage_is_retried_with_backoff(
        self, db: Database, zendesk: FakeZendesk
    ) -> None:
        zendesk.fail("500", times=2)
        timeline, sleeps = Timeline(), Sleeps()
        r = reassurer(db, settings(zendesk=zendesk), sleeps)
        await r.reassure(1, "ticket", [TICKET], config(), SAT_2315, timeline)
        assert len(zendesk.replies()) == 1 and len(zendesk.calls) == 3
        assert len(sleeps.delays) == 2 and 0.5 <= sleeps.delays[0] <= 1.0 and 1.0 <= sleeps.delays[1] <= 2.0
        assert timeline.entries == [
            "Customer reassured: public reply on Zendesk ticket 4321 (es) after 3 tries"
        ]

    async def test_a_rate_limit_waits_as_long_as_it_says(self, db: Database, zendesk: FakeZendesk) -> None:
        zendesk.fail("429", retry_after=20)
        sleeps = Sleeps()
        r = reassurer(db, settings(zendesk=zendesk), sleeps)
        await r.reassure(1, "ticket", [TICKET], config(), SAT_2315, Timeline())
        assert sleeps.delays == [20.0] and len(zendesk.replies()) == 1

    async def test_a_helpdesk_that_stays_down_is_recorded_and_frees_the_window(
        self, db: Database, zendesk: FakeZendesk
    ) -> None:
        zendesk.down = "500"
        timeline = Timeline()
        r = reassurer(db, settings(zendesk=zendesk))
        await r.reassure(1, "ticket", [TICKET], config(), SAT_2315, timeline)
        assert len(zendesk.calls) == 4
        assert timeline.entries == [
            "Customer reassurance to ticket 4321 by Zendesk failed after 4 tries: "
            "zendesk: HTTP 500 Something went wrong"
        ]
        assert (await rows(db))[0][2:] == ("zendesk", "failed", 4)
        zendesk.down = None
        await r.reassure(2, "ticket", [TICKET], config(), SAT_2315 + timedelta(hours=1), timeline)
        assert len(zendesk.replies()) == 1

    async def test_a_permanent_refusal_is_not_retried(self, db: Database, smtp: SmtpSink) -> None:
        smtp.refuse = 550
        timeline = Timeline()
        await reassurer(db, settings(smtp)).reassure(
            1, "payment_failed", [LAURA], config(), SAT_2315, timeline
        )
        assert len(timeline.entries) == 1
        assert timeline.entries[0].startswith(
            "Customer reassurance to laura@cliente.example by e-mail failed: SMTP"
        )

    async def test_a_hanging_helpdesk_never_holds_up_another_customers_email(
        self, db: Database, smtp: SmtpSink, zendesk: FakeZendesk
    ) -> None:
        zendesk.down = "hang"
        timeline = Timeline()
        r = reassurer(db, settings(smtp, zendesk), timeout=0.5, attempts=2)
        task = asyncio.create_task(r.reassure(1, "ticket", [TICKET, JOHN], config(), SAT_2315, timeline))
        for _ in range(200):  # John's e-mail arrives while Marta's ticket reply still hangs
            if smtp.received:
                break
            await asyncio.sleep(0.01)
        assert [m.rcpt_tos for m in smtp.received] == [["john@client.example"]]
        assert not task.done()
        await task
        assert timeline.entries == [
            "Customer reassured: e-mail to john@client.example (en)",
            "Customer reassurance to ticket 4321 by Zendesk failed after 2 tries: "
            "zendesk: timed out after 0.5 s",
        ]

    async def test_a_timeline_that_fails_does_not_stop_the_sends(self, db: Database, smtp: SmtpSink) -> None:
        async def broken(text: str) -> None:
            raise RuntimeError("store down")

        await reassurer(db, settings(smtp)).reassure(
            1, "payment_failed", [LAURA, JOHN], config(), SAT_2315, broken
        )
        assert len(smtp.received) == 2


class CountingEmail(EmailSender):
    """The real sender, counting how many sends are in flight at once."""

    in_flight = 0
    most = 0

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        CountingEmail.in_flight += 1
        CountingEmail.most = max(CountingEmail.most, CountingEmail.in_flight)
        try:
            return await super().send(*args, **kwargs)
        finally:
            CountingEmail.in_flight -= 1


class TestFlood:
    async def test_a_flood_of_customers_opens_a_few_smtp_connections_at_a_time(
        self, db: Database, smtp: SmtpSink
    ) -> None:
        CountingEmail.most = 0
        s = settings(smtp)
        r = Reassurer(db, s, email=CountingEmail(s), concurrency=3)
        crowd = [CustomerContact(email=f"c{i}@cliente.example", source="stripe") for i in range(30)]
        await r.reassure(1, "payment_failed", crowd, config(), SAT_2315, Timeline())
        assert len(smtp.received) == 30
        assert CountingEmail.most == 3
