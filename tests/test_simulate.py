"""`oncall simulate`: the matching rule, the page timeline and the customer message; nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oncall.cli import main
from oncall.commands.simulate import simulate
from tests.recording import event, madrid, shop_config

ROOT = Path(__file__).resolve().parent.parent


class TestTheReport:
    def test_saturday_night_shows_the_rule_each_page_and_the_spanish_customer_message(self) -> None:
        ev = event(at=madrid("2026-11-28 23:10"), customer="Lucia Perez", order="1001", amount=189.90)
        report = simulate(ev, shop_config(), madrid("2026-11-28 23:10"))
        assert "business hours closed" in report
        assert (
            "Rule: “payment failures while closed” → page (policy weekend; hold 5m; grouped by kind)"
            in report
        )
        pages = [line.strip() for line in report.splitlines() if ", round " in line]
        assert pages[:3] == [
            "Sat 28 Nov 23:15  step 1, round 1: Ana García by telegram",
            "Sat 28 Nov 23:15  step 1, round 1: Ana García by slack",
            "Sat 28 Nov 23:25  step 2, round 1: Ana García by sms",
        ]
        assert len(pages) == 14
        assert "Sun 29 Nov 00:25  escalation exhausted: every step ran and nobody acknowledged" in report
        assert "1 payment failure since 23:10, 189.90 EUR" in report
        assert "el pago de tu pedido 1001 no se ha completado" in report

    def test_in_hours_it_shows_the_team_channel_post_and_no_page(self) -> None:
        report = simulate(event(at=madrid("2026-11-25 10:00")), shop_config(), madrid("2026-11-25 10:00"))
        assert "Rule: “in hours” → post" in report and "posted to slack:#soporte" in report
        assert ", round " not in report

    def test_an_event_no_rule_matches_says_so(self) -> None:
        report = simulate(event("order_created"), shop_config(), madrid("2026-11-28 23:10"))
        assert "none matches" in report


def test_the_command_reads_a_generic_event_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "event.json"
    path.write_text(
        json.dumps(
            {
                "id": "sim-1",
                "kind": "payment_failed",
                "summary": "Card declined",
                "customer": {"name": "Lucía", "email": "lucia@example.com", "language": "es"},
                "order": {"id": "o-1", "number": "1001", "amount": 189.9, "currency": "EUR"},
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("ONCALL_RULES_FILE", str(ROOT / "escalation_rules.toml"))
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(ROOT / "rotas"))
    monkeypatch.setenv("ONCALL_DATABASE_URL", f"sqlite:///{tmp_path / 'never-created.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", str(path), "--at", "2026-11-28T23:10"]) == 0
    out = capsys.readouterr().out
    assert "Sat 28 Nov 23:15  step 1, round 1:" in out
    assert "Customer message" in out
    assert not (tmp_path / "never-created.db").exists()


def test_a_bad_when_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCALL_RULES_FILE", str(ROOT / "escalation_rules.toml"))
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(ROOT / "rotas"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.json").write_text('{"kind": "payment_failed"}', encoding="utf-8")
    assert main(["simulate", str(tmp_path / "e.json"), "--at", "saturday night"]) == 1


def test_a_platform_payload_is_read_with_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = {
        "id": "evt_1",
        "type": "payment_intent.payment_failed",
        "created": 1764367800,
        "data": {
            "object": {
                "id": "pi_1",
                "amount": 18990,
                "currency": "eur",
                "receipt_email": "lucia@example.com",
                "metadata": {"order_id": "1001", "order_number": "1001"},
            }
        },
    }
    (tmp_path / "stripe.json").write_text(json.dumps(payload), encoding="utf-8")
    monkeypatch.setenv("ONCALL_RULES_FILE", str(ROOT / "escalation_rules.toml"))
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(ROOT / "rotas"))
    monkeypatch.chdir(tmp_path)
    args = ["simulate", str(tmp_path / "stripe.json"), "--source", "stripe", "--at", "2026-11-28T23:10"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Event: payment_failed from stripe at Sat 28 Nov 23:10")
    assert "1 payment failure since 23:10, 189.90 EUR" in out


def test_a_shopify_dispute_payload_is_simulated_as_a_dispute(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Shopify names its topic only in a header; the dry run must not read a dispute as an order.
    monkeypatch.setenv("ONCALL_RULES_FILE", str(ROOT / "escalation_rules.toml"))
    monkeypatch.setenv("ONCALL_ROTAS_DIR", str(ROOT / "rotas"))
    path = ROOT / "tests" / "fixtures" / "shopify" / "disputes_create.json"
    assert main(["simulate", str(path), "--source", "shopify", "--at", "2026-11-28T23:10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Event: dispute_opened from shopify at Sat 28 Nov 23:10")
    assert "Rule: “disputes go to the owner” → page" in out
