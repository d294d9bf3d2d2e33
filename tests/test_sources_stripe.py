"""Stripe: signatures as the official library makes them; events as Stripe documents them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from oncall.core.models import Event
from oncall.sources import SignatureError
from oncall.sources import stripe as source
from tests.fixtures.platforms import load, lower, stripe_headers

SECRET = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"
NOW = datetime(2026, 11, 28, 22, 10, tzinfo=UTC)
T = int(NOW.timestamp())


class TestVerify:
    body = load("stripe/payment_intent.payment_failed.json")

    def test_a_delivery_signed_by_the_stripe_library_is_genuine(self) -> None:
        source.verify(lower(stripe_headers(self.body, SECRET, T)), self.body, [SECRET.encode()], NOW)

    def test_any_configured_secret_and_any_v1_signature_is_enough_while_secrets_roll(self) -> None:
        old = stripe_headers(self.body, "whsec_old", T)["Stripe-Signature"]
        new = stripe_headers(self.body, SECRET, T)["Stripe-Signature"]
        both = f"{old},v1={new.split('v1=')[1]}"
        source.verify({"stripe-signature": both}, self.body, [b"whsec_other", SECRET.encode()], NOW)

    @pytest.mark.parametrize(
        ("age", "ok"), [(0, True), (299, True), (-299, True), (301, False), (3600, False), (-301, False)]
    )
    def test_a_delivery_is_accepted_within_five_minutes_of_its_timestamp(self, age: int, ok: bool) -> None:
        headers = lower(stripe_headers(self.body, SECRET, T - age))
        if ok:
            source.verify(headers, self.body, [SECRET.encode()], NOW)
        else:
            with pytest.raises(SignatureError, match="tolerance 300s"):
                source.verify(headers, self.body, [SECRET.encode()], NOW)

    @pytest.mark.parametrize(
        ("headers", "message"),
        [
            ({}, "missing Stripe-Signature"),
            ({"stripe-signature": "v1=abc"}, "malformed"),
            ({"stripe-signature": f"t={T},v0=abc"}, "malformed"),
            ({"stripe-signature": f"t={T},v1=00"}, "does not match"),
        ],
    )
    def test_missing_malformed_or_forged_signatures_are_refused(
        self, headers: dict[str, str], message: str
    ) -> None:
        with pytest.raises(SignatureError, match=message):
            source.verify(headers, self.body, [SECRET.encode()], NOW)

    def test_a_changed_body_is_refused(self) -> None:
        headers = lower(stripe_headers(self.body, SECRET, T))
        with pytest.raises(SignatureError):
            source.verify(headers, self.body.replace(b"18990", b"1899"), [SECRET.encode()], NOW)

    def test_no_configured_secret_refuses_everything(self) -> None:
        with pytest.raises(SignatureError, match="ONCALL_STRIPE_SECRET"):
            source.verify(lower(stripe_headers(self.body, SECRET, T)), self.body, [], NOW)

    def test_sign_makes_what_the_stripe_library_accepts(self) -> None:
        import stripe

        headers = source.sign(self.body, SECRET.encode(), datetime.now(UTC))
        assert stripe.WebhookSignature.verify_header(self.body, headers["Stripe-Signature"], SECRET, 300)


def normalise(name: str) -> Event:
    body = load(f"stripe/{name}.json")
    return source.normalise(json.loads(body), {}, received_at=NOW, body=body)


class TestNormalise:
    def test_a_failed_payment_intent_names_the_customer_the_order_and_the_reason(self) -> None:
        event = normalise("payment_intent.payment_failed")
        assert event.kind == "payment_failed"
        assert event.dedup_key == "evt_3QAbCdLkdIwHu7ix1Xe0fK9s"
        assert event.external_type == "payment_intent.payment_failed"
        assert (event.customer.name, event.customer.email, event.customer.phone) == (
            "Lucía Fernández",
            "lucia.fernandez@example.com",
            "+34611222333",
        )
        assert (event.order.id, event.order.number, event.order.amount, event.order.currency) == (
            "1042", "1042", 189.90, "EUR",
        )  # fmt: skip
        assert event.occurred_at == datetime.fromtimestamp(1764368400, UTC)
        assert event.summary == (
            "Stripe payment failed, 189.90 EUR, order 1042, lucia.fernandez@example.com, "
            "Your card has insufficient funds."
        )

    @pytest.mark.parametrize(
        ("name", "kind", "email", "order_number", "amount"),
        [
            ("charge.failed", "payment_failed", "lucia.fernandez@example.com", "1042", 189.90),
            ("charge.succeeded", "payment_succeeded", "lucia.fernandez@example.com", "1042", 189.90),
            ("invoice.payment_failed", "payment_failed", "marta.ruiz@example.com", "SUB-88", 29.00),
            (
                "checkout.session.async_payment_failed",
                "payment_failed",
                "jordi.puig@example.com",
                "1043",
                45.50,
            ),
            ("checkout.session.completed", "payment_succeeded", "jordi.puig@example.com", "1043", 45.50),
            ("charge.dispute.created", "dispute_opened", "lucia.fernandez@example.com", "1042", 189.90),
            ("customer.created", "unrecognised", None, None, None),
        ],
    )
    def test_event_types_map_to_kinds_with_customer_and_order(
        self, name: str, kind: str, email: str | None, order_number: str | None, amount: float | None
    ) -> None:
        event = normalise(name)
        assert (event.kind, event.customer.email, event.order.number, event.order.amount) == (
            kind, email, order_number, amount,
        )  # fmt: skip

    def test_a_checkout_session_takes_its_order_from_client_reference_id_and_its_language_from_locale(
        self,
    ) -> None:
        event = normalise("checkout.session.async_payment_failed")
        assert (event.order.id, event.customer.name, event.customer.language) == ("1043", "Jordi Puig", "ca")
        # The order number reaches the page and the customer's {order_number}.
        assert event.summary == "Stripe payment failed, 45.50 EUR, order 1043, jordi.puig@example.com"

    def test_zero_decimal_currencies_are_not_divided(self) -> None:
        payload = {
            "id": "evt_1",
            "type": "charge.failed",
            "data": {"object": {"amount": 5000, "currency": "jpy"}},
        }
        event = source.normalise(payload, received_at=NOW)
        assert (event.order.amount, event.order.currency) == (5000, "JPY")
        assert event.summary == "Stripe payment failed, 5000 JPY"  # not "5000.00 JPY"

    def test_a_dispute_as_stripe_documents_it_names_its_charge(self) -> None:
        # The documented dispute has empty metadata and null evidence: no order, no customer.
        event = normalise("charge.dispute.created.documented")
        assert (event.kind, event.order.amount, event.order.currency) == ("dispute_opened", 189.90, "EUR")
        assert (
            event.summary == "Stripe dispute opened, 189.90 EUR, charge ch_3QAbCdLkdIwHu7ix1rN4u0Vb, general"
        )

    @pytest.mark.parametrize(
        ("minor", "currency", "amount"),
        [(5120, "kwd", 5.12), (18990, "bhd", 18.99), (12340, "jod", 12.34), (18990, "eur", 189.90)],
    )
    def test_three_decimal_currencies_are_thousandths(self, minor: int, currency: str, amount: float) -> None:
        # docs.stripe.com/currencies: "5.124 KWD must be rounded to 5120 or 5130".
        payload = {
            "id": "evt_3",
            "type": "payment_intent.payment_failed",
            "data": {"object": {"object": "payment_intent", "amount": minor, "currency": currency}},
        }
        event = source.normalise(payload, received_at=NOW)
        assert (event.order.amount, event.order.currency) == (amount, currency.upper())

    def test_an_event_without_data_is_still_an_event(self) -> None:
        event = source.normalise({"id": "evt_2", "type": "payment_intent.payment_failed"}, received_at=NOW)
        assert (event.kind, event.dedup_key, event.summary) == (
            "payment_failed",
            "evt_2",
            "Stripe payment failed",
        )
