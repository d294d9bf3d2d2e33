"""Every rota person reads their own language (SPEC §2.2 `language`, §5): pages on Telegram,
Slack and SMS, the edits after an ack, replies, refusals, SMS help and the ack page; a person
without a language reads the shop's, one in a language with no catalogue reads English; the
status page is in the shop's language. Through the real app, the official SDKs and the fake
providers, and the catalogue contract itself (a new language is one file)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest

from oncall import i18n
from oncall.channels.delivery import WINDOW
from oncall.core import pagetext
from oncall.core.gsm7 import BASIC, EXTENDED, segments
from oncall.core.incident import Incident, Joined, make_world, open_incident, step
from oncall.core.models import Person, Policy, Step, Target, Ticket, person_language
from tests.fakes.paging_shop import PagingShop, open_shop
from tests.recording import MADRID, PEOPLE, RULES, event, madrid, shop_config

ANA = PEOPLE["ana"]
LUIS = PEOPLE["luis"]
MARTA = PEOPLE["marta"]


def people(**languages: str | None) -> dict[str, Person]:
    """The test shop's people, with these languages (None: the person names none)."""
    return {pid: replace(p, language=languages.get(pid, p.language)) for pid, p in PEOPLE.items()}


# Ana reads Spanish, Luis names no language (so the shop's, Spanish), Marta reads English.
SPANISH = people(ana="es", luis=None, marta="en")


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[PagingShop]:
    async with open_shop(tmp_path, shop_config(people=SPANISH), admin_token="admin-t0ken") as s:
        yield s


async def paged_for_18990(shop: PagingShop) -> int:
    """The weekend story: one payment failure of 189.90 EUR at Saturday 23:10, paged at 23:15."""
    await shop.receive(event(at=madrid("2026-11-28 23:10"), amount=189.90, customer="Laura Pérez"))
    await shop.at("2026-11-28 23:10")
    await shop.at("2026-11-28 23:15")
    [incident] = [i.id for i in await shop.service.incidents()]
    return incident


def gsm7_only(text: str) -> bool:
    return all(ch in BASIC or ch in EXTENDED for ch in text)


# -- the catalogue --------------------------------------------------------------------------


def _keys(lang: str) -> set[str]:
    text = resources.files("oncall.i18n").joinpath(f"{lang}.toml").read_text(encoding="utf-8")
    return set(i18n._flatten(tomllib.loads(text)))


class TestTheCatalogue:
    def test_english_and_spanish_have_exactly_the_same_keys(self) -> None:
        # No documented exceptions today: every text a person reads exists in both.
        assert _keys("en") - _keys("es") == set()
        assert _keys("es") - _keys("en") == set()

    def test_a_new_language_is_one_file_and_what_it_lacks_reads_english(self) -> None:
        path = Path(str(resources.files("oncall.i18n"))) / "it.toml"
        assert not path.exists()
        path.write_text('[button]\nack = "Conferma"\n', encoding="utf-8")
        i18n._catalogue.cache_clear()
        i18n._locale.cache_clear()  # which locale a language writes in depends on its file
        try:
            assert i18n.text("it", "button.ack") == "Conferma"
            assert i18n.text("it", "button.resolve") == "Resolve"  # not in the file: English
            assert i18n.money(189.9, "EUR", "it") == "189,90 €"  # Babel knows Italian
            assert i18n.day_short(madrid("2026-11-28 23:10"), "it", MADRID) == "sab 28 nov 23:10"
        finally:
            path.unlink()
            i18n._catalogue.cache_clear()
            i18n._locale.cache_clear()
        assert i18n.text("it", "button.ack") == "Ack"
        assert i18n.money(189.9, "EUR", "it") == "189.90 EUR"  # no file: English, amounts too

    def test_a_language_without_a_catalogue_reads_english(self) -> None:
        assert i18n.text("fr", "button.ack") == "Ack"
        assert i18n.plural("fr", "kind.payment_failed", 2) == "payment failures"

    def test_dates_and_amounts_are_written_as_the_language_writes_them(self) -> None:
        t = madrid("2026-11-28 23:10")
        assert i18n.money(189.90, "EUR", "es") == "189,90 €"
        assert i18n.money(1189.90, "EUR", "es") == "1.189,90 €"
        assert i18n.money(189.90, "EUR", "fr") == "189.90 EUR"  # no French catalogue: English
        assert i18n.money(189.90, "EUR", "en") == "189.90 EUR"  # SPEC §5's own example
        assert i18n.money(5000, "JPY", "en") == "5000 JPY"
        assert i18n.day_and_time(t, "es", MADRID) == "sábado 28 nov, 23:10"
        assert i18n.day_short(t, "es", MADRID) == "sábado 28 nov, 23:10"
        assert i18n.day_short(t, "en", MADRID) == "Sat 28 Nov 23:10"
        assert i18n.waiting(timedelta(days=2, hours=3), "es") == "2 días 3 h"
        assert i18n.waiting(timedelta(days=1, hours=3), "en") == "1 day 3 h"

    def test_a_person_reads_their_language_else_the_shops(self) -> None:
        shop = shop_config().rules.shop
        assert shop.language == "es"
        assert person_language(SPANISH["ana"], shop) == "es"
        assert person_language(SPANISH["marta"], shop) == "en"
        assert person_language(SPANISH["luis"], shop) == "es"
        assert person_language(None, shop) == "es"  # a stranger: the shop's


