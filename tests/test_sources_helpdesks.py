"""Zendesk and Freshdesk: the ticket body the owner pastes (SPEC §4), as the helpdesks render it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from oncall.core.models import Event
from oncall.sources import SignatureError, freshdesk, zendesk
from tests.fixtures.platforms import delivered, freshdesk_headers, load, lower, zendesk_headers

NOW = datetime(2026, 11, 28, 22, 10, tzinfo=UTC)


class TestZendesk:
    secret = "dGhpc19zZWNyZXQ="

    def event(self, name: str, invocation: str = "8432910576") -> Event:
        body = load(f"zendesk/{name}.json")
        headers = zendesk_headers(body, self.secret, invocation)
        return delivered(zendesk, body, headers, [self.secret.encode()], NOW)

    def test_an_urgent_new_ticket_carries_its_requester_in_their_language(self) -> None:
        event = self.event("ticket_created")
        assert (event.kind, event.dedup_key) == ("ticket_created", "8432910576")
        assert (event.ticket.id, event.ticket.priority, event.ticket.status, event.ticket.subject) == (
            "35436", "urgent", "new", "No puedo pagar mi pedido 1042",
        )  # fmt: skip
        # An empty placeholder ("phone": "") is no phone; "Español" is the language's name.
        assert (event.customer.name, event.customer.phone, event.customer.language) == (
            "Lucía Fernández", None, "es",
        )  # fmt: skip

    def test_without_an_event_field_a_solved_ticket_is_an_update_and_locale_gives_the_language(self) -> None:
        event = self.event("ticket_solved_without_event")
        assert (event.kind, event.ticket.status, event.customer.language) == (
            "ticket_updated",
            "solved",
            "es",
        )

    def test_the_signature_covers_the_timestamp(self) -> None:
        body = load("zendesk/ticket_created.json")
        headers = lower(zendesk_headers(body, self.secret, "1"))
        headers["x-zendesk-webhook-signature-timestamp"] = "2026-11-28T22:12:06Z"
        with pytest.raises(SignatureError, match="does not match"):
            zendesk.verify(headers, body, [self.secret.encode()], NOW)
        del headers["x-zendesk-webhook-signature-timestamp"]
        with pytest.raises(SignatureError, match="Timestamp"):
            zendesk.verify(headers, body, [self.secret.encode()], NOW)


class TestZendeskTicketEvents:
    """A webhook subscribed to Zendesk's ticket events (not called by a trigger)."""

    def test_a_created_ticket_event_is_a_new_ticket_with_its_priority_and_subject(self) -> None:
        body = load("zendesk/event_ticket_created.json")
        event = zendesk.normalise(json.loads(body), {}, received_at=NOW, body=body)
        assert (event.kind, event.ticket.id, event.ticket.priority, event.ticket.status) == (
            "ticket_created", "35436", "urgent", "new",
        )  # fmt: skip
        assert event.ticket.subject == "No puedo pagar mi pedido 1042"
        assert event.dedup_key == "cbe4028c-7239-495d-b020-f22348516046"

    def test_a_status_change_to_solved_is_an_update(self) -> None:
        body = load("zendesk/event_status_changed.json")
        headers = {"x-zendesk-webhook-invocation-id": "8432910599"}
        event = zendesk.normalise(json.loads(body), headers, received_at=NOW, body=body)
        assert (event.kind, event.ticket.status, event.dedup_key) == (
            "ticket_updated",
            "solved",
            "8432910599",
        )


class TestFreshdesk:
    token = "fd-token-31f9"

    def event(self, name: str) -> Event:
        body = load(f"freshdesk/{name}.json")
        return delivered(
            freshdesk, body, freshdesk_headers(self.token), [b"old-token", self.token.encode()], NOW
        )

    def test_a_new_high_ticket_is_keyed_by_ticket_and_update_time(self) -> None:
        event = self.event("ticket_created")
        assert (event.kind, event.dedup_key, event.ticket.priority, event.customer.email) == (
            "ticket_created", "1187:2026-11-28T22:14:09Z", "high", "tom.baker@example.co.uk",
        )  # fmt: skip

    def test_the_classic_freshdesk_webhook_body_is_understood(self) -> None:
        event = self.event("classic_pending")
        ticket, customer = event.ticket, event.customer
        assert (event.kind, ticket.id, ticket.status, customer.name, customer.phone) == (
            "ticket_updated", "1188", "pending", "Marta Ruiz", None,
        )  # fmt: skip
        assert event.dedup_key == "1188:2026-11-28 23:30:11 +0100"

    def test_without_a_rendered_update_time_the_update_is_not_taken_for_a_duplicate(self) -> None:
        # Freshdesk has no last-modified placeholder: the text left in "updated_at" must not key
        # the delivery, or the ticket's resolution would be answered "duplicate" and lost.
        created = self.event("advanced_open_no_update_time")
        resolved = self.event("advanced_resolved_no_update_time")
        assert (created.kind, resolved.kind, resolved.ticket.status) == (
            "ticket_created", "ticket_updated", "resolved",
        )  # fmt: skip
        assert created.dedup_key != resolved.dedup_key
        assert created.dedup_key.startswith("sha256:")

    def test_a_requester_with_only_a_mobile_number_is_reachable(self) -> None:
        event = self.event("advanced_open_no_update_time")
        assert (event.customer.phone, event.customer.language) == ("+34611222333", "es")

    @pytest.mark.parametrize(
        "auth", [None, "Bearer wrong", "Basic ZmQtdG9rZW4tMzFmOQ==", "fd-token-31f9", "Bearer "]
    )
    def test_anything_but_the_configured_bearer_token_is_refused(self, auth: str | None) -> None:
        headers = {} if auth is None else {"authorization": auth}
        with pytest.raises(SignatureError):
            freshdesk.verify(headers, b"{}", [self.token.encode()], NOW)
