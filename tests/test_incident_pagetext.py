"""What a page says, on rich channels and by SMS (SPEC §5)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.core.gsm7 import segments, to_gsm7
from oncall.core.incident import Incident, Joined, make_world, open_incident, step
from oncall.core.models import Customer, Ticket
from oncall.core.pagetext import LINE_MAX, bundle_head, bundle_sms, page_text, sms_fit
from tests.recording import RULES, event, madrid, shop_config

CONFIG = shop_config()
WORLD = make_world(CONFIG)
SHOP = CONFIG.rules.shop
LINK = "http://localhost:8000/ack/eyJpIjozfQ.abcdefghijklmnopqrstuvwxyz012345"


def three_failures() -> Incident:
    first = event(at=madrid("2026-11-28 22:41"), customer="Lucía Pérez", amount=59.90)
    inc = open_incident(3, RULES[0], "kind=payment_failed", first, first.received_at, WORLD).incident
    for at, who, amount in [("22:43", "Jordi Puig", 100.00), ("22:44", "Lucía Pérez", 30.00)]:
        ev = event(at=madrid(f"2026-11-28 {at}"), customer=who, amount=amount)
        inc = step(inc, Joined(ev), ev.received_at, WORLD).incident
    return inc


class TestThePage:
    def test_it_says_what_how_many_since_when_and_how_much(self) -> None:
        text = page_text(three_failures(), SHOP, madrid("2026-11-28 22:46"), LINK)
        assert text.title == "Tienda Ejemplo: 3 payment failures since 22:41"
        assert "3 payment failures since 22:41, 189.90 EUR" in text.body

    def test_amounts_have_their_currencys_decimals(self) -> None:
        yen = event(at=madrid("2026-11-28 22:41"), amount=5000.0)
        yen = replace(yen, order=replace(yen.order, currency="JPY"))
        inc = open_incident(5, RULES[0], "kind=payment_failed", yen, yen.received_at, WORLD).incident
        dinar = event(at=madrid("2026-11-28 22:42"), amount=5.12)
        dinar = replace(dinar, order=replace(dinar.order, currency="KWD"))
        inc = step(inc, Joined(dinar), dinar.received_at, WORLD).incident
        text = page_text(inc, SHOP, madrid("2026-11-28 22:46"), LINK)
        assert "2 payment failures since 22:41, 5000 JPY + 5.120 KWD" in text.body

    def test_it_names_each_customer_once_and_how_long_it_has_waited(self) -> None:
        text = page_text(three_failures(), SHOP, madrid("2026-11-28 23:46"), LINK)
        assert (
            "Customers: Lucía Pérez (lucaprez@example.com), Jordi Puig (jordipuig@example.com)" in text.body
        )
        assert "Waiting 1 h 05 min" in text.body

    def test_it_carries_the_actions_and_the_ack_link(self) -> None:
        text = page_text(three_failures(), SHOP, madrid("2026-11-28 22:46"), LINK)
        assert f"Ack / Resolve / Snooze 30m: {LINK}" in text.body

    def test_a_single_ticket_names_itself(self) -> None:
        t = event("ticket_created", madrid("2026-11-28 23:10"), amount=None, source="zendesk")
        t = replace(t, ticket=Ticket("4521", "urgent", "open", "No puedo pagar"), customer=Customer("Ana"))
        inc = open_incident(4, RULES[1], "ticket=4521", t, t.received_at, WORLD).incident
        text = page_text(inc, SHOP, madrid("2026-11-28 23:12"), LINK)
        assert text.title == "Tienda Ejemplo: ticket 4521 (urgent): No puedo pagar since 23:10"


class TestTheSms:
    def test_it_ends_with_the_reply_codes_and_the_link_in_gsm7_within_two_segments(self) -> None:
        sms = page_text(three_failures(), SHOP, madrid("2026-11-28 22:46"), LINK).sms
        assert sms.endswith(f"Reply 3a to ack, 3r to resolve {LINK}")
        assert sms.startswith("Tienda Ejemplo #3: 3 payment failures since 22:41, 189.90 EUR.")
        assert "Lucia Pérez" in sms  # í is not GSM-7 (sent as i), é is
        assert to_gsm7(sms) == sms and segments(sms) <= 2

    @settings(max_examples=60, deadline=None)
    @given(head=st.text(max_size=600), n=st.integers(min_value=1, max_value=999))
    def test_any_text_is_cut_to_two_segments_and_never_loses_its_tail(self, head: str, n: int) -> None:
        tail = f"Reply {n}a to ack, {n}r to resolve {LINK}"
        sms = sms_fit(head, tail)
        assert sms.endswith(tail) and segments(sms) <= 2 and to_gsm7(sms) == sms

    def test_gsm7_keeps_spanish_letters_it_has_and_simplifies_the_rest(self) -> None:
        assert to_gsm7("Ñandú, Müller, café — “ok”") == 'Ñandu, Müller, café - "ok"'
        assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("€" * 80) == 1


class TestABundleLine:
    """SPEC §5: a bundle names every incident on one line: what, order or ticket, amount."""

    def test_a_payment_failure_names_its_order_and_amount(self) -> None:
        ev = event(at=madrid("2026-11-28 22:41"), order="1042", amount=189.90)
        inc = open_incident(17, RULES[0], "kind=payment_failed", ev, ev.received_at, WORLD).incident
        text = page_text(inc, SHOP, madrid("2026-11-28 22:46"), LINK)
        assert text.line == "#17 payment failure, order 1042, 189.90 EUR"

    def test_several_failures_name_their_orders_count_and_total(self) -> None:
        inc = three_failures()
        text = page_text(inc, SHOP, madrid("2026-11-28 22:46"), LINK)
        orders = [e.order.number for e in inc.events]
        assert (
            text.line
            == f"#3 3 payment failures since 22:41, orders {', '.join(map(str, orders))}, 189.90 EUR"
        )

    def test_a_ticket_names_itself_and_its_subject(self) -> None:
        t = event("ticket_created", madrid("2026-11-28 23:10"), amount=None, source="zendesk")
        t = replace(t, ticket=Ticket("4521", "urgent", "open", "No puedo pagar"))
        inc = open_incident(8, RULES[1], "ticket=4521", t, t.received_at, WORLD).incident
        assert (
            page_text(inc, SHOP, madrid("2026-11-28 23:11"), LINK).line
            == "#8 ticket 4521 (urgent): No puedo pagar"
        )

    def test_a_long_subject_keeps_the_line_to_one_phone_line_or_two(self) -> None:
        t = event("ticket_created", madrid("2026-11-28 23:10"), amount=None, source="zendesk")
        t = replace(t, ticket=Ticket("4521", "urgent", "open", "No puedo pagar\n" + "y además " * 40))
        inc = open_incident(8, RULES[1], "ticket=4521", t, t.received_at, WORLD).incident
        line = page_text(inc, SHOP, madrid("2026-11-28 23:11"), LINK).line
        assert len(line) <= LINE_MAX and "\n" not in line
        assert line.startswith("#8 ticket 4521 (urgent): No puedo pagar y además")


class TestABundle:
    def test_its_head_counts_its_incidents_and_those_that_follow(self) -> None:
        assert bundle_head(48, "Tienda Ejemplo", more=12) == "Tienda Ejemplo: 48 incidents (12 more follow)"
        assert bundle_head(3, "Tienda Ejemplo") == "Tienda Ejemplo: 3 incidents"

    def test_by_sms_it_ends_with_the_count_and_the_link_for_all_within_two_segments(self) -> None:
        lines = [f"#{i} payment failure, order {1000 + i}, 59.90 EUR" for i in range(1, 41)]
        text = bundle_sms("Tienda Ejemplo", lines, LINK)
        assert text.sms.endswith(f"40 incidents, ack/resolve all: {LINK}")
        assert text.sms.startswith("Tienda Ejemplo: #1 payment failure, order 1001, 59.90 EUR; #2")
        assert segments(to_gsm7(text.sms)) <= 2
