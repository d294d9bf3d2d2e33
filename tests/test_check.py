"""`oncall check` through the real CLI: errors exit 1 with one `error: …` line each; the example
passes; warnings name the closed hours nobody covers and the contact details that are missing."""

# ruff: noqa: E501, RUF001  (messages are quoted whole, en dash included, as the owner reads them)
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from oncall.cli import main
from oncall.commands.check import contact_warnings, format_span, gap_warnings, intersect, override_warnings
from oncall.config import load_config
from tests.shoptoml import edit

MADRID = ZoneInfo("Europe/Madrid")


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_the_shipped_example_passes(shop_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(capsys)
    assert code == 0
    assert out.splitlines()[0] == (
        "Tienda Ejemplo (Europe/Madrid): 6 rules, 2 policies (weekend, owner-only), 4 people, 2 rotas"
    )
    assert "  rota weekend: luis, marta, ana" in out.splitlines()
    # A fresh install has no credentials: that is the only thing worth saying.
    assert err == [
        "warning: channel telegram is off (set ONCALL_TELEGRAM_BOT_TOKEN): its messages go to the console log",
        "warning: channel slack is off (set ONCALL_SLACK_BOT_TOKEN): its messages go to the console log",
        "warning: channel sms is off (set ONCALL_TWILIO_ACCOUNT_SID, ONCALL_TWILIO_AUTH_TOKEN, "
        "ONCALL_TWILIO_FROM): its messages go to the console log",
        "warning: channel voice is off (set ONCALL_TWILIO_ACCOUNT_SID, ONCALL_TWILIO_AUTH_TOKEN, "
        "ONCALL_TWILIO_FROM): its messages go to the console log",
    ]


def test_with_credentials_the_example_is_silent(
    shop_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "SLACK_BOT_TOKEN",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM",
    ):
        monkeypatch.setenv(f"ONCALL_{name}", "x")
    monkeypatch.setenv("ONCALL_PUBLIC_URL", "https://oncall.tienda.example")
    code, _, err = check(capsys, "--weeks", "8")
    assert (code, err) == (0, [])


def test_a_public_url_phones_cannot_reach_is_a_warning_once_a_channel_is_on(
    shop_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ONCALL_PUBLIC_URL", raising=False)
    _, _, err = check(capsys)
    assert not any("ONCALL_PUBLIC_URL" in line for line in err)  # a fresh install tries it locally
    monkeypatch.setenv("ONCALL_TELEGRAM_BOT_TOKEN", "123:s3cret")
    _, _, err = check(capsys)
    assert [line for line in err if "ONCALL_PUBLIC_URL" in line] == [
        "warning: ONCALL_PUBLIC_URL is http://localhost:8000: the ack links in pages will not open on a phone and "
        "Twilio's signed SMS replies will be refused (set it to the address the internet reaches)"
    ]
    monkeypatch.setenv("ONCALL_PUBLIC_URL", "oncall.tienda.example")
    code, _, err = check(capsys)
    assert code == 0
    assert [line for line in err if "ONCALL_PUBLIC_URL" in line] == [
        "warning: ONCALL_PUBLIC_URL 'oncall.tienda.example' is not an http(s) URL: the ack links in pages will not open"
    ]


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "escalation_rules.toml",
            'policy = "weekend"\nreassure = "payment_failed"',
            'policy = "wekend"\nreassure = "payment_failed"',
            'error: escalation_rules.toml: rule[1].policy: unknown policy "wekend" (known: weekend, owner-only)',
        ),
        (
            "rotas/weekend.toml",
            'who = "luis"',
            'who = "lusi"',
            'error: rotas/weekend.toml: override[1].who: unknown person "lusi" (known: ana, luis, marta, owner; '
            "people are [person.ID] in rotas/people.toml)",
        ),
        (
            "escalation_rules.toml",
            'ack_within = "10m"',
            'ack_within = "10 minutes"',
            'error: escalation_rules.toml: policy[1].step[1].ack_within: "10 minutes" is not a duration (write a '
            'number and a unit d, h, m or s, e.g. "90s", "5m", "1h30m")',
        ),
        (
            "rotas/weekend.toml",
            'handoff = "09:00"',
            'handoff = "9am"',
            'error: rotas/weekend.toml: layer[1].handoff: "9am" is not a clock time (write "HH:MM", e.g. "09:00" or '
            '"18:30"); only a weekly rotation hands off on a day ("fri 18:00")',
        ),
        (
            "escalation_rules.toml",
            "repeat = 1 ",
            "repeats = 1 ",
            'error: escalation_rules.toml: policy[1].repeats: unknown key "repeats" (did you mean "repeat"?)',
        ),
        (
            "rotas/weekend.toml",
            'members = ["luis", "marta", "ana"]',
            "members = []",
            "error: rotas/weekend.toml: layer[1].members: names nobody (list at least one person of "
            'rotas/people.toml, e.g. ["ana"])',
        ),
        (
            "rotas/weekend.toml",
            'timezone = "Europe/Madrid"',
            'timezone = "Europe/Madri"',
            'error: rotas/weekend.toml: timezone: unknown time zone "Europe/Madri" (did you mean "Europe/Madrid"?)',
        ),
        (
            "escalation_rules.toml",
            'match = { hours = "open" }',
            'match = { hours = "open", text = "error[" }',
            'error: escalation_rules.toml: rule[6].match.text: "error[" is not a regular expression: unterminated '
            "character set at position 5 (check brackets and escapes)",
        ),
    ],
    ids=[
        "unknown-policy",
        "unknown-person",
        "bad-duration",
        "bad-time",
        "unknown-key",
        "rota-naming-nobody",
        "bad-timezone",
        "bad-regex",
    ],
)
def test_a_broken_file_exits_1_naming_file_and_key(
    shop_env: Path, capsys: pytest.CaptureFixture[str], file: str, old: str, new: str, expected: str
) -> None:
    edit(shop_env / file, old, new)
    code, out, err = check(capsys)
    assert code == 1
    assert out == ""
    assert expected in err
    assert all(line.startswith("error: ") for line in err)


