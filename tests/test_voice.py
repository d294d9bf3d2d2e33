"""Voice pages (SPEC §5 Voice) through the twilio SDK against the fake Twilio, which plays
Twilio's part of each call: it fetches the TwiML from `POST /twilio/voice`, presses a key,
and reports the call's end to `/twilio/voice/status`, every request signed as Twilio signs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from twilio.rest import Client

from oncall.channels.delivery import WINDOW
from oncall.channels.sms import _TwilioHttp
from oncall.cli import main
from oncall.core.models import Config, Person, Policy, Step, Target, Ticket
from oncall.settings import Settings
from tests.fakes.paging_shop import PUBLIC, TWILIO_FROM, TWILIO_TOKEN, PagingShop, open_shop
from tests.fakes.twilio import FakeTwilio, PlacedCall
from tests.recording import PEOPLE, event, madrid, shop_config

ANA = replace(PEOPLE["ana"], language="es")  # Luis is on the backup rota, by Telegram (222)

VOICE_FIRST = Policy(
    "weekend",
    (
        Step((Target("rota", "weekend"),), ("voice",), timedelta(minutes=10)),
        Step((Target("rota", "weekend-backup"),), ("telegram",), timedelta(minutes=10)),
    ),
)


def voice_config(**people: Person) -> Config:
    return shop_config(policies={"weekend": VOICE_FIRST}, people={**PEOPLE, "ana": ANA, **people})


async def called(shop: PagingShop) -> tuple[int, PlacedCall]:
    """A payment failure at Saturday 23:10: held 5 minutes, then Ana's phone rings at 23:15."""
    await shop.receive(event(at=madrid("2026-11-28 23:10")))
    await shop.at("2026-11-28 23:10")
    await shop.at("2026-11-28 23:15")
    [incident] = [i.id for i in await shop.service.incidents()]
    return incident, shop.twilio.call_to(ANA.phone or "")


def telegram_to(shop: PagingShop, chat: int) -> list[str]:
    return [str(c.params["text"]) for c in shop.telegram.sent() if str(c.params["chat_id"]) == str(chat)]


