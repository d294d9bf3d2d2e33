"""Shared fixtures. Keep this small: fixtures of one area belong in its test module."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.fakes import FakeServer
from tests.fakes.helpdesk import FakeFreshdesk, FakeZendesk
from tests.fakes.paging_shop import PagingShop, open_shop
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import SmtpSink
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
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


@pytest.fixture
def cli_store(shop_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`shop_env` with ONCALL_DATABASE_URL naming a fresh SQLite file beside it: what the
    terminal commands (`oncall incidents`, `ack`, `report`…) read; the URL."""
    url = f"sqlite:///{shop_env / 'oncall.db'}"
    monkeypatch.setenv("ONCALL_DATABASE_URL", url)
    return url


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[PagingShop]:
    """The weekend shop on the real app, SDKs and fake providers (`tests.fakes.paging_shop`);
    a module needing another shop defines its own `shop`."""
    async with open_shop(tmp_path) as s:
        yield s


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL: a SQLite file, and a schema of its own on the local PostgreSQL (skipped
    with the reason when unreachable, except under CI=true, where it fails)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'oncall.db'}"
        return
    with postgres_url() as url:
        yield url


Fake = TypeVar("Fake", bound=FakeServer)


def running(fake: Fake) -> Iterator[Fake]:
    """`fake` started for one test, stopped after it whatever happened."""
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


# Local fake servers shared by the e-mail, helpdesk, reassurance and fault tests.


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real local SMTP server (aiosmtpd) keeping what it receives."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    """A fake Zendesk API for soporte@tienda.example with API token "zd-token"."""
    yield from running(FakeZendesk("soporte@tienda.example", "zd-token"))


@pytest.fixture
def freshdesk() -> Iterator[FakeFreshdesk]:
    """A fake Freshdesk API with API key "fd-key"."""
    yield from running(FakeFreshdesk("fd-key"))


# The fake providers for a real `oncall serve` to page through (`tests.live.channel_env`).


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    yield from running(FakeTelegram())


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    yield from running(FakeSlack())


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    yield from running(FakeTwilio())
