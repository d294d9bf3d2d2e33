"""The log filter masks secrets wherever a library puts them (SPEC §3): in the message, its
arguments, a traceback, whatever the line's logger. Lines are written by a real handler
through the filter, as `oncall serve` writes them."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from uvicorn.config import LOGGING_CONFIG

from oncall.logredact import Redactor, settings_secrets
from oncall.settings import Settings
from oncall.web.app import create_app
from tests.fakes.telegram import FakeTelegram

BOT_TOKEN = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


class Log:
    """A logger whose lines go through the filter to a string, as to the server's stderr."""

    def __init__(self, redactor: Redactor, *names: str) -> None:
        self.out = io.StringIO()
        self.handler = logging.StreamHandler(self.out)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.handler.addFilter(redactor)
        self.loggers = [logging.getLogger(n) for n in names]
        self.saved = [(lg.level, lg.propagate) for lg in self.loggers]
        for lg in self.loggers:
            lg.addHandler(self.handler)
            lg.setLevel(logging.DEBUG)
            lg.propagate = False

    def text(self) -> str:
        return self.out.getvalue()

    def close(self) -> None:
        for lg, (level, propagate) in zip(self.loggers, self.saved, strict=True):
            lg.removeHandler(self.handler)
            lg.setLevel(level)
            lg.propagate = propagate


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor()
    r.use(
        settings(
            telegram_bot_token=BOT_TOKEN,
            stripe_secret="whsec_old_one_2025, whsec_new_one_2026",
            admin_token="adm1n-t0ken",
            twilio_account_sid="AC" + "1" * 32,
            twilio_auth_token="tw-auth-token-9",
            smtp_username="mailer",
            smtp_password="smtp-pass-word",
            database_url="postgresql://oncall:db-pa55@db.internal:5432/oncall",
            heartbeat_url="https://hc-ping.com/5b7e3c1a-heartbeat-key",
        )
    )
    return r


@pytest.fixture
def log(redactor: Redactor) -> Iterator[Log]:
    out = Log(redactor, "httpx", "oncall.test", "uvicorn.access", "uvicorn.error")
    yield out
    out.close()


def test_the_bot_token_in_httpxs_request_line_is_masked_and_the_bot_id_kept(log: Log) -> None:
    tg = FakeTelegram().start()
    try:
        with httpx.Client() as client:  # httpx logs each request at INFO
            client.post(f"{tg.api_url}{BOT_TOKEN}/sendMessage", json={"chat_id": 1, "text": "x"})
    finally:
        tg.stop()
    [line] = [x for x in log.text().splitlines() if x.startswith("INFO httpx HTTP Request: POST")]
    assert "/bot7000000001:***/sendMessage" in line and '"HTTP/1.1 200 OK"' in line
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in log.text()


def test_a_bot_token_nobody_configured_is_masked_too(log: Log) -> None:
    logging.getLogger("httpx").info(
        "HTTP Request: %s %s", "POST", "https://api.telegram.org/bot42:Zz9-_other/getMe"
    )
    assert log.text() == "INFO httpx HTTP Request: POST https://api.telegram.org/bot42:***/getMe\n"


def test_a_secret_in_an_exceptions_message_is_masked_in_the_traceback(log: Log) -> None:
    try:
        raise RuntimeError("Twilio refused tw-auth-token-9 for AC…")
    except RuntimeError:
        logging.getLogger("oncall.test").exception("sending failed")
    text = log.text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: Twilio refused *** for AC…" in text
    assert "tw-auth-token-9" not in text


def test_arguments_are_masked_and_the_line_reads_as_the_caller_wrote_it(log: Log) -> None:
    logging.getLogger("oncall.test").warning(
        "admin %s, body %r, done %d%%", "adm1n-t0ken", {"password": "smtp-pass-word"}, 50
    )
    logging.getLogger("oncall.test").info("%s", "100% of %d")  # an argument is never taken for a format
    assert log.text().splitlines() == [
        "WARNING oncall.test admin ***, body {'password': '***'}, done 50%",
        "INFO oncall.test 100% of %d",
    ]


def test_every_part_of_a_rotated_secret_list_is_masked_alone_and_together(log: Log) -> None:
    test = logging.getLogger("oncall.test")
    test.info("old %s", "whsec_old_one_2025")
    test.info("new %s", "whsec_new_one_2026")
    test.info("setting %s", "whsec_old_one_2025, whsec_new_one_2026")
    assert log.text().splitlines() == [
        "INFO oncall.test old ***",
        "INFO oncall.test new ***",
        "INFO oncall.test setting ***",
    ]


