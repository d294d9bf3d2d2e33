"""`oncall incidents`, `oncall ack ID`, `oncall resolve ID` on the server's store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from oncall.cli import main
from oncall.config import load_config
from oncall.scheduler import Scheduler
from oncall.service import Service
from oncall.settings import Settings
from oncall.store.database import open_database
from tests.recording import event, madrid


@pytest.fixture
def store_with_an_incident(cli_store: str, shop_env: Path) -> str:
    config = load_config(shop_env / "escalation_rules.toml", shop_env / "rotas")

    async def seed() -> None:
        db = open_database(cli_store)
        await asyncio.to_thread(db.migrate)
        service = Service(db, lambda: config, {}, Settings(_env_file=None), bundle_window=0.0)  # type: ignore[call-arg]
        await db.store_event(event(at=madrid("2026-11-28 23:10"), customer="Lucia"), b"{}")
        await Scheduler(service, clock=lambda: madrid("2026-11-28 23:10")).run_once()
        await service.aclose()
        await db.aclose()

    asyncio.run(seed())
    return cli_store


def test_list_ack_and_resolve_from_the_terminal(
    store_with_an_incident: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["incidents"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "STATE", "OPENED", "RULE", "WHAT"]
    assert out[1].startswith("1   held   Sat 28 Nov 23:10  payment failures while closed")
    assert out[1].endswith("1 payment failure since 23:10, 37.98 EUR")

    assert main(["ack", "1"]) == 0
    assert capsys.readouterr().out.startswith("Incident 1 acknowledged by the owner (terminal) at ")
    assert main(["ack", "1"]) == 1
    assert capsys.readouterr().err.startswith("error: incident 1 was already acknowledged by the owner")
    assert main(["resolve", "1"]) == 0
    capsys.readouterr()
    assert main(["incidents"]) == 0
    assert capsys.readouterr().out.strip() == "no incidents"  # resolved ones only with --all
    assert main(["incidents", "--all"]) == 0
    assert " resolved " in capsys.readouterr().out


def test_an_unknown_incident_is_an_error(
    store_with_an_incident: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["resolve", "42"]) == 1
    assert capsys.readouterr().err == "error: there is no incident 42\n"
    assert main(["ack", "42"]) == 1
    assert capsys.readouterr().err == "error: there is no incident 42\n"


def test_before_oncall_migrate_the_terminal_says_to_run_it(
    cli_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["incidents"], ["ack", "1"], ["resolve", "1"]):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith("error: the database is not set up") and "run `oncall migrate`" in err


def test_with_broken_files_the_list_still_works_and_each_problem_is_one_warning_line(
    store_with_an_incident: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rotas = tmp_path / "broken-rotas"
    rotas.mkdir()
    (rotas / "people.toml").write_text(
        '[person.ana]\nname = "Ana"\nphone = "600"\nlang = "es"\n', encoding="utf-8"
    )
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(rotas))
    assert main(["incidents"]) == 0
    out, err = capsys.readouterr()
    assert "payment failures while closed" in out
    lines = err.splitlines()
    assert len(lines) >= 2
    assert all(line.startswith("warning: configuration not loaded: ") for line in lines)
