"""The `oncall` command as a whole: bad settings and database URLs are one-line errors, exit 1,
never a traceback and never a secret (SPEC §3, §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oncall.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ONCALL_RULES_FILE", str(ROOT / "escalation_rules.toml"))
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(ROOT / "rotas"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_bad_setting_in_the_environment_names_the_variable(
    shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONCALL_SMTP_PORT", "smtp-port-s3cret")
    assert main(["who"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ONCALL_SMTP_PORT: ") and err.count("\n") == 1
    assert "s3cret" not in err


def test_a_bad_setting_in_dot_env_is_reported_by_every_command(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / ".env").write_text("ONCALL_SMTP_STARTTLS=maybe\n", encoding="utf-8")
    for argv in (["check"], ["migrate"], ["rota", "show"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ONCALL_SMTP_STARTTLS: ") and err.endswith("(environment or .env)\n")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://shop:pa55word@db.example/oncall",  # unsupported kind
        "postgresql://shop:pa55word@[::1/oncall",  # not a URL
        "postgresql://shop:pa55word@127.0.0.1:1/oncall",  # nothing listens there
    ],
)
@pytest.mark.parametrize("command", ["migrate", "incidents"])
def test_a_database_url_that_cannot_work_is_one_line_without_the_password(
    shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, command: str
) -> None:
    monkeypatch.setenv("ONCALL_DATABASE_URL", url)
    assert main([command]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "pa55word" not in err
    assert "oncall migrate" not in err  # the database is the problem, not its schema


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "Exit codes: 0 success, 1 invalid input or configuration, 2 usage error"),
        (["who"], "in the shop's timezone unless it has an offset"),
        (["simulate"], "an event in the generic schema, or a payload of --source"),
        (["trigger"], "shopify, stripe, woocommerce, zendesk, freshdesk or generic"),
        (["test-page"], "[person.ID] in rotas/people.toml"),
        (["ack"], "the incident's number"),
        (["rota", "ics"], "rota name"),
    ],
)
def test_help_explains_every_argument(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    assert says in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("argv", [["check"], ["rota", "show"], ["rota", "ics", "weekend"]])
def test_weeks_beyond_ten_years_is_a_usage_error_not_a_traceback(
    shop: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--weeks", "1000000"])
    assert done.value.code == 2
    assert "--weeks: 1000000 weeks is too far ahead (at most 520)" in capsys.readouterr().err