def test_every_problem_is_listed_in_one_run(shop_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(
        shop_env / "escalation_rules.toml",
        'policy = "weekend"\nreassure = "payment_failed"',
        'policy = "wekend"',
    )
    edit(shop_env / "escalation_rules.toml", 'timezone = "Europe/Madrid"', 'timezone = "Madrid"')
    edit(shop_env / "rotas" / "people.toml", "telegram = 234567891", 'telegram = "234567891"')
    edit(shop_env / "rotas" / "weekend-backup.toml", 'members = ["owner"]', 'members = ["carmen"]')
    code, _, err = check(capsys)
    assert code == 1
    assert err == [
        'error: escalation_rules.toml: shop.timezone: unknown time zone "Madrid" (did you mean "Europe/Madrid"?)',
        'error: escalation_rules.toml: rule[1].policy: unknown policy "wekend" (known: weekend, owner-only)',
        "error: rotas/people.toml: person.luis.telegram: must be a whole number, not text",
        'error: rotas/weekend-backup.toml: layer[1].members[1]: unknown person "carmen" (known: ana, luis, marta, '
        "owner; people are [person.ID] in rotas/people.toml)",
    ]


def test_rules_file_from_settings(
    shop_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONCALL_RULES_FILE", str(shop_env / "elsewhere.toml"))
    code, _, err = check(capsys)
    assert code == 1
    assert err == ["error: elsewhere.toml: file not found (create it or set ONCALL_RULES_FILE)"]


def test_negative_weeks_is_a_usage_error(shop_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(capsys, "--weeks", "-1")
    assert (code, err) == (2, ["error: --weeks must be 0 or more"])


class TestGapWarnings:
    """Without its weeknights layer the weekend rota covers only Friday evening to Monday 09:00."""

    @pytest.fixture
    def weekends_only(self, shop_dir: Path) -> Path:
        edit(
            shop_dir / "rotas" / "weekend.toml",
            '[[layer]]\nname = "weeknights"',
            '[[ignored]]\nname = "weeknights"',
        )
        text = (shop_dir / "rotas" / "weekend.toml").read_text(encoding="utf-8")
        start = text.index("[[ignored]]")
        end = text.index("# Layer 2")
        (shop_dir / "rotas" / "weekend.toml").write_text(text[:start] + text[end:], encoding="utf-8")
        return shop_dir

    def test_closed_hours_with_nobody_on_call(self, weekends_only: Path) -> None:
        config = load_config(weekends_only / "escalation_rules.toml", weekends_only / "rotas")
        monday = datetime(2026, 11, 23, 0, 0, tzinfo=MADRID)
        found = gap_warnings(config, monday, 1)
        assert found == [
            "rota weekend: nobody on call Mon 2026-11-23 14:00 – 16:00 (shop closed)",
            "rota weekend: nobody on call Mon 2026-11-23 19:00 – Tue 2026-11-24 09:00 (shop closed)",
            "rota weekend: nobody on call Tue 2026-11-24 14:00 – 16:00 (shop closed)",
            "rota weekend: nobody on call Tue 2026-11-24 19:00 – Wed 2026-11-25 09:00 (shop closed)",
            "rota weekend: nobody on call Wed 2026-11-25 14:00 – 16:00 (shop closed)",
            "rota weekend: nobody on call Wed 2026-11-25 19:00 – Thu 2026-11-26 09:00 (shop closed)",
            "rota weekend: nobody on call Thu 2026-11-26 14:00 – 16:00 (shop closed)",
            "rota weekend: nobody on call Thu 2026-11-26 19:00 – Fri 2026-11-27 09:00 (shop closed)",
            "rota weekend: nobody on call Fri 2026-11-27 15:00 – 18:00 (shop closed)",
        ]  # the backup rota has the owner at all times: no warning for it

    def test_holidays_are_closed_hours_too(self, weekends_only: Path) -> None:
        config = load_config(weekends_only / "escalation_rules.toml", weekends_only / "rotas")
        sunday = datetime(2026, 12, 6, 12, 0, tzinfo=MADRID)
        assert gap_warnings(config, sunday, 0) == []
        # Monday 7 and Tuesday 8 December are public holidays in Madrid: closed both days, and
        # the weekend layer ends Monday 09:00.
        assert gap_warnings(config, sunday, 1)[0] == (
            "rota weekend: nobody on call Mon 2026-12-07 09:00 – Wed 2026-12-09 09:00 (shop closed)"
        )

    def test_through_the_cli(
        self, weekends_only: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(weekends_only)
        monkeypatch.setenv("ONCALL_RULES_FILE", "escalation_rules.toml")
        monkeypatch.setenv("ONCALL_ROTAS_DIR", "rotas")
        code, _, err = check(capsys, "--weeks", "1")
        assert code == 0
        gaps = [line for line in err if line.startswith("warning: rota weekend: nobody on call ")]
        assert gaps and all(line.endswith(" (shop closed)") for line in gaps)


class TestOverridesThatChangeNothing:
    """The shipped weekend rota takes turns ana, luis, marta from Fri 6 Nov: Luis has the weekend
    of 4 to 7 Dec, Ana that of 18 to 21 Dec (which the shipped override gives to Luis)."""

    SWAP = 'from = "2026-12-18 18:00"\nto = "2026-12-21 09:00"'

    def test_a_swap_onto_the_persons_own_weekend_is_a_warning(self, shop_dir: Path) -> None:
        edit(
            shop_dir / "rotas" / "weekend.toml",
            self.SWAP,
            'from = "2026-12-04 18:00"\nto = "2026-12-07 09:00"',
        )
        config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
        now = datetime(2026, 11, 23, tzinfo=MADRID)
        assert override_warnings(config, now) == [
            "rotas/weekend.toml: override[1]: luis is on call then anyway; the override changes nothing"
        ]
        assert override_warnings(config, datetime(2026, 12, 8, tzinfo=MADRID)) == []  # over: history

    def test_an_override_that_changes_even_an_hour_is_fine(self, shop_dir: Path) -> None:
        edit(
            shop_dir / "rotas" / "weekend.toml",
            self.SWAP,
            'from = "2026-12-04 17:00"\nto = "2026-12-07 09:00"',
        )
        config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
        assert override_warnings(config, datetime(2026, 11, 23, tzinfo=MADRID)) == []

    def test_through_the_cli(self, shop_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
        friday = date(2026, 12, 4)  # Luis's weekends come every three weeks
        while friday < datetime.now(MADRID).date() + timedelta(days=7):
            friday += timedelta(weeks=3)
        monday = friday + timedelta(days=3)
        edit(
            shop_env / "rotas" / "weekend.toml", self.SWAP, f'from = "{friday} 18:00"\nto = "{monday} 09:00"'
        )
        code, _, err = check(capsys)
        assert code == 0
        assert (
            "warning: rotas/weekend.toml: override[1]: luis is on call then anyway; the override changes nothing"
            in err
        )


def test_missing_contact_details(shop_dir: Path) -> None:
    edit(shop_dir / "rotas" / "people.toml", 'phone = "+34600333444"\n', "")
    config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    assert contact_warnings(config) == [
        "policy weekend step 2 pages luis by sms but rotas/people.toml has no phone for luis",
        "policy weekend step 3 pages luis by voice but rotas/people.toml has no phone for luis",
    ]


def test_missing_contact_details_through_the_cli(shop_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(shop_env / "rotas" / "people.toml", "telegram = 456789123\n", "")
    code, _, err = check(capsys)
    assert code == 0
    assert (
        "warning: policy weekend step 3 pages owner by telegram but rotas/people.toml has no telegram id for owner"
        in err
    )
    assert (
        "warning: policy owner-only step 1 pages owner by telegram but rotas/people.toml has no telegram id for owner"
        in err
    )


class TestSpans:
    def test_intersect(self) -> None:
        def t(h: int) -> datetime:
            return datetime(2026, 11, 28, h, tzinfo=UTC)

        assert intersect([(t(0), t(9)), (t(18), t(23))], [(t(8), t(19))]) == [(t(8), t(9)), (t(18), t(19))]
        assert intersect([(t(0), t(1))], [(t(1), t(2))]) == []

    def test_format(self) -> None:
        a = datetime(2026, 11, 28, 9, tzinfo=MADRID)
        assert format_span(a, a.replace(hour=18), MADRID) == "Sat 2026-11-28 09:00 – 18:00"
        assert (
            format_span(a, datetime(2026, 11, 29, 0, tzinfo=MADRID), MADRID) == "Sat 2026-11-28 09:00 – 24:00"
        )
        assert format_span(a, datetime(2026, 11, 30, 9, tzinfo=MADRID), MADRID) == (
            "Sat 2026-11-28 09:00 – Mon 2026-11-30 09:00"
        )


def test_a_mistyped_setting_is_a_warning_naming_where_it_is_and_the_right_name(
    shop_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (shop_env / ".env").write_text(
        "ONCALL_TWILIO_SID=AC123\nONCALL_PUBLIC_URL=https://shop.example\n", encoding="utf-8"
    )
    monkeypatch.setenv("ONCALL_SLACK_TOKEN", "xoxb-s3cret")
    monkeypatch.setenv("ONCALL_WHATEVER", "1")
    code, _, err = check(capsys)
    assert code == 0
    assert [line for line in err if "is not a setting" in line] == [
        "warning: ONCALL_SLACK_TOKEN (in environment) is not a setting of oncall (did you mean ONCALL_SLACK_BOT_TOKEN?)",
        "warning: ONCALL_TWILIO_SID (in .env) is not a setting of oncall (did you mean ONCALL_TWILIO_ACCOUNT_SID?)",
        "warning: ONCALL_WHATEVER (in environment) is not a setting of oncall (see the settings in the README)",
    ]
    assert not any("s3cret" in line for line in err)
