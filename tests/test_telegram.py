"""The Telegram bot: webhook checks, commands, and `oncall telegram setup` / `oncall test-page`."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from oncall.channels.delivery import WINDOW
from oncall.channels.telegram import parse_callback
from oncall.cli import main
from oncall.core.models import Event, Ticket
from oncall.scheduler import Scheduler
from oncall.service import Service
from tests.fakes.paging_shop import PagingShop, open_shop, paged
from tests.fakes.telegram import FakeTelegram
from tests.recording import PEOPLE, event, madrid

ANA = PEOPLE["ana"]
LUIS = PEOPLE["luis"]


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[PagingShop]:
    async with open_shop(tmp_path) as s:
        yield s


class TestTheWebhookIsTelegramsOnly:
    async def test_a_missing_or_wrong_secret_is_401_and_changes_nothing(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        update = {
            "update_id": 1,
            "callback_query": {"id": "q", "from": {"id": ANA.telegram}, "data": f"ack:{incident}"},
        }
        for secret in (None, "wrong", ""):
            res = await shop.telegram_update(update, secret=secret)
            assert res.status_code == 401
            assert res.json() == {"error": "missing or wrong X-Telegram-Bot-Api-Secret-Token"}
        assert await shop.state(incident) == "triggered"
        assert shop.telegram.called("answerCallbackQuery") == []

    async def test_an_update_delivered_twice_is_handled_once(self, shop: PagingShop) -> None:
        await paged(shop)
        update = {
            "update_id": 77,
            "message": {"message_id": 1, "date": 0, "chat": {"id": ANA.telegram, "type": "private"},
                        "from": {"id": ANA.telegram}, "text": "/incidents"},
        }  # fmt: skip
        first = await shop.telegram_update(update)
        again = await shop.telegram_update(update)
        assert first.status_code == again.status_code == 200
        assert again.json()["duplicate"] is True
        assert len(shop.telegram.sent()) == 2  # the page, and one answer

    async def test_an_update_refused_while_starting_is_handled_when_telegram_retries(
        self, shop: PagingShop
    ) -> None:
        incident = await paged(shop)
        service, shop.app.state.service = shop.app.state.service, None
        update = {
            "update_id": 5,
            "callback_query": {"id": "q", "from": {"id": ANA.telegram}, "data": f"ack:{incident}"},
        }
        assert (await shop.telegram_update(update)).status_code == 503
        shop.app.state.service = service
        assert (await shop.telegram_update(update)).status_code == 200
        assert await shop.state(incident) == "acknowledged"

    async def test_an_unreadable_body_is_400_after_the_secret_check(self, shop: PagingShop) -> None:
        res = await shop.client.post(
            "/telegram/webhook",
            content=b"{not json",
            headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret-123"},
        )
        assert res.status_code == 400

    async def test_without_a_configured_secret_nothing_is_accepted(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, telegram_webhook_secret=None) as shop:
            res = await shop.telegram_update({"update_id": 1}, secret="")
            assert res.status_code == 401


class TestCommands:
    async def test_oncall_says_who_until_when_and_who_is_next(self, shop: PagingShop) -> None:
        shop.now = madrid("2026-11-28 23:20")
        await shop.command(LUIS.telegram or 0, "/oncall")
        [reply] = shop.telegram.sent()
        assert reply.params["chat_id"] == str(LUIS.telegram)
        assert "weekend: Ana García until Mon 30 Nov 09:00" in reply.params["text"]
        assert "next Luis" in reply.params["text"]

    async def test_incidents_lists_the_open_ones(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        await shop.command(ANA.telegram or 0, "/incidents")
        reply = shop.telegram.sent()[-1].params["text"]
        assert reply.startswith(f"#{incident} [triggered] ")

    async def test_ack_n_and_resolve_n(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        shop.now = madrid("2026-11-28 23:16")
        await shop.command(ANA.telegram or 0, f"/ack {incident}")
        assert (
            shop.telegram.sent()[-1].params["text"]
            == f"Incident {incident} acknowledged by Ana García at 23:16"
        )
        assert await shop.state(incident) == "acknowledged"
        await shop.command(ANA.telegram or 0, f"/resolve@oncall_bot {incident}")
        assert await shop.state(incident) == "resolved"

    async def test_a_stranger_gets_a_refusal_and_nothing_changes(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        await shop.command(999, f"/ack {incident}")
        # in the shop's language: a stranger has no language of their own here
        assert shop.telegram.sent()[-1].params["text"].startswith("No estás en el turno de guardia")
        assert await shop.state(incident) == "triggered"

    async def test_snooze_button_puts_the_incident_to_sleep_for_30_minutes(self, shop: PagingShop) -> None:
        incident = await paged(shop)
        shop.now = madrid("2026-11-28 23:16")
        await shop.press(ANA.telegram or 0, f"snooze:{incident}")
        answer = shop.telegram.called("answerCallbackQuery")[-1].params["text"]
        assert answer == f"Incident {incident} snoozed by Ana García until 23:46"


class TestCallbackData:
    @pytest.mark.parametrize(
        ("data", "parsed"),
        [("ack:3", ("ack", 3)), ("resolve:12", ("resolve", 12)), ("snooze:9", ("snooze", 9)),
         ("ack:all", ("ack", None)), ("snooze:all", ("snooze", None)), ("ack:ALL", None),
         ("ack:", None), ("delete:3", None), ("ack:3x", None), (None, None)],
    )  # fmt: skip
    def test_only_our_buttons_are_understood(
        self, data: str | None, parsed: tuple[str, int | None] | None
    ) -> None:
        cb = parse_callback(data)
        assert (None if cb is None else (cb.verb, cb.incident_id)) == parsed


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


class TestTheCommands:
    def test_telegram_setup_registers_the_webhook_and_its_secret(
        self, fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ONCALL_TELEGRAM_BOT_TOKEN", "123:ABC")
        monkeypatch.setenv("ONCALL_TELEGRAM_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv("ONCALL_TELEGRAM_API_URL", fake_telegram.api_url)
        monkeypatch.setenv("ONCALL_PUBLIC_URL", "https://oncall.example")
        assert main(["telegram", "setup"]) == 0
        [call] = fake_telegram.called("setWebhook")
        assert call.params["url"] == "https://oncall.example/telegram/webhook"
        assert call.params["secret_token"] == "s3cret"
        assert "s3cret" not in capsys.readouterr().out
        assert fake_telegram.called("setMyCommands")

    def test_telegram_setup_without_a_secret_explains_what_to_set(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ONCALL_TELEGRAM_BOT_TOKEN", "123:ABC")
        monkeypatch.delenv("ONCALL_TELEGRAM_WEBHOOK_SECRET", raising=False)
        assert main(["telegram", "setup"]) == 1
        assert "ONCALL_TELEGRAM_WEBHOOK_SECRET=" in capsys.readouterr().err

    def test_test_page_reaches_ana_on_telegram(
        self,
        shop_env: Path,
        fake_telegram: FakeTelegram,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("ONCALL_TELEGRAM_BOT_TOKEN", "123:ABC")
        monkeypatch.setenv("ONCALL_TELEGRAM_API_URL", fake_telegram.api_url)
        assert main(["test-page", "ana", "--via", "telegram"]) == 0
        [sent] = fake_telegram.sent()
        assert sent.params["chat_id"] == "123456789"  # rotas/people.toml
        assert "test page for Ana García via telegram" in sent.params["text"]
        assert capsys.readouterr().out.startswith("telegram: sent to Ana García")

    def test_test_page_by_a_channel_without_credentials_fails_clearly(
        self, shop_env: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["test-page", "ana", "--via", "sms"]) == 1
        assert "error: sms: sms has no credentials" in capsys.readouterr().err

    def test_test_page_names_the_settings_to_set_and_the_failure_once(
        self, shop_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ONCALL_TWILIO_ACCOUNT_SID", "AC123")
        assert main(["test-page", "ana", "--via", "sms"]) == 1
        assert capsys.readouterr().err == (
            "error: sms: sms has no credentials (set ONCALL_TWILIO_AUTH_TOKEN, ONCALL_TWILIO_FROM)\n"
        )
        monkeypatch.setenv("ONCALL_TELEGRAM_BOT_TOKEN", "123:s3cret")
        monkeypatch.setenv("ONCALL_TELEGRAM_API_URL", "http://127.0.0.1:9/bot")  # nothing listens
        assert main(["test-page", "ana", "--via", "telegram"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: telegram: could not reach Telegram at http://127.0.0.1:9/bot: ")
        assert "telegram: telegram:" not in err and "refused" not in err
        assert "s3cret" not in err

    def test_test_page_says_which_provider_it_could_not_reach(
        self, shop_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        nothing_listens = "http://127.0.0.1:9"
        monkeypatch.setenv("ONCALL_SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("ONCALL_SLACK_API_URL", nothing_listens + "/api/")
        monkeypatch.setenv("ONCALL_TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
        monkeypatch.setenv("ONCALL_TWILIO_AUTH_TOKEN", "tw-secret")
        monkeypatch.setenv("ONCALL_TWILIO_FROM", "+34600000000")
        monkeypatch.setenv("ONCALL_TWILIO_API_URL", nothing_listens)
        assert main(["test-page", "ana", "--via", "slack"]) == 1
        assert capsys.readouterr().err.startswith(
            "error: slack: could not reach Slack at http://127.0.0.1:9/api/: Cannot connect to host"
        )
        assert main(["test-page", "ana", "--via", "sms"]) == 1
        assert capsys.readouterr().err.startswith(
            "error: sms: could not reach Twilio at http://127.0.0.1:9: Cannot connect to host"
        )

    def test_telegram_setup_says_when_telegram_could_not_be_reached(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ONCALL_TELEGRAM_BOT_TOKEN", "123:ABC")
        monkeypatch.setenv("ONCALL_TELEGRAM_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv("ONCALL_TELEGRAM_API_URL", "http://127.0.0.1:9/bot")  # nothing listens
        monkeypatch.setenv("ONCALL_PUBLIC_URL", "https://oncall.example")
        assert main(["telegram", "setup"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: could not reach Telegram at http://127.0.0.1:9/bot: ")
        assert "refused" not in err


async def test_a_command_whose_reply_cannot_be_sent_still_acts_and_answers_200(tmp_path: Path) -> None:
    async with open_shop(tmp_path, telegram_bot_token=None) as shop:  # the bot token was removed
        incident = await paged(shop)
        r = await shop.command(ANA.telegram or 0, f"/ack {incident}")
        assert r.status_code == 200
        assert await shop.state(incident) == "acknowledged"
        assert (await shop.command(999, "/oncall")).status_code == 200


async def test_a_page_still_on_its_way_when_ana_acks_on_slack_loses_its_buttons(shop: PagingShop) -> None:
    """SPEC §5: after an ack every message of the incident says who acknowledged it. Telegram
    is slow to take the 23:15 page; Ana acks from the Slack page meanwhile. When Telegram
    finally delivers, its message is edited at once (no buttons left to press), once."""
    await shop.receive(event(at=madrid("2026-11-28 23:10")))
    await shop.at("2026-11-28 23:10")
    telegram = shop.hang("telegram")
    shop.now = madrid("2026-11-28 23:15")
    await Scheduler(shop.service, clock=lambda: shop.now).run_once()
    await asyncio.wait_for(telegram.entered.wait(), 5)
    for _ in range(200):  # the Slack page goes out meanwhile
        if shop.slack.called("chat.postMessage"):
            break
        await asyncio.sleep(0.01)
    [incident] = [i.id for i in await shop.service.incidents()]
    shop.now = madrid("2026-11-28 23:16")
    press = asyncio.ensure_future(shop.slack_press(ANA.slack or "", f"ack:{incident}"))
    for _ in range(200):
        if await shop.state(incident) == "acknowledged":
            break
        await asyncio.sleep(0.01)
    telegram.release()  # Telegram answers at last
    assert (await press).status_code == 200
    await shop.service.drain()
    assert len(shop.telegram.sent()) == 1  # the page
    [edit] = shop.telegram.called("editMessageText")
    assert edit.params["text"] == f"Incident {incident} acknowledged by Ana García at 23:16"
    assert "reply_markup" not in edit.params
    assert len(shop.slack.called("chat.update")) == 1
    # Had the ack's update read the pages only after Telegram delivered (a race), it edits nothing twice.
    await shop.service._update(incident, edit.params["text"])
    assert len(shop.telegram.called("editMessageText")) == len(shop.slack.called("chat.update")) == 1


async def test_a_page_still_on_its_way_when_another_process_acks_is_edited_too(shop: PagingShop) -> None:
    """The ack comes from another process (`oncall ack`, a second instance) while Telegram is
    slow to take the page: this process edits it once delivered, in the words of the ack."""
    await shop.receive(event(at=madrid("2026-11-28 23:10")))
    await shop.at("2026-11-28 23:10")
    telegram = shop.hang("telegram")
    shop.now = madrid("2026-11-28 23:15")
    await Scheduler(shop.service, clock=lambda: shop.now).run_once()
    await asyncio.wait_for(telegram.entered.wait(), 5)
    [incident] = [i.id for i in await shop.service.incidents()]
    terminal = Service(shop.db, lambda: shop.config, {}, shop.settings)
    try:
        assert (await terminal.act(incident, ANA, "ack", "cli", madrid("2026-11-28 23:17"))).ok
    finally:
        await terminal.aclose()
    telegram.release()
    await shop.service.drain()
    [edit] = shop.telegram.called("editMessageText")
    assert edit.params["text"] == f"Incident {incident} acknowledged by Ana García at 23:17"


def _urgent_ticket(number: str, at: str) -> Event:
    t = event("ticket_created", madrid(at), source="zendesk", amount=None)
    return replace(t, ticket=Ticket(number, "urgent", "open", "Cobro doble"))


async def test_a_flood_split_over_two_messages_is_acknowledged_one_message_at_a_time(tmp_path: Path) -> None:
    """60 urgent tickets at 23:10 page Ana at once: more than one Telegram message holds, so
    they come as two, each naming its incidents once with buttons for each. "Ack all" on the
    second acknowledges its incidents only; that message is edited, the first (still paging
    for its own) is not."""
    async with open_shop(tmp_path, bundle_window=WINDOW) as shop:
        for n in range(60):
            await shop.receive(_urgent_ticket(str(500 + n), "2026-11-28 23:10"))
        await shop.at("2026-11-28 23:10")
        first, second = shop.telegram.sent()
        parts = [
            [int(i) for i in re.findall(r"(?m)^#(\d+) ticket \d+", m.params["text"])] for m in (first, second)
        ]
        assert parts[0] + parts[1] == list(range(1, 61))  # each once, in order
        for message, ids in zip((first, second), parts, strict=True):
            rows = json.loads(message.params["reply_markup"])["inline_keyboard"]
            assert [r[0]["callback_data"] for r in rows] == [f"ack:{i}" for i in ids] + ["ack:all"]
        [(_, second_id)] = [key for key, text in shop.telegram.texts.items() if text == second.params["text"]]

        await shop.press(ANA.telegram or 0, "ack:all", message_id=second_id)
        states = {i: await shop.state(i) for i in range(1, 61)}
        assert {i for i, s in states.items() if s == "acknowledged"} == set(parts[1])
        answer = shop.telegram.called("answerCallbackQuery")[-1].params["text"]
        assert answer == f"{len(parts[1])} incidents acknowledged: " + ", ".join(f"#{i}" for i in parts[1])
        edited = {int(e.params["message_id"]) for e in shop.telegram.called("editMessageText")}
        assert edited == {second_id}
