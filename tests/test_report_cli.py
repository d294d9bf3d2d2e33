"""`oncall report [--since WHEN] [--json]` (SPEC §6) on the server's store: the weekend of the
shipped example, where Laura's payment failed on Saturday night and her promise was broken."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from oncall.cli import main
from oncall.commands import report
from oncall.config import load_config
from oncall.core.models import Person
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store.database import open_database
from tests.fakes.smtp import SmtpSink
from tests.recording import madrid
from tests.test_promises_service import laura_fails, mail_settings, reassurer


@pytest.fixture
def weekend_store(cli_store: str, shop_env: Path, smtp: SmtpSink) -> None:
    config = load_config(shop_env / "escalation_rules.toml", shop_env / "rotas")

    async def seed() -> None:
        db = open_database(cli_store)
        await asyncio.to_thread(db.migrate)
        settings = Settings.model_validate(mail_settings(smtp))
        service = Service(db, lambda: config, {}, settings, reassurer(smtp)(db, settings), bundle_window=0)
        await db.store_event(laura_fails(), b"{}")
        for at in ("2026-11-28 23:10", "2026-11-28 23:15"):
            await Scheduler(service, clock=lambda at=at: madrid(at)).run_once()  # type: ignore[misc]
            await service.drain(10)
        await service.act(1, Person("api", "the owner (API)"), "ack", "api", madrid("2026-11-28 23:20"))
        await Scheduler(service, clock=lambda: madrid("2026-11-29 01:15")).run_once()
        await service.drain(10)
        await service.aclose()
        await db.aclose()

    asyncio.run(seed())


def run(capsys: pytest.CaptureFixture[str], now: str, since: str | None = None, as_json: bool = False) -> str:
    code = report.run(argparse.Namespace(since=since, json=as_json), clock=lambda: madrid(now))
    assert code == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_on_monday_morning_it_reports_the_weekend_as_the_digest_did(
    weekend_store: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "2026-11-30 10:00").splitlines() == [
        "Closed-hours report, Fri 27 Nov 15:00 to Mon 30 Nov 09:00:",
        "- 1 incident, 2 pages",
        "- time to acknowledge: median 5 min, worst 5 min (1 acknowledged)",
        "- 1 customer reassured: 0 promises kept, 1 broken",
    ]


def test_since_when_and_json(weekend_store: None, capsys: pytest.CaptureFixture[str]) -> None:
    out = json.loads(run(capsys, "2026-11-29 12:00", since="2026-11-29T00:00", as_json=True))
    assert out["since"] == "2026-11-28T23:00:00+00:00" and out["incidents"] == 0
    out = json.loads(run(capsys, "2026-11-29 12:00", since="2026-11-28T20:00", as_json=True))
    assert (out["incidents"], out["pages"], out["customers_reassured"]) == (1, 2, 1)
    assert out["time_to_acknowledge"] == {"median_seconds": 300, "worst_seconds": 300}
    assert out["promises"] == {"kept": 0, "broken": 1, "open": 0}


def test_a_when_that_is_not_one_is_an_error(weekend_store: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "last friday"]) == 1
    assert capsys.readouterr().err.startswith("error: --since: 'last friday' is not an ISO 8601 time")
