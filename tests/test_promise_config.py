"""`[promise]` in escalation_rules.toml (SPEC §2.1): `remind`, then `escalate`, both before
`shop.response_time`; `oncall check` names the key and says what is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from oncall.cli import main
from oncall.config import ConfigError, load_config
from oncall.core.models import PromiseRules
from tests.shoptoml import edit


def set_promise(shop_dir: Path, table: str) -> None:
    path = shop_dir / "escalation_rules.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index("[promise]")
    end = text.index("\n\n", start)
    path.write_text(text[:start] + table + text[end:], encoding="utf-8")


def test_the_shipped_example_reminds_at_90_minutes_and_escalates_at_105(shop_dir: Path) -> None:
    config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    assert config.rules.promise == PromiseRules(timedelta(minutes=90), timedelta(minutes=105))


def test_without_the_table_promises_are_only_watched_for_their_deadline(shop_dir: Path) -> None:
    set_promise(shop_dir, "")
    config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    assert config.rules.promise == PromiseRules()


def test_each_key_is_optional(shop_dir: Path) -> None:
    set_promise(shop_dir, '[promise]\nescalate = "1h"')
    config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    assert config.rules.promise == PromiseRules(None, timedelta(hours=1))


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            '[promise]\nremind = "90m"\nescalate = "60m"',
            "escalation_rules.toml: promise.escalate: must be later than promise.remind (1h30m): the owner"
            " is paged only after the reminder had its chance",
        ),
        (
            '[promise]\nremind = "2h"',
            "escalation_rules.toml: promise.remind: must be shorter than shop.response_time (2h): the"
            " promise is broken by then",
        ),
        (
            '[promise]\nremind = "1h"\nescalate = "3h"',
            "escalation_rules.toml: promise.escalate: must be shorter than shop.response_time (2h): the"
            " promise is broken by then",
        ),
        ('[promise]\nremind = "0s"', "escalation_rules.toml: promise.remind: must be longer than 0s"),
        ('[promise]\nremind = "soon"', 'escalation_rules.toml: promise.remind: "soon" is not a duration'),
        ('[promise]\nremnd = "1h"', "escalation_rules.toml: promise.remnd: unknown key"),
    ],
)
def test_mistakes_name_the_key(shop_dir: Path, table: str, expected: str) -> None:
    set_promise(shop_dir, table)
    with pytest.raises(ConfigError) as info:
        load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_oncall_check_reports_it_and_exits_1(shop_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(shop_env / "escalation_rules.toml", 'escalate = "105m"', 'escalate = "80m"')
    assert main(["check"]) == 1
    assert "error: escalation_rules.toml: promise.escalate: must be later than promise.remind (1h30m)" in (
        capsys.readouterr().err
    )
