"""Loading the owner's files: the example loads into the models; every mistake is reported with
its file, key path and a way to fix it, all of them at once."""

# ruff: noqa: E501  (the expected messages are quoted whole, as the owner reads them)
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.config import ConfigError, load_config, load_people, load_rota, load_rules
from oncall.core.durations import format_duration, parse_clock, parse_duration
from oncall.core.models import ActiveWindow, Handoff, Rotation, Target, Window
from tests.shoptoml import edit

MADRID = ZoneInfo("Europe/Madrid")


def problems_of(shop_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("90s", timedelta(seconds=90)),
            ("5m", timedelta(minutes=5)),
            ("2h", timedelta(hours=2)),
            ("1h30m", timedelta(hours=1, minutes=30)),
            ("3d", timedelta(days=3)),
            ("0s", timedelta(0)),
            ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ],
    )
    def test_parse(self, text: str, expected: timedelta) -> None:
        assert parse_duration(text) == expected

    @pytest.mark.parametrize("text", ["", "5", "5 min", "m5", "30m1h", "1h1h", "-5m", "1.5h", "5M"])
    def test_rejects(self, text: str) -> None:
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(text)

    @pytest.mark.parametrize(
        ("td", "text"),
        [
            (timedelta(hours=1, minutes=30), "1h30m"),
            (timedelta(seconds=90), "1m30s"),
            (timedelta(0), "0s"),
            (timedelta(days=3), "3d"),
            (timedelta(minutes=-5), "-5m"),
        ],
    )
    def test_format(self, td: timedelta, text: str) -> None:
        assert format_duration(td) == text

    @settings(max_examples=200)
    @given(st.integers(min_value=0, max_value=400 * 86400))
    def test_format_round_trips(self, seconds: int) -> None:
        td = timedelta(seconds=seconds)
        assert parse_duration(format_duration(td)) == td


class TestClock:
    def test_minutes_since_midnight(self) -> None:
        assert parse_clock("00:00") == 0
        assert parse_clock("09:30") == 570
        assert parse_clock("23:59") == 1439
        assert parse_clock("24:00", allow_24=True) == 1440

    def test_24_only_as_an_end(self) -> None:
        with pytest.raises(ValueError, match="only allowed as the end"):
            parse_clock("24:00")

    @pytest.mark.parametrize("text", ["9:00", "24:01", "12:60", "25:00", "noon", "09:00:00"])
    def test_rejects(self, text: str) -> None:
        with pytest.raises(ValueError, match="clock time"):
            parse_clock(text, allow_24=True)


class TestExample:
    """The shipped example is what a Spanish shop starts from."""

    def test_loads(self, shop_dir: Path) -> None:
        config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
        shop = config.rules.shop
        assert (shop.name, shop.timezone, shop.language) == ("Tienda Ejemplo", MADRID, "es")
        assert shop.fallback == Target("person", "owner")
        assert shop.response_time == timedelta(hours=2)
        assert list(config.rules.policies) == ["weekend", "owner-only"]
        weekend = config.rules.policies["weekend"]
        assert weekend.repeat == 1
        assert [s.via for s in weekend.steps] == [("telegram", "slack"), ("sms",), ("voice", "telegram")]
        assert weekend.steps[2].notify == (Target("rota", "weekend-backup"), Target("person", "owner"))
        assert [r.name for r in config.rules.rules][:4] == [
            "payment failures while closed",
            "urgent tickets while closed",
            "other tickets wait for the morning",
            "checkout errors while closed",
        ]
        first = config.rules.rules[0]
        assert (first.action, first.hold, first.cancel_on) == (
            "page",
            timedelta(minutes=5),
            ("payment_succeeded",),
        )
        assert config.rules.rules[2].action == "defer"
        assert config.rules.rules[-1].action == "post"
        assert set(config.rules.messages) == {
            "payment_failed", "payment_failed_late", "payment_failed_resolved", "ticket", "ticket_deferred",
            "checkout_error",
        }  # fmt: skip
        assert all(set(m) == {"es", "en"} for m in config.rules.messages.values())
        hours = config.rules.business_hours
        assert hours.week[0] == (Window(540, 840), Window(960, 1140))
        assert 5 not in hours.week and 6 not in hours.week
        assert (hours.holidays_country, hours.holidays_subdivision) == ("ES", "MD")
        assert hours.closed == {date(2026, 12, 24), date(2026, 12, 31)}
        assert config.people["owner"].name == "Carmen"
        assert config.people["ana"].phone == "+34600111222"
        assert set(config.rotas) == {"weekend", "weekend-backup"}

    def test_weekend_rota_is_the_spec_example(self, shop_dir: Path) -> None:
        config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
        layer = config.rotas["weekend"].layers[-1]
        assert layer.members == ("ana", "luis", "marta")
        assert layer.rotation == Rotation("weekly", 7)
        assert layer.handoff == Handoff(minute=18 * 60, weekday=4)
        assert layer.start == date(2026, 11, 6)
        assert layer.active == (
            ActiveWindow(4, Window(1080, 1440)),
            ActiveWindow(5, Window(0, 1440)),
            ActiveWindow(6, Window(0, 1440)),
            ActiveWindow(0, Window(0, 540)),
        )
        (override,) = config.rotas["weekend"].overrides
        assert override.who == "luis"
        assert override.start == datetime(2026, 12, 18, 18, 0, tzinfo=MADRID)
        assert override.end.astimezone(UTC) == datetime(2026, 12, 21, 8, 0, tzinfo=UTC)

    def test_models_are_immutable(self, shop_dir: Path) -> None:
        config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
        with pytest.raises(TypeError):
            config.rotas["x"] = config.rotas["weekend"]  # type: ignore[index]
        with pytest.raises(TypeError):
            config.rules.messages["ticket"]["fr"] = "…"  # type: ignore[index]