class TestTheCall:
    async def test_the_call_comes_from_the_paging_number_and_asks_oncall_what_to_say(
        self, tmp_path: Path
    ) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            _, call = await called(shop)
            assert call.from_ == TWILIO_FROM
            assert call.url is not None and call.url.startswith(f"{PUBLIC}/twilio/voice?t=")
            assert call.status_callback == f"{PUBLIC}/twilio/voice/status"
            assert call.machine_detection == "Enable"
            assert len(shop.twilio.placed) == 1 and not shop.twilio.sent()  # a call, not a text
            await shop.twilio.pick_up(shop.client, call)
            # The fake's Calls resource answers the SDK's fetch as Twilio does.
            sdk = Client("AC" + "1" * 32, TWILIO_TOKEN, http_client=_TwilioHttp(5.0))
            sdk.api.base_url = shop.twilio.api_url
            fetched = await sdk.calls(call.sid).fetch_async()
            assert (fetched.sid, fetched.to, fetched.status) == (call.sid, ANA.phone, "completed")

    async def test_onCALL_TWILIO_VOICE_FROM_is_the_caller_id(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config(), twilio_voice_from="+15550002222") as shop:
            _, call = await called(shop)
            assert call.from_ == "+15550002222"

    def test_a_whatsapp_sender_places_no_call_without_a_voice_number(self) -> None:
        whatsapp = Settings(_env_file=None, twilio_from="whatsapp:+15550001111")  # type: ignore[call-arg]
        assert whatsapp.voice_from is None
        assert Settings(_env_file=None, twilio_from="+15550001111").voice_from == "+15550001111"  # type: ignore[call-arg]
        both = Settings(_env_file=None, twilio_from="whatsapp:+1555", twilio_voice_from="+1666")  # type: ignore[call-arg]
        assert both.voice_from == "+1666"

    async def test_ana_hears_the_page_in_spanish_and_1_acknowledges_it(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            shop.now = madrid("2026-11-28 23:16")
            res = await shop.twilio.pick_up(shop.client, call, press="1")
            await shop.service.drain()
            assert res.status_code == 200
            page = ET.fromstring(call.heard[0])
            assert [s.get("language") for s in page.iter("Say")] == ["es-ES"] * 3
            said = call.said()
            assert said.startswith(
                "Aquí oncall, de Tienda Ejemplo: un pago fallido, desde las 23:10. 37,98 € en total."
                " Pulsa 1 para reconocer, 2 para resolver, 3 para aplazar 30 minutos,"
                " o 9 para volver a oírlo."
            )
            assert said.endswith("Reconocido. Gracias.")
            assert await shop.state(incident) == "acknowledged"
            assert "acknowledged by Ana García via voice" in await shop.timeline(incident)

    async def test_2_resolves_and_3_snoozes_for_30_minutes(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            await shop.twilio.pick_up(shop.client, call, press="2")
            assert await shop.state(incident) == "resolved"
            assert call.said().endswith("Resuelto. Gracias.")
        (tmp_path / "snooze").mkdir()
        async with open_shop(tmp_path / "snooze", voice_config()) as shop:
            incident, call = await called(shop)
            await shop.twilio.pick_up(shop.client, call, press="3")
            await shop.service.drain()
            assert call.said().endswith("Aplazado 30 minutos. Gracias.")
            assert any(
                t.startswith("snoozed by Ana García via voice until") for t in await shop.timeline(incident)
            )

    async def test_no_key_says_it_twice_then_hangs_up(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            await shop.twilio.pick_up(shop.client, call)
            verbs = [e.tag for e in ET.fromstring(call.heard[0])]
            assert verbs == ["Gather", "Gather", "Say", "Hangup"]
            for gather in ET.fromstring(call.heard[0]).iter("Gather"):
                assert (
                    gather.get("numDigits") == "1" and gather.get("action") == call.url
                )  # the same endpoint
            assert call.said().endswith("No se ha pulsado ninguna tecla. Adiós.")
            # Answered by a person: reached, so nothing fails over; the step's ack_within runs on.
            assert await shop.state(incident) == "triggered" and not shop.telegram.sent()

    async def test_9_repeats_the_page_and_another_key_says_it_does_nothing(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            await shop.twilio.pick_up(shop.client, call, press="9", hang_up=False)
            again = ET.fromstring(call.heard[-1])
            assert [e.tag for e in again] == ["Gather", "Gather", "Say", "Hangup"]
            action = again.find("Gather")
            assert action is not None and action.get("action") == call.url
            await shop.twilio.press(shop.client, call, "7", call.url or "")
            assert call.said().count("Aquí oncall, de Tienda Ejemplo") == 6
            assert "Esa tecla no hace nada." in call.said()
            assert await shop.state(incident) == "triggered"

    async def test_an_english_person_hears_english_and_one_without_a_language_the_shops(
        self, tmp_path: Path
    ) -> None:
        async with open_shop(tmp_path, voice_config(ana=replace(ANA, language="en"))) as shop:
            _, call = await called(shop)
            await shop.twilio.pick_up(shop.client, call, press="1")
            page = ET.fromstring(call.heard[0])
            assert {s.get("language") for s in page.iter("Say")} == {"en-GB"}
            assert call.said().startswith(
                "This is oncall for Tienda Ejemplo: a payment failure, since 23:10. €37.98 in total."
                " Press 1 to"
            )
            assert call.said().endswith("Acknowledged. Thank you.")
        (tmp_path / "shop").mkdir()
        async with open_shop(tmp_path / "shop", voice_config(ana=replace(ANA, language=None))) as shop:
            _, call = await called(shop)  # the shop's language is "es"
            await shop.twilio.pick_up(shop.client, call)
            assert call.said().startswith("Aquí oncall, de Tienda Ejemplo")

    async def test_a_bundle_is_one_call_summarised_and_1_acknowledges_all(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config(), bundle_window=WINDOW) as shop:
            for n in range(3):
                t = event("ticket_created", madrid("2026-11-28 23:10"), source="zendesk", amount=None)
                await shop.receive(replace(t, ticket=Ticket(str(600 + n), "urgent", "open", "Cobro doble")))
            await shop.at("2026-11-28 23:10")
            [call] = shop.twilio.placed
            await shop.twilio.pick_up(shop.client, call, press="1")
            await shop.service.drain()
            assert call.said().startswith(
                "Aquí oncall, de Tienda Ejemplo: hay 3 incidentes esperando, el primero desde las 23:10."
                " Pulsa 1 para reconocerlos todos"
            )
            assert call.said().endswith("Reconocidos los 3. Gracias.")
            assert [await shop.state(i) for i in (1, 2, 3)] == ["acknowledged"] * 3

    async def test_a_call_placed_before_someone_else_acknowledged_says_so(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            res = await shop.client.post(f"/api/incidents/{incident}/ack")  # no admin token here
            if res.status_code != 200:
                await shop.service.act(incident, PEOPLE["luis"], "ack", "cli", shop.now)
            await shop.twilio.pick_up(shop.client, call)
            assert call.said() == "No ha cambiado nada: ya no está esperando por ti."


class TestOutcomes:
    @pytest.mark.parametrize(
        ("status", "why"),
        [
            ("no-answer", "was not answered"),
            ("busy", "was busy"),
            ("failed", "failed"),
            ("canceled", "was canceled"),
        ],
    )
    async def test_a_call_not_answered_has_not_reached_her_and_the_next_step_follows(
        self, tmp_path: Path, status: str, why: str
    ) -> None:
        only_a_phone = Person("ana", "Ana García", phone=ANA.phone, language="es")
        async with open_shop(tmp_path, voice_config(ana=only_a_phone)) as shop:
            incident, call = await called(shop)
            res = await shop.twilio.ends(shop.client, call, status)
            assert res.status_code == 204
            await shop.at("2026-11-28 23:16")  # the scheduler, woken by the report
            timeline = await shop.timeline(incident)
            assert f"voice call to Ana García {why}: not reached" in timeline
            assert any("not reached by voice: paging by sms instead" in t for t in timeline)
            assert shop.twilio.bodies(ANA.phone)  # her only other channel, at once
            await shop.at("2026-11-28 23:24")
            assert not telegram_to(shop, 222)
            await shop.at("2026-11-28 23:25")  # ack_within 10m: the backup step, Luis by Telegram
            assert len(telegram_to(shop, 222)) == 1

    async def test_a_voicemail_has_not_reached_her_and_fails_over_at_once(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            res = await shop.twilio.pick_up(shop.client, call, answered_by="machine_start")
            await shop.at("2026-11-28 23:16")  # the scheduler, woken by the report
            assert [e.tag for e in ET.fromstring(res.text)] == ["Hangup"]  # nothing left on the tape
            timeline = await shop.timeline(incident)
            assert timeline.count("voice call to Ana García reached a voicemail: not reached") == 1
            assert len(telegram_to(shop, 111)) == 1  # fail-over; the call's end (completed) adds nothing
            assert await shop.state(incident) == "triggered"

    async def test_a_fax_is_not_a_person_either(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            await shop.twilio.pick_up(shop.client, call, answered_by="fax")
            await shop.service.drain()
            assert "voice call to Ana García reached a fax machine: not reached" in await shop.timeline(
                incident
            )

    async def test_one_call_per_step_and_person_across_a_restart(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            await called(shop)
            await shop.at("2026-11-28 23:16")
            assert len(shop.twilio.placed) == 1
        async with open_shop(tmp_path, voice_config()) as again:
            await again.at("2026-11-28 23:17")
            await again.at("2026-11-28 23:20")
            assert again.twilio.placed == []

    async def test_a_key_pressed_after_a_restart_still_acts(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            await shop.twilio.pick_up(shop.client, call, hang_up=False)  # she listens…
            fake = shop.twilio
        async with open_shop(tmp_path, voice_config()) as restarted:  # …oncall restarts…
            restarted.now = madrid("2026-11-28 23:16")
            res = await fake.press(restarted.client, call, "1", call.url or "")  # …she presses 1
            await restarted.service.drain()
            assert res.status_code == 200 and call.said().endswith("Reconocido. Gracias.")
            assert await restarted.state(incident) == "acknowledged"


class TestWhoMayAct:
    async def test_a_wrong_signature_is_401_and_changes_nothing(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            res = await shop.twilio.pick_up(shop.client, call, hang_up=False, token="not-the-token")
            assert res.status_code == 401 and not call.heard
            res = await shop.twilio.press(shop.client, call, "1", call.url or "", token="not-the-token")
            assert res.status_code == 401
            res = await shop.twilio.ends(shop.client, call, "no-answer", token="not-the-token")
            assert res.status_code == 401
            unsigned = await shop.client.post(
                "/twilio/voice/status", data={"CallSid": call.sid, "CallStatus": "busy"}
            )
            assert unsigned.status_code == 401
            await shop.service.drain()
            assert await shop.state(incident) == "triggered"
            assert not any("not reached" in t for t in await shop.timeline(incident))
            assert not shop.telegram.sent()

    async def test_the_call_acts_only_as_the_person_it_was_placed_to(self, tmp_path: Path) -> None:
        async with open_shop(tmp_path, voice_config()) as shop:
            incident, call = await called(shop)
            # Twilio-signed, but not the call to Ana: her page's token does not let Luis's call act.
            res = await shop.twilio.press(
                shop.client, replace(call, to=PEOPLE["luis"].phone or ""), "1", call.url or ""
            )
            assert res.status_code == 401
            # A token from the query alone is nothing: the signature covers the URL it came in.
            other = (call.url or "").replace("?t=", "?t=x")
            res = await shop.client.post(
                other.removeprefix(PUBLIC),
                data={"CallSid": call.sid, "To": call.to, "Digits": "1"},
                headers=shop.twilio.sign(call.url or "", {"CallSid": call.sid, "To": call.to, "Digits": "1"}),
            )
            assert res.status_code == 401
            assert await shop.state(incident) == "triggered"


class TestTheCommands:
    @pytest.fixture
    def twilio(self, shop_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
        fake = FakeTwilio().start()
        monkeypatch.setenv("ONCALL_TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
        monkeypatch.setenv("ONCALL_TWILIO_AUTH_TOKEN", "tw-secret")
        monkeypatch.setenv("ONCALL_TWILIO_FROM", "+34910000000")
        monkeypatch.setenv("ONCALL_TWILIO_API_URL", fake.api_url)
        yield fake
        fake.stop()

    def test_test_page_via_voice_rings_ana_and_says_it_is_a_test_in_her_language(
        self, twilio: FakeTwilio, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["test-page", "ana", "--via", "voice"]) == 0
        [call] = twilio.placed
        assert (call.to, call.from_, call.url) == ("+34600111222", "+34910000000", None)  # rotas/people.toml
        said = ET.fromstring(call.twiml or "<Response/>").find("Say")
        assert said is not None and said.get("language") == "es-ES"
        assert said.text == (
            "Esta es una llamada de prueba de oncall, de Tienda Ejemplo, para Ana García."
            " No hay nada que hacer. Adiós."
        )
        assert capsys.readouterr().out.startswith(f"voice: sent to Ana García ({call.sid}|+34600111222)")

    def test_test_page_without_via_does_not_ring(self, twilio: FakeTwilio) -> None:
        assert main(["test-page", "ana"]) == 1  # Telegram and Slack have no credentials here
        assert twilio.placed == [] and len(twilio.sent()) == 1  # the SMS went

    def test_check_warns_of_a_person_without_a_phone_under_a_voice_step(
        self, shop_env: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        people = shop_env / "rotas" / "people.toml"
        people.write_text(people.read_text().replace('phone = "+34600777888"\n', ""))
        assert main(["check"]) == 0
        err = capsys.readouterr().err.splitlines()
        assert (
            "warning: policy weekend step 3 pages owner by voice but rotas/people.toml has no phone for owner"
            in err
        )