# -- the page text --------------------------------------------------------------------------


class TestThePageText:
    def _incident(self, at: str, n: int = 3, amount: float = 63.30) -> Incident:
        """Incident 4: `n` payment failures of `amount` EUR at `at`, each its own customer."""
        world = make_world(shop_config())
        first = event(at=madrid(at), amount=amount, customer="Cliente Uno")
        inc = open_incident(4, RULES[0], "kind=payment_failed", first, first.received_at, world).incident
        for i in range(1, n):
            ev = event(at=madrid(at), amount=amount, customer=f"Cliente {i}")
            inc = step(inc, Joined(ev), ev.received_at, world).incident
        return inc

    def test_a_spanish_page_counts_in_spanish_with_babels_amounts(self) -> None:
        inc = self._incident("2026-11-28 22:41")
        shop = shop_config().rules.shop
        text = pagetext.page_text(inc, shop, madrid("2026-11-28 23:10"), "https://x/ack/t", "es")
        assert text.title == "Tienda Ejemplo: 3 fallos de pago desde las 22:41"
        assert "3 fallos de pago desde las 22:41, 189,90 €" in text.body
        assert "Esperando 29 min. Regla: payment failures while closed." in text.body
        assert "Reconocer / Resolver / Aplazar 30m: https://x/ack/t" in text.body
        english = pagetext.page_text(inc, shop, madrid("2026-11-28 23:10"), "https://x/ack/t", "en")
        assert "3 payment failures since 22:41, 189.90 EUR" in english.body

    def test_an_old_incident_names_its_day_as_spanish_writes_it(self) -> None:
        inc = self._incident("2026-11-28 23:10", n=1, amount=189.90)
        shop = shop_config().rules.shop
        text = pagetext.page_text(inc, shop, madrid("2026-11-29 12:00"), "https://x/ack/t", "es")
        assert "1 fallo de pago desde el sábado 28 nov, 23:10, 189,90 €" in text.body
        assert text.title == "Tienda Ejemplo: 1 fallo de pago desde el sábado 28 nov, 23:10"  # uncut

    def test_a_long_spanish_sms_keeps_two_segments_gsm7_and_its_tail(self) -> None:
        inc = self._incident("2026-11-28 22:41", n=12)
        shop = replace(shop_config().rules.shop, name="Tienda Ejemplo de Ropa y Complementos Á Coruña")
        link = "https://oncall.example/ack/" + "t" * 60
        text = pagetext.page_text(inc, shop, madrid("2026-11-28 23:10"), link, "es")
        tail = f"Responde 4a para reconocer, 4r para resolver {link}"
        assert text.sms.endswith(tail) and text.sms_tail == tail
        assert gsm7_only(text.sms), text.sms  # "á" became "a", "€" stayed (2 septets)
        assert segments(text.sms) <= 2
        assert "Tienda Ejemplo de Ropa y Complementos A Coruña #4: 12 fallos de pago" in text.sms
        assert "759,60 €" in text.sms

    def test_a_spanish_bundle(self) -> None:
        lines = ["#1 fallo de pago, pedido 1001, 37,98 €", "#2 fallo de pago, pedido 1002, 37,98 €"]
        head = pagetext.bundle_head(2, "Tienda Ejemplo", 3, "es")
        assert head == "Tienda Ejemplo: 2 incidentes (siguen 3 más)"
        body = pagetext.bundle_body(head, lines, "https://x/ack/t", "es")
        assert body.endswith("Reconocer / Resolver / Aplazar 30m, los 2: https://x/ack/t")
        sms = pagetext.bundle_sms("Tienda Ejemplo", lines, "https://x/ack/t", "es")
        assert sms.sms.endswith("2 incidentes, reconocer/resolver todos: https://x/ack/t")
        assert pagetext.bundle_settled(2, "Resuelto por Ana", "es").startswith("Los 2 incidentes")