# (file under shop_dir, text to replace, replacement, the exact problem expected)
BROKEN = [
    pytest.param(
        "escalation_rules.toml",
        'policy = "weekend"\nreassure = "payment_failed"',
        'policy = "wekend"\nreassure = "payment_failed"',
        'escalation_rules.toml: rule[1].policy: unknown policy "wekend" (known: weekend, owner-only)',
        id="unknown-policy",
    ),
    pytest.param(
        "escalation_rules.toml",
        'hold = "5m"',
        'hold = "5 min"',
        'escalation_rules.toml: rule[1].hold: "5 min" is not a duration (write a number and a unit d, h, m or s, '
        'e.g. "90s", "5m", "1h30m")',
        id="bad-duration",
    ),
    pytest.param(
        "escalation_rules.toml",
        'tue = ["09:00-14:00"',
        'tue = ["09:00-14:60"',
        'escalation_rules.toml: business_hours.tue[1]: "14:60" is not a clock time (hours 00-23, minutes 00-59)',
        id="bad-time",
    ),
    pytest.param(
        "escalation_rules.toml",
        'name = "in hours"',
        'nmae = "in hours"',
        'escalation_rules.toml: rule[6].nmae: unknown key "nmae" (did you mean "name"?)',
        id="unknown-key",
    ),
    pytest.param(
        "escalation_rules.toml",
        'cancel_on = ["payment_succeeded"]',
        'cancel_om = ["payment_succeeded"]',
        'escalation_rules.toml: rule[1].cancel_om: unknown key "cancel_om" (did you mean "cancel_on"?)',
        id="unknown-rule-key",
    ),
    pytest.param(
        "escalation_rules.toml",
        'timezone = "Europe/Madrid"',
        'timezone = "Europe/Madird"',
        'escalation_rules.toml: shop.timezone: unknown time zone "Europe/Madird" (did you mean "Europe/Madrid"?)',
        id="bad-timezone",
    ),
    pytest.param(
        "escalation_rules.toml",
        'match = { hours = "open" }',
        'match = { hours = "open", text = "(unclosed" }',
        'escalation_rules.toml: rule[6].match.text: "(unclosed" is not a regular expression: missing ), '
        "unterminated subpattern at position 0 (check brackets and escapes)",
        id="bad-regex",
    ),
    pytest.param(
        "rotas/weekend.toml",
        'members = ["ana", "luis", "marta"]',
        'members = ["ana", "lusi", "marta"]',
        'rotas/weekend.toml: layer[2].members[2]: unknown person "lusi" (known: ana, luis, marta, owner; '
        "people are [person.ID] in rotas/people.toml)",
        id="unknown-person",
    ),
    pytest.param(
        "rotas/weekend-backup.toml",
        'members = ["owner"]',
        "members = []",
        "rotas/weekend-backup.toml: layer[1].members: names nobody (list at least one person of "
        'rotas/people.toml, e.g. ["ana"])',
        id="layer-naming-nobody",
    ),
    pytest.param(
        "escalation_rules.toml",
        '["rota:weekend-backup", "person:owner"]',
        '["rota:weekend-bakup", "person:owner"]',
        'escalation_rules.toml: policy[1].step[3].notify[1]: unknown rota "weekend-bakup" '
        "(known: weekend-backup, weekend; rota:NAME is rotas/NAME.toml)",
        id="unknown-rota",
    ),
    pytest.param(
        "escalation_rules.toml",
        'fallback = "person:owner"',
        'fallback = "person:boss"',
        'escalation_rules.toml: shop.fallback: unknown person "boss" (known: ana, luis, marta, owner; '
        "person:ID is [person.ID] in rotas/people.toml)",
        id="unknown-fallback",
    ),
    pytest.param(
        "escalation_rules.toml",
        'via = ["sms"]',
        'via = ["sms", "whatsapp"]',
        'escalation_rules.toml: policy[1].step[2].via[2]: unknown channel "whatsapp" (known: telegram, slack, sms, voice)',
        id="unknown-channel",
    ),
    pytest.param(
        "escalation_rules.toml",
        'ack_within = "15m"',
        "",
        "escalation_rules.toml: policy[1].step[3].ack_within: "
        'missing (how long to wait for an acknowledgement, e.g. "10m")',
        id="missing-ack-within",
    ),
    pytest.param(
        "escalation_rules.toml",
        "repeat = 1 ",
        "repeat = -1 ",
        "escalation_rules.toml: policy[1].repeat: must be 0 or more, not -1 (how many times the whole chain "
        "runs again)",
        id="negative-repeat",
    ),
    pytest.param(
        "escalation_rules.toml",
        'name = "owner-only"',
        'name = "weekend"',
        'escalation_rules.toml: policy[2].name: "weekend" is already the name of another policy (give each '
        "policy its own name)",
        id="duplicate-policy",
    ),
    pytest.param(
        "escalation_rules.toml",
        'action = "post"',
        'action = "page"',
        'escalation_rules.toml: rule[6].policy: missing (action = "page" needs a policy: who to page)',
        id="page-without-policy",
    ),
    pytest.param(
        "escalation_rules.toml",
        'action = "post"',
        'action = "shout"',
        'escalation_rules.toml: rule[6].action: unknown action "shout" (known: page, post, defer, drop)',
        id="unknown-action",
    ),
    pytest.param(
        "escalation_rules.toml",
        'action = "post"',
        "",
        "escalation_rules.toml: rule[6].action: missing (set a policy to page someone, or action = post, "
        "defer or drop)",
        id="rule-without-action-or-policy",
    ),
    pytest.param(
        "escalation_rules.toml",
        "threshold = 3 ",
        "threshold = 0 ",
        "escalation_rules.toml: rule[4].threshold: must be 1 or more, not 0 (how many events it takes to page)",
        id="zero-threshold",
    ),
    pytest.param(
        "escalation_rules.toml",
        "threshold = 3 ",
        'threshold = "3" ',
        "escalation_rules.toml: rule[4].threshold: must be a whole number, not text",
        id="wrong-type",
    ),
    pytest.param(
        "escalation_rules.toml",
        "continue = true  ",
        'continue = "yes"  ',
        "escalation_rules.toml: rule[5].continue: must be true or false, not text",
        id="flag-type",
    ),
    pytest.param(
        "escalation_rules.toml",
        'cancel_on = ["payment_succeeded"]',
        'cancel_on = ["payment_suceeded"]',
        'escalation_rules.toml: rule[1].cancel_on[1]: unknown event kind "payment_suceeded" '
        '(did you mean "payment_succeeded"?)',
        id="unknown-cancel-kind",
    ),
    pytest.param(
        "escalation_rules.toml",
        'group_by = ["ticket"]',
        'group_by = ["tiket"]',
        'escalation_rules.toml: rule[2].group_by[1]: unknown event field "tiket" (did you mean "ticket"?)',
        id="unknown-group-field",
    ),
    pytest.param(
        "escalation_rules.toml",
        'match = { hours = "open" }',
        'match = { hours = "opened" }',
        'escalation_rules.toml: rule[6].match.hours: unknown hours "opened" (known: open, closed, any)',
        id="unknown-hours",
    ),
    pytest.param(
        "escalation_rules.toml",
        'match = { hours = "open" }',
        'match = { hours = "open", days = ["mon", "thr"] }',
        'escalation_rules.toml: rule[6].match.days[2]: "thr" is not a day (did you mean "thu"?)',
        id="unknown-day",
    ),
    pytest.param(
        "escalation_rules.toml",
        'match = { hours = "open" }',
        'match = { hours = "open", kinds = ["x"] }',
        'escalation_rules.toml: rule[6].match.kinds: unknown key "kinds" (did you mean "kind"?)',
        id="unknown-match-key",
    ),
    pytest.param(
        "escalation_rules.toml",
        'match = { kind = ["payment_failed"]',
        'match = { kind = ["payment_fail"]',
        'escalation_rules.toml: rule[1].match.kind[1]: unknown event kind "payment_fail" '
        '(did you mean "payment_failed"?)',
        id="unknown-kind",
    ),
    pytest.param(
        "escalation_rules.toml",
        'reassure = "ticket"\n',
        'reassure = "tickets"\n',
        'escalation_rules.toml: rule[2].reassure: unknown message "tickets" (known: payment_failed, '
        "payment_failed_late, payment_failed_resolved, ticket, ticket_deferred, checkout_error; add a "
        "[message.tickets] table)",
        id="unknown-message",
    ),
    pytest.param(
        "escalation_rules.toml",
        "{order_number} no se ha",
        "{order_numbr} no se ha",
        'escalation_rules.toml: message.payment_failed.es: unknown placeholder "{order_numbr}" '
        '(did you mean "order_number"?)',
        id="unknown-placeholder",
    ),
    pytest.param(
        "escalation_rules.toml",
        'es = "Hola {customer_name}, gracias',
        'fr = "Hola {customer_name}, gracias',
        'escalation_rules.toml: message.ticket_deferred: has no "es" text (add es = "…": the shop language is '
        "used for customers of other languages)",
        id="message-without-shop-language",
    ),
    pytest.param(
        "escalation_rules.toml",
        'mon = ["09:00-14:00", "16:00-19:00"]',
        'mon = ["09:00-14:00", "13:00-19:00"]',
        "escalation_rules.toml: business_hours.mon: spans 09:00-14:00 and 13:00-19:00 overlap (merge them into "
        "one)",
        id="overlapping-hours",
    ),
    pytest.param(
        "escalation_rules.toml",
        'fri = ["09:00-15:00"]',
        'fri = ["22:00-02:00"]',
        'escalation_rules.toml: business_hours.fri[1]: "22:00-02:00" ends before it starts (a span past midnight '
        'is two: "…-24:00" and "00:00-…")',
        id="span-past-midnight",
    ),
    pytest.param(
        "escalation_rules.toml",
        'country = "ES", subdivision = "MD"',
        'country = "ES", subdivision = "MAD"',
        'escalation_rules.toml: business_hours.holidays.subdivision: unknown subdivision "MAD" of ES (known: AN, '
        "AR, AS, CB, CE, CL, CM, CN, CT, EX, GA, IB, MC, MD, ML, NC, PV, RI, VC, Barcelona)",
        id="unknown-subdivision",
    ),
    pytest.param(
        "escalation_rules.toml",
        'country = "ES"',
        'country = "XX"',
        'escalation_rules.toml: business_hours.holidays.country: unknown country "XX"',
        id="unknown-country",
    ),
    pytest.param(  # a short hint, not the holidays package's four hundred codes
        "escalation_rules.toml",
        'country = "ES"',
        'country = "Spain"',
        'escalation_rules.toml: business_hours.holidays.country: unknown country "Spain" (an ISO 3166 code such '
        "as ES, PT, FR, DE, GB or US; ",
        id="unknown-country-short-hint",
    ),
    pytest.param(
        "escalation_rules.toml",
        'country = "ES"',
        'country = "es"',
        'escalation_rules.toml: business_hours.holidays.country: unknown country "es" (did you mean "ES"?)',
        id="unknown-country-lower-case",
    ),
    pytest.param(
        "escalation_rules.toml",
        '"2026-12-31"]',
        '"2026-12-32"]',
        'escalation_rules.toml: business_hours.closed[2]: "2026-12-32" is not a date (write "YYYY-MM-DD")',
        id="bad-closed-date",
    ),
    pytest.param(
        "escalation_rules.toml",
        'team_channel = "slack:#soporte"',
        'team_channel = "#soporte"',
        'escalation_rules.toml: shop.team_channel: "#soporte" is not a channel (write "slack:#name" or '
        '"telegram:CHAT_ID")',
        id="bad-team-channel",
    ),
    pytest.param(
        "escalation_rules.toml",
        '# [[maintenance]]\n# from = "2026-12-01 02:00"\n# to = "2026-12-01 04:00"',
        '[[maintenance]]\nfrom = "2026-12-01 04:00"\nto = "2026-12-01 02:00"',
        "escalation_rules.toml: maintenance[1].to: is not after from (a maintenance window must end after it "
        "begins)",
        id="maintenance-backwards",
    ),
    pytest.param(
        "rotas/people.toml",
        'phone = "+34600333444"',
        'phone = "600 333 444"',
        'rotas/people.toml: person.luis.phone: "600 333 444" is not an E.164 number (write "+" country code and '
        'number, no spaces, e.g. "+34600111222")',
        id="bad-phone",
    ),
    pytest.param(
        "rotas/people.toml",
        "telegram = 234567891",
        'telegram = "234567891"',
        "rotas/people.toml: person.luis.telegram: must be a whole number, not text",
        id="telegram-as-text",
    ),
    pytest.param(
        "rotas/people.toml",
        'slack = "U023BCDEFG"',
        'slack = "@luis"',
        'rotas/people.toml: person.luis.slack: "@luis" is not a Slack member id (like "U012ABCDEF": profile → ⋮ '
        "→ Copy member ID)",
        id="bad-slack-id",
    ),
    pytest.param(
        "rotas/people.toml",
        'name = "Luis Martín"',
        'nombre = "Luis Martín"',
        'rotas/people.toml: person.luis.nombre: unknown key "nombre" (did you mean "name"?)',
        id="person-unknown-key",
    ),
    pytest.param(
        "rotas/weekend.toml",
        'rotation = "weekly"',
        'rotation = "fortnightly"',
        'rotas/weekend.toml: layer[2].rotation: "fortnightly" is not a rotation (write daily, weekly or a '
        'duration such as "3d" or "12h")',
        id="bad-rotation",
    ),
    pytest.param(
        "rotas/weekend.toml",
        'handoff = "fri 18:00"',
        'handoff = "18:00"',
        'rotas/weekend.toml: layer[2].handoff: "18:00" is not a day and time (write e.g. "fri 18:00")',
        id="weekly-handoff-without-day",
    ),
    pytest.param(
        "rotas/weekend.toml",
        '"sat", "sun"',
        '"sat", "sunday"',
        'rotas/weekend.toml: layer[2].active[3]: "sunday" is not a day (did you mean "sun"?)',
        id="bad-active-day",
    ),
    pytest.param(
        "rotas/weekend.toml",
        '"fri 18:00-24:00"',
        '"fri 18:00-25:00"',
        'rotas/weekend.toml: layer[2].active[1]: "25:00" is not a clock time (hours 00-23, minutes 00-59) in '
        '"fri 18:00-25:00" (write e.g. "fri 18:00-24:00" or "sat")',
        id="bad-active-time",
    ),
    pytest.param(
        "rotas/weekend.toml",
        'start = "2026-11-06"',
        'start = "6/11/2026"',
        'rotas/weekend.toml: layer[2].start: "6/11/2026" is not a date (write "YYYY-MM-DD", e.g. "2026-12-24")',
        id="bad-start",
    ),
    pytest.param(
        "rotas/weekend.toml",
        'who = "luis"',
        'who = "pedro"',
        'rotas/weekend.toml: override[1].who: unknown person "pedro" (known: ana, luis, marta, owner; people are '
        "[person.ID] in rotas/people.toml)",
        id="override-unknown-person",
    ),
    pytest.param(
        "rotas/weekend.toml",
        'to = "2026-12-21 09:00"',
        'to = "2026-12-18 09:00"',
        "rotas/weekend.toml: override[1].to: is not after from (an override must end after it begins)",
        id="override-backwards",
    ),
    pytest.param(
        "rotas/weekend.toml",
        'from = "2026-12-18 18:00"',
        'from = "5 Dec 18:00"',
        'rotas/weekend.toml: override[1].from: "5 Dec 18:00" is not a date and time (write "YYYY-MM-DD HH:MM", '
        'e.g. "2026-12-01 02:00")',
        id="override-bad-datetime",
    ),
    pytest.param(
        "rotas/weekend.toml",
        'timezone = "Europe/Madrid"',
        'timezone = "Madrid"',
        'rotas/weekend.toml: timezone: unknown time zone "Madrid" (did you mean "Europe/Madrid"?)',
        id="rota-bad-timezone",
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "expected"), BROKEN)
def test_each_mistake_names_file_key_and_fix(
    shop_dir: Path, file: str, old: str, new: str, expected: str
) -> None:
    edit(shop_dir / file, old, new)
    problems = problems_of(shop_dir)
    assert expected in problems or any(p.startswith(expected) for p in problems), problems


