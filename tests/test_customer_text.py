"""Customer reassurance texts as the customer reads them (SPEC §2.1 placeholders)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oncall.core.customer_text import (
    CustomerContact,
    TextContext,
    check_messages,
    customer_message,
    next_open_text,
    pick_template,
    render,
    response_time_text,
)
from oncall.core.models import (
    BusinessHours,
    Match,
    Rule,
    RulesConfig,
    Shop,
    Target,
)
from tests.recording import MADRID

SAT_2310 = datetime(2026, 11, 28, 23, 10, tzinfo=MADRID)
MON_0900 = datetime(2026, 11, 30, 9, 0, tzinfo=MADRID)

ES = (
    "Hola {customer_name}, hemos visto que el pago de tu pedido {order_number} no se ha completado. "
    "Nuestro equipo de guardia ya está avisado y te escribirá en menos de {response_time}."
)
EN = (
    "Hi {customer_name}, we noticed the payment for order {order_number} did not go through. "
    "Our on-call team has been alerted and will contact you within {response_time}."
)


def rules_config(
    messages: dict[str, dict[str, str]] | None = None,
    rules: tuple[Rule, ...] = (),
    language: str = "es",
) -> RulesConfig:
    return RulesConfig(
        shop=Shop(
            name="Tienda Ejemplo",
            timezone=MADRID,
            language=language,
            response_time=timedelta(hours=2),
            fallback=Target("person", "owner"),
        ),
        business_hours=BusinessHours(week={}),
        policies={},
        rules=rules,
        messages=messages if messages is not None else {"payment_failed": {"es": ES, "en": EN}},
    )


def ctx(**kw: object) -> TextContext:
    base: dict[str, object] = {
        "shop_name": "Tienda Ejemplo",
        "response_time": timedelta(hours=2),
        "next_open": MON_0900,
        "customer_name": "Laura Pérez",
        "order_number": "1001",
        "ticket_id": "4321",
    }
    base.update(kw)
    return TextContext(**base)  # type: ignore[arg-type]


class TestTheSpecMessage:
    @pytest.mark.parametrize(
        ("customer", "language", "text", "subject"),
        [
            pytest.param(
                CustomerContact(name="Laura Pérez", email="laura@cliente.example", language="es",
                                order_number="1001"),
                "es",
                "Hola Laura Pérez, hemos visto que el pago de tu pedido 1001 no se ha completado. "
                "Nuestro equipo de guardia ya está avisado y te escribirá en menos de 2 horas.",
                "Tienda Ejemplo: estamos con tu pedido 1001",
                id="a Spanish customer reads the Spanish text",
            ),
            pytest.param(
                CustomerContact(name="John Smith", language="en-GB", order_number="1002"),
                "en",
                "Hi John Smith, we noticed the payment for order 1002 did not go through. "
                "Our on-call team has been alerted and will contact you within 2 hours.",
                "Tienda Ejemplo: we are on your order 1002",
                id="an English customer reads the English text",
            ),
        ],
    )  # fmt: skip
    def test_each_customer_reads_the_text_in_their_language(
        self, customer: CustomerContact, language: str, text: str, subject: str
    ) -> None:
        got = customer_message(rules_config(), "payment_failed", customer, MON_0900, SAT_2310)
        assert got is not None
        assert got.language == language
        assert got.text == text
        assert got.subject == subject

    def test_a_customer_without_a_language_gets_the_shops(self) -> None:
        got = customer_message(rules_config(), "payment_failed", CustomerContact(name="Ana"), None)
        assert got is not None and got.language == "es"

    def test_a_language_the_shop_did_not_write_falls_back_to_the_shops(self) -> None:
        got = customer_message(rules_config(), "payment_failed", CustomerContact(language="fr"), None)
        assert got is not None and got.language == "es"

    def test_an_unknown_message_renders_nothing(self) -> None:
        assert customer_message(rules_config(), "nope", CustomerContact(), None) is None


class TestUnknownName:
    @pytest.mark.parametrize(
        ("template", "language", "expected"),
        [
            ("Hola {customer_name}, gracias.", "es", "Hola, gracias."),
            ("Hi {customer_name}, thanks.", "en", "Hi, thanks."),
            ("{customer_name}, hemos visto tu pago.", "es", "Hola, hemos visto tu pago."),
            ("{customer_name}, we saw your payment.", "en", "Hello, we saw your payment."),
            ("Dear {customer_name}, thanks.", "en", "Dear customer, thanks."),
            ("Estimado {customer_name}: gracias.", "es", "Estimado cliente: gracias."),
            ("Gracias, {customer_name}. Te escribimos pronto.", "es", "Gracias. Te escribimos pronto."),
        ],
    )
    def test_a_greeting_still_reads_naturally(self, template: str, language: str, expected: str) -> None:
        assert render(template, language, ctx(customer_name=None)) == expected

    @pytest.mark.parametrize("name", ["", "   ", "laura@cliente.example"])
    def test_blank_or_email_like_names_count_as_unknown(self, name: str) -> None:
        assert render("Hola {customer_name}, gracias.", "es", ctx(customer_name=name)) == "Hola, gracias."

    def test_extra_spaces_in_a_name_are_tidied(self) -> None:
        assert render("Hi {customer_name}!", "en", ctx(customer_name="  John   Smith ")) == "Hi John Smith!"


class TestOtherPlaceholders:
    def test_shop_name_and_ticket(self) -> None:
        got = render("{shop_name} ha recibido tu consulta #{ticket_id}.", "es", ctx())
        assert got == "Tienda Ejemplo ha recibido tu consulta #4321."

    def test_an_unknown_order_number_is_left_out_with_its_space(self) -> None:
        got = render("el pago de tu pedido {order_number} no se ha completado", "es", ctx(order_number=None))
        assert got == "el pago de tu pedido no se ha completado"

    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            ("Hemos recibido tu consulta ({ticket_id}) y", "Hemos recibido tu consulta y"),
            ("Hemos recibido tu consulta #{ticket_id}.", "Hemos recibido tu consulta."),
        ],
    )
    def test_an_unknown_ticket_takes_its_brackets_or_hash_with_it(self, template: str, expected: str) -> None:
        assert render(template, "es", ctx(ticket_id=None)) == expected

    def test_literal_braces(self) -> None:
        assert render("{{hola}} {shop_name}", "es", ctx()) == "{hola} Tienda Ejemplo"

    def test_an_unknown_placeholder_never_reaches_the_customer_as_braces(self) -> None:
        assert render("Pedido {order_id} recibido.", "es", ctx()) == "Pedido recibido."

    def test_next_open_in_a_sentence(self) -> None:
        es = render("Abrimos {next_open}.", "es", ctx(), now=SAT_2310)
        en = render("We open {next_open}.", "en", ctx(), now=SAT_2310)
        assert (es, en) == ("Abrimos el lunes a las 9:00.", "We open Monday at 9:00.")


class TestResponseTime:
    @pytest.mark.parametrize(
        ("duration", "es", "en"),
        [
            (timedelta(hours=2), "2 horas", "2 hours"),
            (timedelta(hours=1), "1 hora", "1 hour"),
            (timedelta(minutes=30), "30 minutos", "30 minutes"),
            (timedelta(minutes=1), "1 minuto", "1 minute"),
            (timedelta(hours=1, minutes=30), "1 hora y 30 minutos", "1 hour and 30 minutes"),
            (timedelta(hours=24), "24 horas", "24 hours"),
            (timedelta(days=2), "2 días", "2 days"),
        ],
    )
    def test_in_words(self, duration: timedelta, es: str, en: str) -> None:
        assert (response_time_text(duration, "es"), response_time_text(duration, "en")) == (es, en)

    def test_other_languages_use_the_english_phrasing(self) -> None:
        assert response_time_text(timedelta(hours=2), "fr") == "2 hours"


class TestNextOpen:
    @pytest.mark.parametrize(
        ("when", "now", "es", "en"),
        [
            (MON_0900, SAT_2310, "el lunes a las 9:00", "Monday at 9:00"),
            (MON_0900, datetime(2026, 11, 29, 20, 0, tzinfo=MADRID), "mañana a las 9:00", "tomorrow at 9:00"),
            (
                datetime(2026, 11, 30, 16, 0, tzinfo=MADRID),
                datetime(2026, 11, 30, 14, 30, tzinfo=MADRID),
                "hoy a las 16:00",
                "today at 16:00",
            ),
            (datetime(2026, 12, 1, 13, 0, tzinfo=MADRID), None, "el martes a las 13:00", "Tuesday at 13:00"),
            (datetime(2026, 12, 1, 1, 0, tzinfo=MADRID), None, "el martes a la 1:00", "Tuesday at 1:00"),
            (
                datetime(2027, 1, 4, 9, 30, tzinfo=MADRID),
                datetime(2026, 12, 23, 20, 0, tzinfo=MADRID),
                "el lunes 4 de enero a las 9:30",
                "Monday 4 January at 9:30",
            ),
            (None, SAT_2310, "en cuanto volvamos a abrir", "as soon as we reopen"),
        ],
    )
    def test_as_a_customer_says_it(
        self, when: datetime | None, now: datetime | None, es: str, en: str
    ) -> None:
        assert (next_open_text(when, "es", now), next_open_text(when, "en", now)) == (es, en)

    def test_now_in_another_timezone_is_read_in_the_shops(self) -> None:
        # 23:30 UTC on Sunday is already Monday 00:30 in Madrid: the desk opens "today".
        now = datetime(2026, 11, 29, 23, 30, tzinfo=ZoneInfo("UTC"))
        assert next_open_text(MON_0900, "es", now) == "hoy a las 9:00"


class TestPickTemplate:
    @pytest.mark.parametrize(
        ("texts", "language", "expected"),
        [
            ({"es": "a", "en": "b"}, "en", "en"),
            ({"es": "a", "en": "b"}, "EN_us", "en"),
            ({"es": "a", "pt-br": "b", "pt": "c"}, "pt-BR", "pt-br"),
            ({"es": "a", "pt": "c"}, "pt-BR", "pt"),
            ({"es": "a", "en": "b"}, None, "es"),
            ({"es-es": "a", "en": "b"}, "es", "es-es"),
            ({"de": "a", "en": "b"}, "fr", "en"),
            ({"de": "a"}, "fr", "de"),
        ],
    )
    def test_the_customers_language_first(
        self, texts: dict[str, str], language: str | None, expected: str
    ) -> None:
        got = pick_template(texts, language, "es")
        assert got is not None and got[0] == expected


class TestCheckMessages:
    def test_a_good_file_has_no_problems(self) -> None:
        rule = Rule("payments", Match(), "page", policy="weekend", reassure="payment_failed")
        assert check_messages(rules_config(rules=(rule,))) == []

    def test_unknown_placeholder_names_file_key_and_the_known_ones(self) -> None:
        cfg = rules_config({"payment_failed": {"es": "Pedido {order_id}", "en": "Order {order_number}"}})
        assert check_messages(cfg) == [
            "escalation_rules.toml: message.payment_failed.es: unknown placeholder {order_id} "
            "(known: customer_name, next_open, order_number, response_time, shop_name, ticket_id)"
        ]

    def test_a_stray_brace(self) -> None:
        cfg = rules_config({"x": {"es": "Hola {customer_name"}})
        assert check_messages(cfg) == [
            "escalation_rules.toml: message.x.es: unbalanced brace (write {{ or }} for a literal one)"
        ]

    def test_a_rule_reassuring_without_the_shops_language(self) -> None:
        rules = (
            Rule("in hours", Match(hours="open"), "post"),
            Rule("payments", Match(), "page", policy="weekend", reassure="x"),
        )
        cfg = rules_config({"x": {"en": "Hi"}}, rules=rules)
        assert check_messages(cfg) == [
            'escalation_rules.toml: rule[2].reassure: message "x" has no text in the shop\'s language "es"'
        ]

    def test_a_rule_reassuring_with_a_message_that_does_not_exist(self) -> None:
        rule = Rule("payments", Match(), "page", policy="weekend", reassure="paymnt_failed")
        assert check_messages(rules_config(rules=(rule,)), file="rules.toml") == [
            'rules.toml: rule[1].reassure: unknown message "paymnt_failed" (known: payment_failed)'
        ]


PIECES = st.sampled_from(
    ["Hola", "Hi", "Dear", ",", ".", " ", "pedido", "#"] + ["{" + name + "}" for name in
    ("customer_name", "order_number", "ticket_id", "shop_name", "response_time", "next_open")]
)  # fmt: skip


class TestNeverBraces:
    @settings(max_examples=150, deadline=None)
    @given(
        pieces=st.lists(PIECES, max_size=12),
        name=st.one_of(st.none(), st.sampled_from(["", "Laura", "laura@x.example"])),
        order=st.one_of(st.none(), st.just("1001")),
        language=st.sampled_from(["es", "en", "fr"]),
    )
    def test_a_template_that_check_accepts_renders_without_braces(
        self, pieces: list[str], name: str | None, order: str | None, language: str
    ) -> None:
        template = " ".join(pieces)
        assert check_messages(rules_config({"m": {language: template}})) == []
        rendered = render(template, language, ctx(customer_name=name, order_number=order), now=SAT_2310)
        assert "{" not in rendered and "}" not in rendered
