"""Public replies on Zendesk and Freshdesk tickets, against local fake helpdesk APIs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from oncall.channels.helpdesk import HelpdeskReplier, retry_after_seconds
from oncall.settings import Settings
from tests.fakes.helpdesk import FakeFreshdesk, FakeZendesk, TicketReply

TEXT = "Hola Laura, hemos recibido tu consulta.\n\nTienda Ejemplo"


def replier(
    zendesk: FakeZendesk | None = None, freshdesk: FakeFreshdesk | None = None, **kw: object
) -> HelpdeskReplier:
    values: dict[str, object] = {}
    if zendesk is not None:
        values.update(zendesk_url=zendesk.url + "/", zendesk_email="soporte@tienda.example",
                      zendesk_api_token=SecretStr("zd-token"))  # fmt: skip
    if freshdesk is not None:
        values.update(freshdesk_url=freshdesk.url, freshdesk_api_key=SecretStr("fd-key"))
    values.update(kw)
    return HelpdeskReplier(Settings.model_validate(values), timeout=2.0)


class TestZendesk:
    async def test_a_public_comment_on_the_ticket(self, zendesk: FakeZendesk) -> None:
        got = await replier(zendesk).reply("zendesk", "4321", TEXT)
        assert (got.ok, got.ref) == (True, "zendesk:4321")
        assert zendesk.replies() == [TicketReply("4321", TEXT, public=True)]
        [call] = zendesk.calls
        assert (call.method, call.path) == ("PUT", "/api/v2/tickets/4321.json")

    async def test_wrong_token_is_a_permanent_failure(self, zendesk: FakeZendesk) -> None:
        got = await replier(zendesk, zendesk_api_token=SecretStr("wrong")).reply("zendesk", "4321", TEXT)
        assert (got.ok, got.retryable) == (False, False)
        assert got.error == "zendesk: HTTP 401 Couldn't authenticate you"
        assert "wrong" not in (got.error or "")

    async def test_a_missing_ticket_is_a_permanent_failure(self, zendesk: FakeZendesk) -> None:
        zendesk.missing.add("9")
        got = await replier(zendesk).reply("zendesk", "9", TEXT)
        assert (got.ok, got.retryable, got.error) == (False, False, "zendesk: HTTP 404 Not found")

    async def test_an_outage_is_retryable(self, zendesk: FakeZendesk) -> None:
        zendesk.fail("500")
        got = await replier(zendesk).reply("zendesk", "4321", TEXT)
        assert (got.ok, got.retryable) == (False, True)

    async def test_a_rate_limit_says_when_to_retry(self, zendesk: FakeZendesk) -> None:
        zendesk.fail("429", retry_after=7)
        got = await replier(zendesk).reply("zendesk", "4321", TEXT)
        assert (got.ok, got.retryable, got.retry_after) == (False, True, 7.0)

    async def test_a_hanging_helpdesk_times_out_retryably(self, zendesk: FakeZendesk) -> None:
        zendesk.fail("hang")
        r = replier(zendesk)
        r.timeout = 0.3
        got = await r.reply("zendesk", "4321", TEXT)
        assert (got.ok, got.retryable, got.error) == (False, True, "zendesk: timed out after 0.3 s")

    async def test_a_ticket_id_that_is_not_a_number_never_reaches_the_url(self, zendesk: FakeZendesk) -> None:
        got = await replier(zendesk).reply("zendesk", "../users/1", TEXT)
        assert not got.ok and zendesk.calls == []


class TestFreshdesk:
    async def test_a_reply_on_the_ticket(self, freshdesk: FakeFreshdesk) -> None:
        got = await replier(freshdesk=freshdesk).reply("freshdesk", "77", TEXT)
        assert (got.ok, got.ref) == (True, "freshdesk:77")
        assert freshdesk.replies() == [
            TicketReply("77", "<p>Hola Laura, hemos recibido tu consulta.</p><p>Tienda Ejemplo</p>", True)
        ]
        [call] = freshdesk.calls
        assert (call.method, call.path) == ("POST", "/api/v2/tickets/77/reply")

    async def test_wrong_key_is_a_permanent_failure(self, freshdesk: FakeFreshdesk) -> None:
        got = await replier(freshdesk=freshdesk, freshdesk_api_key=SecretStr("nope")).reply(
            "freshdesk", "77", TEXT
        )
        assert (got.ok, got.retryable) == (False, False)

    async def test_an_outage_is_retryable(self, freshdesk: FakeFreshdesk) -> None:
        freshdesk.down = "500"
        got = await replier(freshdesk=freshdesk).reply("freshdesk", "77", TEXT)
        assert (got.ok, got.retryable) == (False, True)


class TestConfiguration:
    def test_off_without_url_or_credentials(self) -> None:
        r = HelpdeskReplier(Settings.model_validate({"zendesk_url": "https://x.zendesk.com"}))
        assert (r.configured("zendesk"), r.configured("freshdesk"), r.configured("osticket")) == (
            False,
            False,
            False,
        )

    async def test_an_unconfigured_helpdesk_is_not_called(self) -> None:
        got = await HelpdeskReplier(Settings.model_validate({})).reply("zendesk", "1", TEXT)
        assert (got.ok, got.error) == (False, "zendesk: not configured")


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [("7", 7.0), ("0.5", 0.5), (None, None), ("soon", None), ("Sat, 28 Nov 2026 23:15:30 GMT", 30.0)],
    )
    def test_seconds_or_http_date(self, value: str | None, expected: float | None) -> None:
        assert retry_after_seconds(value, now=datetime(2026, 11, 28, 23, 15, tzinfo=UTC)) == expected