def test_a_rota_naming_nobody(shop_dir: Path) -> None:
    (shop_dir / "rotas" / "weekend-backup.toml").write_text('timezone = "Europe/Madrid"\n', encoding="utf-8")
    assert problems_of(shop_dir) == [
        'rotas/weekend-backup.toml: layer: a rota naming nobody (add a [[layer]] with members = ["…"] from '
        "rotas/people.toml)"
    ]


def test_a_layer_of_several_needs_a_rotation(shop_dir: Path) -> None:
    edit(shop_dir / "rotas" / "weekend.toml", 'rotation = "daily"  ', "")
    assert problems_of(shop_dir) == [
        'rotas/weekend.toml: layer[1].rotation: missing (daily, weekly or a duration such as "3d"; required when '
        "a layer has more than one member)"
    ]


def test_several_problems_in_several_files_are_reported_together(shop_dir: Path) -> None:
    edit(
        shop_dir / "escalation_rules.toml",
        'policy = "weekend"\nreassure = "payment_failed"',
        'policy = "wekend"',
    )
    edit(shop_dir / "escalation_rules.toml", 'hold = "0s"', 'hold = "now"')
    edit(shop_dir / "rotas" / "people.toml", 'phone = "+34600111222"', 'phone = "0034600111222"')
    edit(
        shop_dir / "rotas" / "weekend.toml", 'members = ["ana", "luis", "marta"]', 'members = ["ana", "lusi"]'
    )
    problems = problems_of(shop_dir)
    assert [p.split(": ")[0:2] for p in problems] == [
        ["escalation_rules.toml", "rule[1].policy"],
        ["escalation_rules.toml", "rule[2].hold"],
        ["rotas/people.toml", "person.ana.phone"],
        ["rotas/weekend.toml", "layer[2].members[2]"],
    ]


