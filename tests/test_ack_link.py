"""The web ack link: signed, expiring, safe to open, acting only on POST."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall import acklinks as ack
from oncall.acktoken import AckSigner, InvalidToken, decode_ids, encode_ids
from oncall.core.models import Ticket
from oncall.settings import Settings
from oncall.store.database import Connection, StoreUnavailable, open_database
from oncall.store.secrets import load_or_create_key
from oncall.web.app import create_app
from oncall.web.inbound import first_time, help_allowed
from tests.fakes.paging_shop import PagingShop
from tests.recording import PEOPLE, event, madrid

NOW = datetime(2026, 11, 28, 22, 15, tzinfo=UTC)
SIGNER = AckSigner(b"0123456789abcdef0123456789abcdef")


class TestTokens:
    def test_a_token_names_its_incidents_and_person(self) -> None:
        claim = SIGNER.verify(SIGNER.sign((3,), "ana", NOW), NOW + timedelta(hours=1))
        assert claim.incident_ids == (3,) and claim.person_id == "ana"

    def test_it_expires(self) -> None:
        token = SIGNER.sign((3,), "ana", NOW)
        with pytest.raises(InvalidToken, match="expired"):
            SIGNER.verify(token, NOW + SIGNER.ttl)

    def test_another_key_or_any_changed_character_is_refused(self) -> None:
        token = SIGNER.sign((3,), "ana", NOW)
        with pytest.raises(InvalidToken):
            AckSigner(b"another key, 32 bytes long......").verify(token, NOW)
        body, sig = token.split(".")
        forged_body = AckSigner(b"x" * 32).sign((4,), "ana", NOW).split(".")[0]
        for bad in (f"{forged_body}.{sig}", f"{body}.{sig[:-1]}A", "nonsense", "", "a.b.c"):
            with pytest.raises(InvalidToken):
                SIGNER.verify(bad, NOW)

    def test_only_the_canonical_spelling_of_a_token_is_accepted(self) -> None:
        token = SIGNER.sign((3,), "ana", NOW)
        body, _, mac = token.partition(".")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(mac[-1])
        # The MAC's last character carries 2 bits; base64 ignores its low 4, so its twins
        # decode to the same bytes (what a lenient decoder accepted as the same token).
        twins = [c for i, c in enumerate(alphabet) if i >> 4 == last >> 4 and i != last]
        assert len(twins) == 15
        for twin in twins:
            respelled = f"{body}.{mac[:-1]}{twin}"
            assert base64.urlsafe_b64decode(respelled.split(".")[1] + "==") == base64.urlsafe_b64decode(
                mac + "=="
            )
            with pytest.raises(InvalidToken, match="malformed"):
                SIGNER.verify(respelled, NOW)
        for padded in (f"{token}=", f"{token}==", f"{body}=.{mac}", f"{body}.{mac}=="):
            with pytest.raises(InvalidToken, match="malformed"):
                SIGNER.verify(padded, NOW)
        for stray in (f" {token}", f"{body}.{mac[:5]}!{mac[5:]}", token.replace(".", ".\n"), token + "é"):
            with pytest.raises(InvalidToken):
                SIGNER.verify(stray, NOW)
        assert SIGNER.verify(token, NOW).incident_ids == (3,)

    def test_a_bundle_of_fifty_keeps_the_link_short_enough_for_an_sms(self) -> None:
        url = SIGNER.url("https://oncall.example", tuple(range(2, 52)), "ana", NOW)
        assert len(url) < 90

    @settings(max_examples=80, deadline=None)
    @given(st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=60))
    def test_incident_ranges_round_trip(self, ids: list[int]) -> None:
        assert decode_ids(encode_ids(tuple(ids))) == tuple(sorted(set(ids)))


async def paged(shop: PagingShop, n: int = 1) -> list[int]:
    for i in range(n):
        ticket = Ticket(id=f"T{i}", priority="urgent")
        await shop.receive(event(at=madrid("2026-11-28 23:10"), kind="ticket_created", ticket=ticket))
    await shop.at("2026-11-28 23:10")
    return sorted(i.id for i in await shop.service.incidents())


class TestThePage:
    async def test_opening_the_link_shows_the_incident_and_changes_nothing(self, shop: PagingShop) -> None:
        [incident] = await paged(shop)
        path = "/ack/" + SIGNER_OF(shop).sign((incident,), "ana", shop.now)
        for _ in range(3):  # a link preview, a mail scanner, Ana herself
            res = await shop.client.get(path)
            assert res.status_code == 200
        assert "width=device-width" in res.text and "noindex" in res.text
        assert "Hello Ana García" in res.text
        assert f"#{incident} " in res.text
        assert "since Sat 28 Nov 23:10 (Europe/Madrid)" in res.text  # shop time, as in the page
        assert await shop.state(incident) == "triggered"

    async def test_head_answers_like_get_without_a_body_and_changes_nothing(self, shop: PagingShop) -> None:
        [incident] = await paged(shop)
        path = "/ack/" + SIGNER_OF(shop).sign((incident,), "ana", shop.now)
        res = await shop.client.head(path)  # a link previewer or mail scanner
        get = await shop.client.get(path)
        assert res.status_code == 200 and res.content == b""
        assert res.headers["content-type"] == get.headers["content-type"]
        assert res.headers["cache-control"] == "no-store"
        assert (await shop.client.head("/ack/forged.token")).status_code == 401
        assert await shop.state(incident) == "triggered"

    async def test_the_page_and_its_refusals_cannot_be_framed_or_sniffed(self, shop: PagingShop) -> None:
        [incident] = await paged(shop)
        token = SIGNER_OF(shop).sign((incident,), "ana", shop.now)
        answers = [
            await shop.client.get(f"/ack/{token}"),
            await shop.client.head(f"/ack/{token}"),
            await shop.client.post(f"/ack/{token}", data={"verb": "nonsense"}),  # 400
            await shop.client.get("/ack/forged.token"),  # 401
        ]
        assert [r.status_code for r in answers] == [200, 200, 400, 401]
        for r in answers:
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            csp = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split("; ")}
            assert csp["frame-ancestors"] == ["'none'"] and csp["default-src"] == ["'none'"]
            assert csp["style-src"] == ["'unsafe-inline'"]  # the page's one inline <style>
            assert csp["form-action"] == ["'self'"]
        assert "<style>" in answers[0].text and "<script" not in answers[0].text

    async def test_an_expired_link_is_401_and_says_so(self, shop: PagingShop) -> None:
        [incident] = await paged(shop)
        token = SIGNER_OF(shop).sign((incident,), "ana", shop.now - timedelta(days=4))
        res = await shop.client.post(f"/ack/{token}", data={"verb": "ack"})
        assert res.status_code == 401 and "expired" in res.text
        assert await shop.state(incident) == "triggered"

    async def test_a_link_acts_only_on_its_own_incidents(self, shop: PagingShop) -> None:
        first, second = await paged(shop, 2)
        path = "/ack/" + SIGNER_OF(shop).sign((first,), "ana", shop.now)
        res = await shop.client.post(path, data={"verb": "resolve", "incident": str(second)})
        assert res.status_code == 400
        assert await shop.state(second) == "triggered"

    async def test_a_bundle_link_acknowledges_all_its_incidents_at_once(self, shop: PagingShop) -> None:
        ids = await paged(shop, 3)
        path = "/ack/" + SIGNER_OF(shop).sign(tuple(ids), "luis", shop.now)
        res = await shop.client.post(path, data={"verb": "ack"})
        assert res.status_code == 200
        assert res.text.count("acknowledged by Luis") == 3
        assert [await shop.state(i) for i in ids] == ["acknowledged"] * 3

    async def test_snooze_from_the_page(self, shop: PagingShop) -> None:
        [incident] = await paged(shop)
        await shop.at("2026-11-28 23:11")
        path = "/ack/" + SIGNER_OF(shop).sign((incident,), "ana", shop.now)
        res = await shop.client.post(path, data={"verb": "snooze", "incident": str(incident)})
        assert f"Incident {incident} snoozed by Ana García until 23:41" in res.text

    async def test_a_person_no_longer_on_the_rota_is_refused(self, shop: PagingShop) -> None:
        [incident] = await paged(shop)
        path = "/ack/" + SIGNER_OF(shop).sign((incident,), "former-employee", shop.now)
        res = await shop.client.post(path, data={"verb": "ack"})
        assert res.status_code == 401
        assert await shop.state(incident) == "triggered"


class TestTheKeyWhenTheDatabaseIsDownAtStart:
    """`oncall serve` started while the database was unreachable: links sent once it is back
    must still work after the next restart (they are signed with the shared key)."""

    async def test_the_key_is_loaded_in_the_background_once_the_database_is_back(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = f"sqlite:///{tmp_path / 'oncall.db'}"
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        app, after_restart = create_app(settings), create_app(settings)
        db = app.state.db
        await asyncio.to_thread(db.migrate)
        down = [3]  # the first three transactions find the database unreachable
        real = db.transaction

        async def flaky(fn: Callable[[Connection], object], **kw: bool) -> object:
            if down[0] > 0:
                down[0] -= 1
                raise StoreUnavailable("could not connect to the database")
            return await real(fn, **kw)

        monkeypatch.setattr(db, "transaction", flaky)
        monkeypatch.setattr(ack, "RETRY_FIRST", 0.01)
        monkeypatch.setattr(ack, "RETRY_MAX", 0.02)
        ack.set_signer(None)
        try:
            await ack.load_signer(app)
            for _ in range(300):
                if down[0] == 0 and app.state.ack_key_loader.done():
                    break
                await asyncio.sleep(0.01)
            link = ack.ack_link(settings, PEOPLE["ana"], (7,))
            ack.set_signer(None)  # oncall restarts, the database is up
            await ack.load_signer(after_restart)
            token = link.rpartition("/ack/")[2]
            assert ack.verify(token, datetime.now(UTC)).incident_ids == (7,)
        finally:
            await ack._stop_loading(app)
            await db.aclose()
            await after_restart.state.db.aclose()
            ack.set_signer(None)

    async def test_a_page_sent_before_the_background_retry_carries_the_shared_key(
        self, shop: PagingShop
    ) -> None:
        ack.set_signer(None, lambda: shop.now)  # not loaded at start; the retry not yet due
        await paged(shop)
        [page] = shop.telegram.sent()
        m = re.search(r"/ack/([A-Za-z0-9_\-.]+)", page.params["text"])
        assert m, page.params["text"]
        key = await shop.db.transaction(lambda c: load_or_create_key(c, NOW))
        assert AckSigner(key).verify(m.group(1), shop.now)  # what the next start will check

    async def test_a_link_signed_before_the_key_loaded_keeps_working(self, shop: PagingShop) -> None:
        [incident] = await paged(shop)
        ack.set_signer(None, lambda: shop.now)
        early = ack.signer().sign((incident,), "ana", shop.now)  # the temporary key
        assert await ack.load_key(shop.db)
        assert ack.signer().sign((incident,), "ana", shop.now) != early
        res = await shop.client.get(f"/ack/{early}")
        assert res.status_code == 200 and f"#{incident} " in res.text


def SIGNER_OF(shop: PagingShop) -> AckSigner:
    """The key the running app signs its links with (loaded from its database)."""
    from oncall import acklinks as ack

    return ack.signer()


class TestTheStore:
    async def test_the_key_is_made_once_and_shared_by_every_instance(self, db_url: str) -> None:
        one, two = open_database(db_url), open_database(db_url)
        try:
            await asyncio.to_thread(one.migrate)
            keys = await asyncio.gather(
                one.transaction(lambda c: load_or_create_key(c, NOW)),
                two.transaction(lambda c: load_or_create_key(c, NOW)),
            )
            again = await one.transaction(lambda c: load_or_create_key(c, NOW))
            assert keys[0] == keys[1] == again and len(again) == 32
        finally:
            await one.aclose()
            await two.aclose()

    async def test_an_inbound_delivery_is_new_once(self, db_url: str) -> None:
        db = open_database(db_url)
        try:
            await asyncio.to_thread(db.migrate)
            assert await first_time(db, "telegram", "42", NOW)
            assert not await first_time(db, "telegram", "42", NOW)
            assert await first_time(db, "twilio", "42", NOW)
        finally:
            await db.aclose()

    async def test_help_texts_are_limited_per_number_and_hour(self, db_url: str) -> None:
        db = open_database(db_url)
        try:
            await asyncio.to_thread(db.migrate)
            got = [await help_allowed(db, "+34600111222", NOW + timedelta(minutes=i)) for i in range(5)]
            assert got == [True, True, True, False, False]
            assert await help_allowed(db, "+34600999999", NOW)
            assert await help_allowed(db, "+34600111222", NOW + timedelta(minutes=61))
        finally:
            await db.aclose()
