"""`oncall who`, `oncall rota show` and `oncall rota ics`, run as a shop owner runs them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from icalendar import Calendar

from oncall.cli import main
from tests.shoptoml import layer, override, rota

RULES = """
[shop]
name = "Tienda Ejemplo"
timezone = "Europe/Madrid"
fallback = "person:ana"

[business_hours]
mon = ["09:00-14:00", "16:00-19:00"]

[[policy]]
name = "weekend"
  [[policy.step]]
  notify = ["rota:weekend"]
  via = ["telegram"]
  ack_within = "10m"

[[rule]]
name = "closed"
match = { hours = "closed" }
policy = "weekend"
"""

PEOPLE = """
[person.ana]
name = "Ana García"
[person.luis]
name = "Luis Martín"
[person.marta]
name = "Marta Ruiz"
"""

WEEKEND = rota(
    layer("weekends", ["ana", "luis", "marta"], "weekly", "fri 18:00", "2026-11-06",
          active=["fri 18:00-24:00", "sat", "sun", "mon 00:00-09:00"]),
    override("marta", "2026-12-05 18:00", "2026-12-07 09:00", "swap with luis"),
)  # fmt: skip


def support_rota(today: date) -> str:
    """Always covered, weekly turns from three weeks ago, an override next Wednesday."""
    start = today - timedelta(weeks=3)
    wednesday = today + timedelta(days=(2 - today.weekday()) % 7 + 7)
    return rota(
        layer("primary", ["ana", "luis", "marta"], "weekly", "mon 09:00", str(start)),
        override("marta", f"{wednesday} 08:00", f"{wednesday} 20:00"),
    )


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rotas = tmp_path / "rotas"
    rotas.mkdir()
    (tmp_path / "escalation_rules.toml").write_text(RULES, encoding="utf-8")
    (rotas / "people.toml").write_text(PEOPLE, encoding="utf-8")
    (rotas / "weekend.toml").write_text(WEEKEND, encoding="utf-8")
    (rotas / "support.toml").write_text(support_rota(datetime.now(UTC).date()), encoding="utf-8")
    monkeypatch.setenv("ONCALL_RULES_FILE", str(tmp_path / "escalation_rules.toml"))
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(rotas))
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class TestWho:
    def test_saturday_night_is_ana_until_monday_then_luis(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = run(capsys, "who", "--at", "2026-11-28T23:10", "--rota", "weekend")
        assert code == 0
        assert out.splitlines() == [
            "On call at Sat 28 Nov 2026 23:10 (Europe/Madrid)",
            "weekend  Ana García until Mon 30 Nov 09:00, next Luis Martín from Fri 4 Dec 18:00",
        ]

    def test_the_override_shows_marta_until_monday(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, out, _ = run(capsys, "who", "--at", "2026-12-06T12:00", "--rota", "weekend")
        assert "weekend  Marta Ruiz until Mon 7 Dec 09:00, next Marta Ruiz from Fri 11 Dec 18:00" in out

    def test_a_weekday_says_nobody_and_who_comes_next(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, out, _ = run(capsys, "who", "--at", "2026-12-01T10:00", "--rota", "weekend")
        assert "weekend  nobody (next: Luis Martín from Fri 4 Dec 18:00)" in out

    def test_a_time_with_an_offset_is_taken_as_given(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, out, _ = run(capsys, "who", "--at", "2026-11-28T22:10+00:00", "--rota", "weekend")
        assert out.startswith("On call at Sat 28 Nov 2026 23:10 (Europe/Madrid)")

    def test_a_time_the_clocks_skip_is_read_as_the_jump(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, out, _ = run(capsys, "who", "--at", "2026-03-29T02:30", "--rota", "weekend")
        assert out.startswith("On call at Sun 29 Mar 2026 03:00 (Europe/Madrid)")

    def test_without_rota_every_rota_is_listed(self, shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(capsys, "who", "--at", "2026-11-28T23:10")
        assert code == 0
        assert [line.split()[0] for line in out.splitlines()[1:]] == ["support", "weekend"]

    def test_an_unknown_rota_is_an_error(self, shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = run(capsys, "who", "--rota", "weekends")
        assert code == 1 and out == ""
        assert err == 'error: --rota: unknown rota "weekends" (known: support, weekend)\n'

    def test_a_bad_time_is_an_error(self, shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run(capsys, "who", "--at", "saturday night")
        assert code == 1
        assert err.startswith("error: --at: 'saturday night' is not an ISO 8601 time")

    def test_a_broken_rota_file_is_reported_and_exits_1(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (shop / "rotas" / "weekend.toml").write_text(WEEKEND.replace('"marta"', '"martha"'), encoding="utf-8")
        code, out, err = run(capsys, "who")
        assert code == 1 and out == ""
        assert err.startswith("error: ") and "martha" in err


class TestRotaShow:
    def test_the_table_lists_weekly_turns_in_order_with_the_override(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = run(capsys, "rota", "show", "support", "--weeks", "4")
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == "support (Europe/Madrid)"
        assert lines[1].split() == ["from", "until", "who", "layer"]
        rows = lines[2:]
        assert all(len(line) <= 80 for line in lines)
        assert any("Marta Ruiz" in row and row.endswith("override") for row in rows)
        weekly = [row for row in rows if row.endswith("primary")]
        assert len(weekly) >= 4
        assert all(" 09:00 " in row for row in weekly)  # handoffs at 09:00 local
        who, layer = lines[1].index("who"), lines[1].index("layer")
        names = [row[who:layer].strip() for row in rows]
        assert set(names) == {"Ana García", "Luis Martín", "Marta Ruiz"}
        assert all(a != b for a, b in pairwise(names))  # one row per turn, neighbours differ

    def test_without_a_name_every_rota_is_shown(self, shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
        _, out, _ = run(capsys, "rota", "show")
        assert "support (Europe/Madrid)" in out and "weekend (Europe/Madrid)" in out

    def test_an_unknown_rota_is_an_error(self, shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run(capsys, "rota", "show", "nope")
        assert code == 1 and 'unknown rota "nope"' in err


class TestRotaIcs:
    def test_the_calendar_has_one_event_per_shift_with_stable_uids(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = run(capsys, "rota", "ics", "support", "--weeks", "4")
        assert code == 0
        events = Calendar.from_ical(out).walk("VEVENT")
        assert len(events) >= 5  # four weekly turns and the override cut one of them in two
        starts = [e.decoded("dtstart") for e in events]
        ends = [e.decoded("dtend") for e in events]
        assert all(s.tzinfo is not None for s in starts)
        assert all(a < b for a, b in zip(starts, ends, strict=True))
        assert all(b == c for b, c in zip(ends, starts[1:], strict=False))  # always covered
        assert starts[0] <= datetime.now(UTC) < ends[0]
        assert any(str(e["summary"]) == "On call: Marta Ruiz (support)" for e in events)
        uids = [str(e["uid"]) for e in events]
        assert len(set(uids)) == len(uids)

        _, again, _ = run(capsys, "rota", "ics", "support", "--weeks", "4")
        assert [str(e["uid"]) for e in Calendar.from_ical(again).walk("VEVENT")] == uids

    def test_shifts_are_exported_with_their_real_times(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, out, _ = run(capsys, "rota", "ics", "weekend", "--weeks", "1")
        events = Calendar.from_ical(out).walk("VEVENT")
        assert events
        for e in events:
            start = e.decoded("dtstart").astimezone(UTC)
            assert (start.hour, start.minute) in {(17, 0), (16, 0)}  # Friday 18:00 in Madrid

    def test_a_rota_without_shifts_is_a_valid_empty_calendar_and_a_warning(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        later = (datetime.now(UTC) + timedelta(weeks=30)).date()
        summer = rota(layer("summer", ["ana"], "weekly", "mon 09:00", str(later)))
        (shop / "rotas" / "summer.toml").write_text(summer, encoding="utf-8")
        code, out, err = run(capsys, "rota", "ics", "summer", "--weeks", "2")
        assert code == 0
        assert err == "warning: rota summer has no shifts in the next 2 weeks\n"
        cal = Calendar.from_ical(out)
        assert not cal.walk("VEVENT")
        # RFC 5545: a VCALENDAR holds at least one component; here the rota's time zone
        assert [c.name for c in cal.subcomponents] == ["VTIMEZONE"]
        assert str(cal.subcomponents[0]["tzid"]) == "Europe/Madrid"


class TestWhenIsReadAlikeByWhoAndSimulate:
    """One WHEN, one instant: `who --at` and `simulate --at` share the parser of SPEC §6."""

    def test_simulate_reads_a_skipped_wall_time_as_the_jump_like_who(
        self, shop: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (shop / "e.json").write_text('{"kind": "payment_failed"}', encoding="utf-8")
        _, who, _ = run(capsys, "who", "--at", "2026-03-29T02:30", "--rota", "weekend")
        code, sim, _ = run(capsys, "simulate", str(shop / "e.json"), "--at", "2026-03-29T02:30")
        assert code == 0
        assert who.startswith("On call at Sun 29 Mar 2026 03:00")
        assert sim.startswith("Event: payment_failed from generic at Sun 29 Mar 03:00 (Europe/Madrid)")

    @pytest.mark.parametrize("when", ["9999-12-31T23:59", "0001-01-01T00:00"])
    def test_a_year_out_of_range_is_an_input_error_not_a_traceback(
        self, shop: Path, capsys: pytest.CaptureFixture[str], when: str
    ) -> None:
        (shop / "e.json").write_text('{"kind": "payment_failed"}', encoding="utf-8")
        for argv in (["who", "--at", when], ["simulate", str(shop / "e.json"), "--at", when]):
            code, out, err = run(capsys, *argv)
            assert code == 1 and out == ""
            assert err == f"error: --at: '{when}': the year must be between 1970 and 2999\n"


def test_who_without_any_rota_says_so(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("weekend.toml", "support.toml"):
        (shop / "rotas" / name).unlink()
    rules = shop / "escalation_rules.toml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("rota:weekend", "person:ana"), encoding="utf-8"
    )
    code, out, err = run(capsys, "who", "--at", "2026-11-28T23:10")
    assert (code, err) == (0, "")
    assert out == "no rotas: add NAME.toml files to the rotas directory\n"
