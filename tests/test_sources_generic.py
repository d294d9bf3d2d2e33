"""Generic: `X-Oncall-Signature: sha256=HEX` and SPEC §4's generic event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from oncall.cli import main
from oncall.core.models import EVENT_KINDS
from oncall.sources import SignatureError
from oncall.sources import generic as source
from oncall.sources.samples import sample
from tests.fixtures.platforms import delivered, generic_headers, load

SECRET = "generic-secret"
NOW = datetime(2026, 11, 28, 22, 10, tzinfo=UTC)


def test_the_documented_example_becomes_a_checkout_error_with_every_field() -> None:
    body = load("generic/checkout_error.json")
    event = delivered(source, body, generic_headers(body, SECRET), [SECRET.encode()], NOW)
    assert (event.kind, event.dedup_key, event.summary, event.severity) == (
        "checkout_error", "sentry-4f1c2a", "Checkout returns 500", "high",
    )  # fmt: skip
    assert event.occurred_at == datetime(2026, 11, 28, 22, 10, tzinfo=UTC)
    assert event.tags == ("storefront", "payments")
    assert (event.order.amount, event.customer.language, event.ticket.id) == (189.9, "es", None)


def test_without_an_id_the_body_hash_is_the_dedup_key_so_an_identical_resend_is_a_duplicate() -> None:
    body = load("generic/minimal.json")
    a = source.normalise(json.loads(body), received_at=NOW, body=body)
    b = source.normalise(json.loads(body), received_at=NOW, body=body)
    assert a.dedup_key == b.dedup_key and a.dedup_key.startswith("sha256:")
    assert (a.kind, a.summary) == ("payment_failed", "payment failed")


def test_an_unknown_kind_is_kept_as_unrecognised_with_the_given_kind() -> None:
    event = source.normalise({"kind": "stock_out"}, received_at=NOW, body=b'{"kind": "stock_out"}')
    assert (event.kind, event.external_type) == ("unrecognised", "stock_out")


@pytest.mark.parametrize("header", ["", "sha256=", "md5=abc", "sha256=00ff"])
def test_bad_signatures_are_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        source.verify({"x-oncall-signature": header} if header else {}, b"{}", [SECRET.encode()], NOW)


@pytest.mark.parametrize("kind", [k for k in EVENT_KINDS if k != "unrecognised"])
def test_oncall_trigger_has_a_realistic_generic_sample_of_every_kind(kind: str) -> None:
    body, _ = sample("generic", kind, NOW)
    event = delivered(source, body, source.sign(body, SECRET.encode(), NOW), [SECRET.encode()], NOW)
    assert event.kind == kind and event.summary != kind.replace("_", " ")
    assert event.customer.email and event.order.number == "1042"
    if kind.startswith("ticket_"):
        assert event.ticket.id and event.ticket.status in ("open", "solved")


def test_an_unknown_kind_for_trigger_lists_the_kinds_of_that_source(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["trigger", "generic", "refund"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no generic sample of kind 'refund' (known: ")
    assert all(k in err for k in EVENT_KINDS if k != "unrecognised")
