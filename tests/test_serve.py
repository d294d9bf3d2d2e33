"""A real `oncall serve` process: `oncall trigger` samples reach it signed, its events are on
disk after it is killed, and `oncall migrate` prepares the database first."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from oncall.sources.samples import SAMPLES
from tests.live import Server, free_port

pytestmark = pytest.mark.slow

SECRETS = {
    "ONCALL_STRIPE_SECRET": "whsec_serve",
    "ONCALL_SHOPIFY_SECRET": "shopify-serve",
    "ONCALL_WOOCOMMERCE_SECRET": "woo-serve",
    "ONCALL_ZENDESK_SECRET": "zendesk-serve",
    "ONCALL_FRESHDESK_TOKEN": "freshdesk-serve",
    "ONCALL_GENERIC_SECRET": "generic-serve",
}


def environment(tmp_path: Path) -> dict[str, str]:
    """What `oncall` run by hand next to the server in `tmp_path` sees."""
    return Server(tmp_path, env=SECRETS).environment()


def oncall(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oncall.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_every_trigger_sample_is_accepted_and_kept_after_the_server_is_killed(tmp_path: Path) -> None:
    with Server(tmp_path, env=SECRETS) as server:
        env = server.environment()
        for source, kinds in SAMPLES.items():
            for kind in kinds:
                done = oncall("trigger", source, kind, env=env)
                assert done.returncode == 0, done.stderr
                assert "-> 202" in done.stdout
        server.kill()  # no shutdown: only what was committed survives
    with sqlite3.connect(tmp_path / "oncall.db") as db:
        rows = db.execute("SELECT source, kind FROM events ORDER BY id").fetchall()
    assert rows == [(source, kind) for source, kinds in SAMPLES.items() for kind in kinds]


def test_serve_logs_its_setup_without_secrets_and_applies_migrations(tmp_path: Path) -> None:
    with Server(tmp_path, env=SECRETS) as server:
        server.terminate()
    log = server.log.read_text()
    assert "webhook sources with a secret: shopify, stripe, woocommerce, zendesk, freshdesk, generic" in log
    assert "database migrations applied: 0001_events" in log
    assert not any(secret in log for secret in SECRETS.values())


def test_the_start_up_log_calls_sms_off_without_a_sender_number_as_the_channel_does() -> None:
    from pydantic import SecretStr

    from oncall.settings import Settings
    from oncall.web.app import describe_setup

    half = Settings(_env_file=None).model_copy(  # type: ignore[call-arg]
        update={
            "twilio_account_sid": "AC1",
            "twilio_auth_token": SecretStr("tok"),
            "smtp_host": "smtp.example",
        }
    )
    assert (
        "channels on: none; off (pages go to the console log): telegram, slack, sms, voice, email"
        in describe_setup(half)
    )
    full = half.model_copy(update={"twilio_from": "+34900000000", "smtp_from": "shop@example.com"})
    assert "channels on: sms, voice, email;" in describe_setup(full)
    whatsapp = full.model_copy(update={"twilio_from": "whatsapp:+34900000000"})
    assert "channels on: sms, email;" in describe_setup(whatsapp)  # a WhatsApp sender cannot call


def test_migrate_then_serve_without_migrating(tmp_path: Path) -> None:
    server = Server(tmp_path, env=SECRETS, args=("--no-migrate",))
    env = server.environment()
    first = oncall("migrate", env=env)
    assert first.returncode == 0 and "applied" in first.stdout and "0001_events" in first.stdout
    assert "up to date" in oncall("migrate", env=env).stdout
    with server:
        done = oncall("trigger", "stripe", "payment_failed", env=env)
        assert "-> 202" in done.stdout


def test_trigger_explains_what_is_missing(tmp_path: Path) -> None:
    env = environment(tmp_path)
    unknown = oncall("trigger", "stripe", "refund", env=env)
    assert unknown.returncode == 1
    assert "no stripe sample of kind 'refund' (known: payment_failed" in unknown.stderr
    no_secret = oncall("trigger", "shopify", "payment_failed", env={**env, "ONCALL_SHOPIFY_SECRET": ""})
    assert no_secret.returncode == 1 and "ONCALL_SHOPIFY_SECRET is not set" in no_secret.stderr
    down = oncall("trigger", "generic", "checkout_error", "--url", "http://127.0.0.1:9", env=env)
    assert down.returncode == 1 and "cannot post to http://127.0.0.1:9/webhooks/generic" in down.stderr


def test_a_port_already_in_use_exits_1_with_the_reason(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = oncall("serve", "--port", str(port), env=environment(tmp_path))
    assert done.returncode == 1  # SPEC §6: 1 invalid input or configuration (uvicorn's own is 3)
    assert "address already in use" in done.stderr
    assert "oncall serve could not start" in done.stderr
