"""Shared fixtures. Keep this small: fixtures of one area belong in its test module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.helpdesk import FakeFreshdesk, FakeZendesk
from tests.fakes.smtp import SmtpSink
from tests.fixtures.databases import postgres_url

REPO = Path(__file__).resolve().parents[1]

# Channel credentials that change what `oncall check` and the channels report.
_CHANNEL_ENV = (
    "ONCALL_TELEGRAM_BOT_TOKEN",
    "ONCALL_SLACK_BOT_TOKEN",
    "ONCALL_TWILIO_ACCOUNT_SID",
    "ONCALL_TWILIO_AUTH_TOKEN",
    "ONCALL_TWILIO_FROM",
    "ONCALL_TWILIO_VOICE_FROM",
)


@pytest.fixture
def shop_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped example configuration: tmp_path/escalation_rules.toml and
    tmp_path/rotas/, safe to edit."""
    shutil.copy(REPO / "escalation_rules.toml", tmp_path / "escalation_rules.toml")
    shutil.copytree(REPO / "rotas", tmp_path / "rotas")
    return tmp_path


@pytest.fixture
def shop_env(shop_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`shop_dir`, with the working directory and ONCALL_RULES_FILE / ONCALL_ROTAS_DIR pointing
    at it and no channel credentials, as a fresh install sees it."""
    monkeypatch.chdir(shop_dir)
    monkeypatch.setenv("ONCALL_RULES_FILE", str(shop_dir / "escalation_rules.toml"))
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(shop_dir / "rotas"))
    for name in _CHANNEL_ENV:
        monkeypatch.delenv(name, raising=False)
    return shop_dir


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL: a SQLite file, and a schema of its own on the local PostgreSQL (skipped
    with the reason when unreachable, except under CI=true, where it fails)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'oncall.db'}"
        return
    with postgres_url() as url:
        yield url


# Local fake servers shared by the e-mail, helpdesk and reassurance tests.


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real local SMTP server (aiosmtpd) keeping what it receives."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    """A fake Zendesk API for soporte@tienda.example with API token "zd-token"."""
    fake = FakeZendesk("soporte@tienda.example", "zd-token")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def freshdesk() -> Iterator[FakeFreshdesk]:
    """A fake Freshdesk API with API key "fd-key"."""
    fake = FakeFreshdesk("fd-key")
    fake.start()
    yield fake
    fake.stop()