def test_toml_syntax_error_names_the_line(shop_dir: Path) -> None:
    rules = shop_dir / "escalation_rules.toml"
    line = (
        rules.read_text(encoding="utf-8")
        .splitlines()
        .index('hold = "5m"                          # wait before paging; later events join the incident')
        + 1
    )
    edit(rules, 'hold = "5m"', "hold = 5m")
    (problem,) = problems_of(shop_dir)
    assert problem.startswith(f"escalation_rules.toml: line {line}, column 9: invalid TOML: ")
    assert "invalid TOML" in problem


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "escalation_rules.toml", tmp_path / "rotas")
    assert info.value.problems == [
        "escalation_rules.toml: file not found (create it or set ONCALL_RULES_FILE)",
        "rotas: directory not found (create it with people.toml and one NAME.toml per rota, or set "
        "ONCALL_ROTAS_DIR)",
    ]


def test_missing_people_file(shop_dir: Path) -> None:
    (shop_dir / "rotas" / "people.toml").unlink()
    assert problems_of(shop_dir) == [
        "rotas/people.toml: file not found (create it: everyone paged is a [person.ID] there)"
    ]


def test_a_policy_naming_a_deleted_rota(shop_dir: Path) -> None:
    (shop_dir / "rotas" / "weekend-backup.toml").unlink()
    assert problems_of(shop_dir) == [
        'escalation_rules.toml: policy[1].step[3].notify[1]: unknown rota "weekend-backup" (known: weekend; '
        "rota:NAME is rotas/NAME.toml)"
    ]