def test_an_ack_links_token_is_masked_in_the_access_log(log: Log) -> None:
    token = "MX5vd25lcn50cG1hNzE.kAS7kpb_1h8Da5s_ZiPM5Q"
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50312", "POST", f"/ack/{token}", "1.1", 200)
    logging.getLogger("oncall.test").info("page: Ack: https://oncall.example/ack/%s\nnext line", token)
    assert log.text().splitlines() == [
        'INFO uvicorn.access 127.0.0.1:50312 - "POST /ack/*** HTTP/1.1" 200',
        "INFO oncall.test page: Ack: https://oncall.example/ack/***",
        "next line",
    ]


def test_credentials_as_they_travel_are_masked(log: Log) -> None:
    """Basic auth of Twilio and SMTP AUTH carry the secret base64-encoded; header dumps carry
    tokens nobody configured; a database URL carries its password."""
    basic = base64.b64encode(f"{'AC' + '1' * 32}:tw-auth-token-9".encode()).decode()
    plain = base64.b64encode(b"\0mailer\0smtp-pass-word").decode()
    test = logging.getLogger("oncall.test")
    test.debug("headers: {'Authorization': 'Basic %s'}", basic)
    test.debug("smtp: AUTH PLAIN %s", plain)
    test.debug("slack headers: {'Authorization': 'Bearer xoxb-not-configured-1'}")
    test.error("cannot connect to postgresql://oncall:db-pa55@db.internal:5432/oncall")
    test.warning("heartbeat https://hc-ping.com/5b7e3c1a-heartbeat-key answered 500")
    text = log.text()
    for secret in (basic, plain, "xoxb-not-configured-1", "db-pa55", "5b7e3c1a-heartbeat-key"):
        assert secret not in text
    assert "{'Authorization': 'Basic ***'}" in text and "{'Authorization': 'Bearer ***'}" in text
    assert "postgresql://oncall:***@db.internal" in text and "https://hc-ping.com/*** answered" in text


def test_a_line_that_cannot_be_formatted_still_hides_its_arguments(log: Log) -> None:
    logging.getLogger("oncall.test").info("two %s %s", "adm1n-t0ken")  # a caller's bug
    assert "adm1n-t0ken" not in log.text() and "two %s %s" in log.text()


def test_the_ack_link_key_is_masked_once_loaded(log: Log, redactor: Redactor) -> None:
    redactor.use_secret("ack-link key", "c2VjcmV0LWFjay1rZXktMTY=")
    logging.getLogger("oncall.test").debug("row %s", ("ack_key", "c2VjcmV0LWFjay1rZXktMTY="))
    assert log.text() == "DEBUG oncall.test row ('ack_key', '***')\n"


def test_every_secret_setting_is_known_to_the_filter() -> None:
    """A secret setting added later is masked without anyone listing it here."""
    names = [n for n, f in Settings.model_fields.items() if f.annotation == SecretStr | None]
    assert len(names) >= 14
    values = {n: f"value-of-{n}" for n in names}
    secrets = settings_secrets(settings(**values))
    assert all(v in secrets for v in values.values())


def test_settings_printed_show_no_secret_nor_database_password() -> None:
    s = settings(
        admin_token="adm1n-t0ken",
        database_url="postgresql://oncall:db-pa55@db.internal/oncall",
        heartbeat_url="https://hc-ping.com/5b7e3c1a-heartbeat-key",
    )
    for text in (repr(s), str(s)):
        assert "adm1n-t0ken" not in text and "db-pa55" not in text and "5b7e3c1a" not in text
        assert "postgresql://oncall:***@db.internal/oncall" in text and "https://hc-ping.com/***" in text


async def test_uvicorns_own_handlers_mask_too_when_it_runs_the_app_with_its_log_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`uvicorn --factory oncall.web.app:create_app` applies uvicorn's log config (its own
    handlers, its access log): once the app starts, those handlers mask too."""
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names}
    app = create_app(settings(database_url=f"sqlite:///{tmp_path / 'u.db'}", admin_token="adm1n-t0ken"))
    try:
        uvicorn.Config(app, log_config=LOGGING_CONFIG)  # configures logging as `uvicorn` does
        async with app.router.lifespan_context(app):
            access = logging.getLogger("uvicorn.access")
            access.info(
                '%s - "%s %s HTTP/%s" %d', "10.0.0.1:1", "GET", "/ack/MX5vd25lcn50.kAS7kp", "1.1", 200
            )
            logging.getLogger("uvicorn.error").warning("token adm1n-t0ken")
    finally:
        for n, (handlers, propagate) in saved.items():
            logging.getLogger(n).handlers, logging.getLogger(n).propagate = handlers, propagate
    out, err = capsys.readouterr()
    assert '"GET /ack/*** HTTP/1.1" 200' in out and "token ***" in err
    assert "MX5vd25lcn50" not in out + err and "adm1n-t0ken" not in out + err
