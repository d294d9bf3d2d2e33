"""The weekend story with a phone call (issue 12): a payment fails on Saturday night; Ana is
paged by Telegram at 23:15 and does not answer; at 23:25 the next step calls her; she presses 1;
the incident is acknowledged by her, her Telegram page is edited to say so, and every message
said it in her language: the page, the call, the edit ("Reconocido por Ana García a las
23:26"). The same night for a person who reads English is English throughout."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from oncall.core.models import Person, Policy, Step, Target
from tests.fakes.paging_shop import open_shop
from tests.recording import PEOPLE, event, madrid, shop_config

STORY = Policy(
    "weekend",
    (
        Step((Target("rota", "weekend"),), ("telegram",), timedelta(minutes=10)),
        Step((Target("rota", "weekend"),), ("voice",), timedelta(minutes=10)),
        Step((Target("rota", "weekend-backup"),), ("telegram",), timedelta(minutes=15)),
    ),
)

ANA = Person("ana", "Ana García", phone="+34600111222", telegram=111, language="es")
ANN = Person("ana", "Ann Green", phone="+44700111222", telegram=111, language="en")


@pytest.mark.parametrize(
    ("person", "page_says", "heard", "acknowledged", "edit_says"),
    [
        (
            ANA,
            "Tienda Ejemplo — incidente 1",
            "Aquí oncall, de Tienda Ejemplo: un pago fallido, desde las 23:10. 189,90 € en total."
            " Pulsa 1 para reconocer",
            "Reconocido. Gracias.",
            "Reconocido por Ana García a las 23:26",
        ),
        (
            ANN,
            "Tienda Ejemplo — incident 1",
            "This is oncall for Tienda Ejemplo: a payment failure, since 23:10. €189.90 in total."
            " Press 1 to acknowledge",
            "Acknowledged. Thank you.",
            "Incident 1 acknowledged by Ann Green at 23:26",
        ),
    ],
    ids=["es", "en"],
)
async def test_telegram_then_a_call_she_presses_1(
    tmp_path: Path, person: Person, page_says: str, heard: str, acknowledged: str, edit_says: str
) -> None:
    config = shop_config(policies={"weekend": STORY}, people={**PEOPLE, "ana": person})
    async with open_shop(tmp_path, config) as shop:
        await shop.receive(event(at=madrid("2026-11-28 23:10"), amount=189.90))
        await shop.at("2026-11-28 23:10")
        await shop.at("2026-11-28 23:15")
        [incident] = [i.id for i in await shop.service.incidents()]
        [page] = [c for c in shop.telegram.sent() if c.params["chat_id"] == "111"]
        assert str(page.params["text"]).startswith(page_says)
        assert shop.twilio.placed == []  # Telegram first; no answer for 10 minutes…

        await shop.at("2026-11-28 23:25")  # …so the next step calls her
        call = shop.twilio.call_to(person.phone or "")
        shop.now = madrid("2026-11-28 23:26")
        await shop.twilio.pick_up(shop.client, call, press="1")
        await shop.service.drain()

        said = call.said()
        assert said.startswith(heard)
        assert said.endswith(acknowledged)
        assert await shop.state(incident) == "acknowledged"
        assert f"acknowledged by {person.name} via voice" in await shop.timeline(incident)
        [edit] = shop.telegram.called("editMessageText")  # her Telegram page says who and when
        assert edit.params["chat_id"] == page.params["chat_id"] == "111"
        assert edit_says in str(edit.params["text"])
        await shop.at("2026-11-28 23:40")  # acknowledged: the backup step never comes
        assert [c.params["chat_id"] for c in shop.telegram.sent()] == ["111"]
        assert len(shop.twilio.placed) == 1