class TestDefaults:
    def test_minimal_files(self, tmp_path: Path) -> None:
        (tmp_path / "rules.toml").write_text(
            '[shop]\nname = "S"\ntimezone = "UTC"\nfallback = "rota:night"\n'
            '[[policy]]\nname = "p"\n[[policy.step]]\nnotify = ["rota:night"]\nvia = "sms"\nack_within = "5m"\n'
            '[[rule]]\npolicy = "p"\n',
            encoding="utf-8",
        )
        rotas = tmp_path / "oncall-rotas"
        rotas.mkdir()
        (rotas / "people.toml").write_text('[person.eva]\nname = "Eva"\n', encoding="utf-8")
        (rotas / "night.toml").write_text('[[layer]]\nmembers = ["eva"]\n', encoding="utf-8")
        config = load_config(tmp_path / "rules.toml", rotas)
        shop = config.rules.shop
        assert (shop.language, shop.response_time, shop.team_channel) == ("en", timedelta(hours=2), None)
        assert config.rules.business_hours.week == {}  # no [business_hours]: closed all the time
        (rule,) = config.rules.rules
        assert (rule.name, rule.action, rule.hold, rule.threshold, rule.match.hours) == (
            "rule[1]", "page", timedelta(0), 1, "any"
        )  # fmt: skip
        assert config.rules.policies["p"].repeat == 0
        night = config.rotas["night"]
        assert night.timezone == ZoneInfo("UTC")  # the shop's, as the rota names none
        assert night.layers[0].active is None

    def test_labels_follow_the_directory_name(self, tmp_path: Path) -> None:
        rotas = tmp_path / "oncall-rotas"
        rotas.mkdir()
        (rotas / "people.toml").write_text('[person.eva]\nname = "Eva"\nphone = "12"\n', encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_people(rotas / "people.toml")
        assert info.value.problems[0].startswith("oncall-rotas/people.toml: person.eva.phone: ")

    def test_single_file_loaders(self, shop_dir: Path) -> None:
        people = load_people(shop_dir / "rotas" / "people.toml")
        rota = load_rota(shop_dir / "rotas" / "weekend.toml", "weekend", people)
        assert rota.name == "weekend" and len(rota.layers) == 2
        rules = load_rules(shop_dir / "escalation_rules.toml", {"weekend", "weekend-backup"}, people)
        assert rules.shop.name == "Tienda Ejemplo"
        with pytest.raises(ConfigError, match="unknown rota"):
            load_rules(shop_dir / "escalation_rules.toml", {"weekend"}, people)


class TestLocalTimes:
    """Override and maintenance times follow SPEC §2.2 across DST changes."""

    def test_a_time_skipped_by_the_clocks_is_the_first_instant_after_the_jump(self, shop_dir: Path) -> None:
        # 2027-03-28: Madrid jumps from 02:00 to 03:00.
        edit(shop_dir / "rotas" / "weekend.toml", 'from = "2026-12-18 18:00"', 'from = "2027-03-28 02:30"')
        edit(shop_dir / "rotas" / "weekend.toml", 'to = "2026-12-21 09:00"', 'to = "2027-03-29 09:00"')
        config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
        assert config.rotas["weekend"].overrides[0].start.astimezone(UTC) == datetime(
            2027, 3, 28, 1, 0, tzinfo=UTC
        )

    def test_a_time_that_occurs_twice_is_its_first_occurrence(self, shop_dir: Path) -> None:
        # 2026-10-25: Madrid turns 03:00 back to 02:00.
        edit(
            shop_dir / "escalation_rules.toml",
            '# [[maintenance]]\n# from = "2026-12-01 02:00"\n# to = "2026-12-01 04:00"',
            '[[maintenance]]\nfrom = "2026-10-25 02:30"\nto = 2026-10-25T04:00:00',
        )
        config = load_config(shop_dir / "escalation_rules.toml", shop_dir / "rotas")
        (window,) = config.rules.maintenance
        assert window.start.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
        assert window.end.astimezone(UTC) == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)
