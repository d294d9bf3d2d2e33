"""Customer e-mail through a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from oncall.channels.email import EmailSender
from oncall.settings import Settings
from tests.fakes.smtp import SmtpSink, free_port, self_signed

SAT_2315 = datetime(2026, 11, 28, 23, 15, tzinfo=ZoneInfo("Europe/Madrid"))
TEXT = "Hola Laura, hemos visto que el pago de tu pedido 1001 no se ha completado.\n\nTienda Ejemplo"


def settings(port: int, **kw: object) -> Settings:
    base: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": "Tienda Ejemplo <soporte@tienda.example>",
        "smtp_starttls": False,
    }
    base.update(kw)
    return Settings.model_validate(base)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return self_signed(tmp_path_factory.mktemp("tls"))


class TestTheMessageAsTheCustomerGetsIt:
    async def test_headers_text_and_html(self, sink: SmtpSink) -> None:
        sender = EmailSender(settings(sink.port))
        subject = "Tienda Ejemplo: estamos con tu pedido 1001"
        got = await sender.send("laura@cliente.example", "Laura Pérez", subject, TEXT, "es", SAT_2315)
        assert got.ok, got.error
        [received] = sink.received
        msg = received.message
        assert received.rcpt_tos == ["laura@cliente.example"]
        assert received.mail_from == "soporte@tienda.example"
        assert msg["From"] == "Tienda Ejemplo <soporte@tienda.example>"
        assert msg["To"] == "Laura Pérez <laura@cliente.example>"
        assert msg["Subject"] == "Tienda Ejemplo: estamos con tu pedido 1001"
        assert msg["Date"] == "Sat, 28 Nov 2026 23:15:00 +0100"
        assert msg["Message-ID"].endswith("@tienda.example>") and msg["Message-ID"] == got.ref
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["Content-Language"] == "es"
        assert received.text().strip() == TEXT
        assert (
            "<p>Hola Laura, hemos visto que el pago de tu pedido 1001 no se ha completado.</p>"
            in received.html()
        )
        assert '<html lang="es">' in received.html()

    async def test_html_is_escaped(self, sink: SmtpSink) -> None:
        await EmailSender(settings(sink.port)).send(
            "a@b.example", None, "s", "Pedido <1001> & co", "es", SAT_2315
        )
        assert "Pedido &lt;1001&gt; &amp; co" in sink.received[0].html()

    async def test_an_unknown_name_addresses_the_mailbox_only(self, sink: SmtpSink) -> None:
        await EmailSender(settings(sink.port)).send("a@b.example", None, "s", "t", "en", SAT_2315)
        assert sink.received[0].message["To"] == "a@b.example"


class TestStartTls:
    async def test_starttls_with_credentials(self, certificate: tuple[Path, Path]) -> None:
        sink = SmtpSink(tls=certificate, users={"tienda": "s3cret"}).start()
        try:
            s = settings(
                sink.port, smtp_starttls=True, smtp_username="tienda", smtp_password=SecretStr("s3cret")
            )
            got = await EmailSender(s, tls_context=sink.client_tls).send(
                "a@b.example", None, "s", "t", "es", SAT_2315
            )
            assert got.ok, got.error
            assert sink.received[0].tls and sink.received[0].login == "tienda"
        finally:
            sink.stop()

    async def test_a_server_requiring_starttls_refuses_a_plain_send(
        self, certificate: tuple[Path, Path]
    ) -> None:
        sink = SmtpSink(tls=certificate).start()
        try:
            got = await EmailSender(settings(sink.port, smtp_starttls=False)).send(
                "a@b.example", None, "s", "t", "es", SAT_2315
            )
            assert not got.ok and sink.received == []
        finally:
            sink.stop()

    async def test_starttls_required_but_not_offered_is_an_error_not_a_plain_send(
        self, sink: SmtpSink
    ) -> None:
        got = await EmailSender(settings(sink.port, smtp_starttls=True)).send(
            "a@b.example", None, "s", "t", "es", SAT_2315
        )
        assert not got.ok and sink.received == []


class TestFailures:
    async def test_a_temporary_refusal_is_retryable(self, sink: SmtpSink) -> None:
        sink.refuse = 451
        got = await EmailSender(settings(sink.port)).send("a@b.example", None, "s", "t", "es", SAT_2315)
        assert (got.ok, got.retryable) == (False, True)
        assert got.error is not None and "451" in got.error

    async def test_a_permanent_refusal_is_not(self, sink: SmtpSink) -> None:
        sink.refuse = 550
        got = await EmailSender(settings(sink.port)).send("a@b.example", None, "s", "t", "es", SAT_2315)
        assert (got.ok, got.retryable) == (False, False)

    async def test_a_server_that_is_down_is_retryable(self) -> None:
        got = await EmailSender(settings(free_port()), timeout=2).send(
            "a@b.example", None, "s", "t", "es", SAT_2315
        )
        assert (got.ok, got.retryable) == (False, True)

    async def test_the_password_never_appears_in_an_error(self, sink: SmtpSink) -> None:
        s = settings(sink.port, smtp_username="tienda", smtp_password=SecretStr("s3cret-pw"))
        got = await EmailSender(s).send("a@b.example", None, "s", "t", "es", SAT_2315)
        assert not got.ok and "s3cret-pw" not in (got.error or "")

    def test_off_without_host_or_sender(self) -> None:
        assert not EmailSender(Settings.model_validate({})).configured()
        assert EmailSender(settings(25)).configured()