# -- through the real paths ----------------------------------------------------------------


class TestASpanishPersonReadsSpanish:
    async def test_telegram_page_buttons_and_the_edit_after_her_ack(self, shop: PagingShop) -> None:
        incident = await paged_for_18990(shop)
        [page] = shop.telegram.sent()
        assert page.params["chat_id"] == str(ANA.telegram)
        text = page.params["text"]
        assert f"Tienda Ejemplo — incidente {incident}" in text
        assert "1 fallo de pago desde las 23:10, 189,90 €" in text
        assert "Clientes: Laura Pérez (laurapérez@example.com)" in text or "Clientes: Laura Pérez" in text
        assert "Esperando 5 min." in text
        buttons = json.loads(page.params["reply_markup"])["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["Reconocer", "Resolver", "Aplazar 30m"]
        assert [b["callback_data"] for b in buttons] == [
            f"ack:{incident}",
            f"resolve:{incident}",
            f"snooze:{incident}",
        ]

        shop.now = madrid("2026-11-28 23:16")
        await shop.press(ANA.telegram or 0, f"ack:{incident}")
        said = f"Reconocido por Ana García a las 23:16 (incidente {incident})"
        assert shop.telegram.called("answerCallbackQuery")[-1].params["text"] == said
        [edit] = shop.telegram.called("editMessageText")
        assert edit.params["text"] == said
        [slack_edit] = shop.slack.called("chat.update")
        assert slack_edit.params["text"] == said
        # The timeline stays the product's record, in English.
        assert any(
            "acknowledged by Ana García via telegram" in line for line in await shop.timeline(incident)
        )

    async def test_slack_page_and_buttons(self, shop: PagingShop) -> None:
        incident = await paged_for_18990(shop)
        [page] = shop.slack.posted()
        text = " ".join(b["text"]["text"] for b in page.params["blocks"] if b["type"] == "section")
        assert "1 fallo de pago desde las 23:10, 189,90 €" in text
        actions = next(b for b in page.params["blocks"] if b["type"] == "actions")["elements"]
        assert [a["text"]["text"] for a in actions] == ["Reconocer", "Resolver", "Aplazar 30m"]
        assert [a["action_id"] for a in actions] == [
            f"ack:{incident}",
            f"resolve:{incident}",
            f"snooze:{incident}",
        ]

    async def test_sms_page_reply_and_help(self, shop: PagingShop) -> None:
        incident = await paged_for_18990(shop)
        await shop.at("2026-11-28 23:25")
        [sms] = shop.twilio.sent()
        body = sms.params["Body"]
        assert sms.params["To"] == ANA.phone
        assert f"Tienda Ejemplo #{incident}: 1 fallo de pago desde las 23:10, 189,90 €." in body
        assert re.search(
            rf"Responde {incident}a para reconocer, {incident}r para resolver https://oncall\.example/ack/\S+$",
            body,
        )
        assert gsm7_only(body) and segments(body) <= 2

        help_text = await shop.sms_reply(ANA.phone or "", "hola")
        assert "responde 1a para reconocer el incidente 1" in help_text.text
        said = re.search(r"<Message>(.*)</Message>", help_text.text)
        assert said and gsm7_only(said.group(1)) and segments(said.group(1)) == 1

        shop.now = madrid("2026-11-28 23:26")
        reply = await shop.sms_reply(ANA.phone or "", f"{incident}a")
        assert f"Reconocido por Ana Garcia a las 23:26 (incidente {incident})" in reply.text  # GSM-7

    async def test_the_sms_confirmation_after_an_ack_elsewhere(self, shop: PagingShop) -> None:
        incident = await paged_for_18990(shop)
        await shop.at("2026-11-28 23:25")
        shop.now = madrid("2026-11-28 23:27")
        await shop.press(ANA.telegram or 0, f"ack:{incident}")
        confirmation = shop.twilio.bodies(ANA.phone)[-1]
        assert confirmation == f"Reconocido por Ana Garcia a las 23:27 (incidente {incident})"

    async def test_oncall_answers_in_her_language_and_luis_reads_the_shops(self, shop: PagingShop) -> None:
        shop.now = madrid("2026-11-28 23:20")
        await shop.command(ANA.telegram or 0, "/oncall")
        answer = shop.telegram.sent()[-1].params["text"]
        assert "weekend: Ana García hasta el lunes 30 nov, 09:00; después Luis" in answer
        await shop.command(LUIS.telegram or 0, "/oncall")  # no language of his own: the shop's
        assert "hasta el lunes 30 nov, 09:00" in shop.telegram.sent()[-1].params["text"]
        await shop.command(MARTA.telegram or 0, "/oncall")  # English
        assert (
            "weekend: Ana García until Mon 30 Nov 09:00; next Luis" in shop.telegram.sent()[-1].params["text"]
        )
        res = await shop.slack_command(ANA.slack or "", "/oncall")
        assert "hasta el lunes 30 nov, 09:00" in res.json()["text"]
        await shop.command(ANA.telegram or 0, "/nonsense")
        assert shop.telegram.sent()[-1].params["text"].startswith("Comandos: /oncall")

    async def test_incidents_lists_them_in_her_language(self, shop: PagingShop) -> None:
        incident = await paged_for_18990(shop)
        await shop.command(ANA.telegram or 0, "/incidents")
        assert shop.telegram.sent()[-1].params["text"] == (
            f"#{incident} [activo] 1 fallo de pago desde las 23:10, 189,90 €"
        )

    async def test_strangers_are_refused_in_the_shops_language(self, shop: PagingShop) -> None:
        incident = await paged_for_18990(shop)
        refusal = "No estás en el turno de guardia de esta tienda"
        await shop.command(999, f"/ack {incident}")
        assert shop.telegram.sent()[-1].params["text"].startswith(refusal)
        res = await shop.slack_command("UNOBODY", "/oncall")
        assert res.json()["text"].startswith(refusal)
        sms = await shop.sms_reply("+34999999999", "1a")
        assert "No estas en el turno de guardia" in sms.text  # GSM-7: "á" is "a"
        assert await shop.state(incident) == "triggered"

    async def test_the_ack_page(self, shop: PagingShop) -> None:
        incident = await paged_for_18990(shop)
        link = re.search(r"https://oncall\.example(/ack/\S+)", shop.telegram.sent()[0].params["text"])
        assert link
        page = await shop.client.get(link.group(1))
        assert page.status_code == 200
        assert "<html lang=es>" in page.text and "Hola, Ana García" in page.text
        assert "1 fallo de pago desde las 23:10, 189,90 €" in page.text
        assert "activo · desde el sábado 28 nov, 23:10 (Europe/Madrid)" in page.text
        assert ">Reconocer</button>" in page.text and ">Aplazar 30m</button>" in page.text
        shop.now = madrid("2026-11-28 23:17")
        done = await shop.client.post(link.group(1), data={"verb": "ack", "incident": str(incident)})
        assert f"Reconocido por Ana García a las 23:17 (incidente {incident})" in done.text

    async def test_the_status_page_is_in_the_shops_language(self, shop: PagingShop) -> None:
        await paged_for_18990(shop)
        page = await shop.client.get("/", headers={"Authorization": "Bearer admin-t0ken"})
        assert page.status_code == 200
        for words in ("<html lang=es>", "Tienda Ejemplo: guardias", "Quién está de guardia",
                      "Incidentes abiertos", "De guardia ahora", "1 fallo de pago desde las 23:10, 189,90 €",
                      "Historial", "Las últimas 8 semanas", "Incidentes por semana"):  # fmt: skip
            assert words in page.text, words
        refused = await shop.client.get("/")
        assert refused.status_code == 401
        assert "Entra con el token de administración (ONCALL_ADMIN_TOKEN)." in refused.text
        assert "<button type=submit>Entrar</button>" in refused.text


async def test_a_spanish_bundle_through_telegram(tmp_path: Path) -> None:
    """Three urgent tickets at once page Ana as one Telegram message: its head, its lines, its
    buttons and the answer to "Reconocer todos" are Spanish."""
    async with open_shop(tmp_path, shop_config(people=SPANISH), bundle_window=WINDOW) as shop:
        for n in range(3):
            t = event("ticket_created", madrid("2026-11-28 23:10"), source="zendesk", amount=None)
            await shop.receive(replace(t, ticket=Ticket(str(500 + n), "urgent", "open", "Cobro doble")))
        await shop.at("2026-11-28 23:10")
        [message] = shop.telegram.sent()
        text = message.params["text"]
        assert text.startswith("Tienda Ejemplo: 3 incidentes\n\n#1 ticket 500 (urgent): Cobro doble")
        assert "Reconocer / Resolver / Aplazar 30m, los 3: https://oncall.example/ack/" in text
        rows = json.loads(message.params["reply_markup"])["inline_keyboard"]
        assert [b["text"] for b in rows[0]] == ["Reconocer #1", "Resolver #1"]
        assert [b["text"] for b in rows[-1]] == ["Reconocer todos", "Resolver todos", "Aplazar todos 30m"]
        [(_, mid)] = list(shop.telegram.texts)
        await shop.press(ANA.telegram or 0, "ack:all", message_id=mid)
        answer = shop.telegram.called("answerCallbackQuery")[-1].params["text"]
        assert answer == "3 incidentes reconocidos: #1, #2, #3"
        [edit] = shop.telegram.called("editMessageText")
        assert edit.params["text"].startswith(
            "Los 3 incidentes de este mensaje están atendidos. Último: Reconocido"
        )


class TestOthersOnTheSameShopReadEnglish:
    @pytest.mark.parametrize("language", ["en", "fr"])
    async def test_an_english_or_french_person_reads_english(self, tmp_path: Path, language: str) -> None:
        async with open_shop(tmp_path, shop_config(people=people(ana=language))) as shop:
            incident = await paged_for_18990(shop)
            [page] = shop.telegram.sent()
            assert f"Tienda Ejemplo — incident {incident}" in page.params["text"]
            assert "1 payment failure since 23:10, 189.90 EUR" in page.params["text"]
            buttons = json.loads(page.params["reply_markup"])["inline_keyboard"][0]
            assert [b["text"] for b in buttons] == ["Ack", "Resolve", "Snooze 30m"]
            shop.now = madrid("2026-11-28 23:16")
            await shop.press(ANA.telegram or 0, f"ack:{incident}")
            [edit] = shop.telegram.called("editMessageText")
            assert edit.params["text"] == f"Incident {incident} acknowledged by Ana García at 23:16"

    async def test_one_incident_paged_to_two_people_reads_in_each_ones_language(self, tmp_path: Path) -> None:
        """Ana (es) and Luis (en) paged at once for the same incident: a text each, and after
        Ana's ack each page is edited in its reader's language."""
        both = Policy(
            "weekend",
            (
                Step(
                    (Target("person", "ana"), Target("person", "luis")), ("telegram",), timedelta(minutes=10)
                ),
            ),
        )
        config = shop_config(people=people(ana="es", luis="en"), policies={"weekend": both})
        async with open_shop(tmp_path, config) as shop:
            incident = await paged_for_18990(shop)
            texts = {c.params["chat_id"]: c.params["text"] for c in shop.telegram.sent()}
            assert "1 fallo de pago desde las 23:10, 189,90 €" in texts[str(ANA.telegram)]
            assert "1 payment failure since 23:10, 189.90 EUR" in texts[str(LUIS.telegram)]
            shop.now = madrid("2026-11-28 23:16")
            await shop.press(ANA.telegram or 0, f"ack:{incident}")
            edits = {c.params["chat_id"]: c.params["text"] for c in shop.telegram.called("editMessageText")}
            assert edits == {
                str(ANA.telegram): f"Reconocido por Ana García a las 23:16 (incidente {incident})",
                str(LUIS.telegram): f"Incident {incident} acknowledged by Ana García at 23:16",
            }
