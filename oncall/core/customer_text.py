"""Customer reassurance texts: `[message.*]` templates rendered as a customer reads them.

Pure: stdlib and the models only; `now` is an argument. Placeholders (SPEC §2.1):

    {customer_name}  the customer's name; when unknown, a greeting that still reads naturally
    {order_number}   the shop's order number ("1001", "#1001")
    {ticket_id}      the helpdesk ticket id
    {shop_name}      `[shop] name`
    {response_time}  `[shop] response_time` in words: "2 horas", "2 hours", "1 hora y 30 minutos"
    {next_open}      when business hours open next: "el lunes a las 9:00", "Monday at 9:00",
                     "mañana a las 9:00", "today at 16:00"

`{{` and `}}` stand for literal braces. Spanish and English are phrased natively; any other
language gets the English phrasing of `{response_time}` and `{next_open}` (its template text
is still used as written), so a shop writing French templates should word them around
numbers, e.g. "sous {response_time}" reads "sous 2 hours" — the owner is told in the docs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from oncall.core.models import Event, RulesConfig

PLACEHOLDERS: tuple[str, ...] = (
    "customer_name",
    "next_open",
    "order_number",
    "response_time",
    "shop_name",
    "ticket_id",
)

# `{{`, `}}`, or one `{…}` group; anything else between braces is an unknown placeholder.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class CustomerContact:
    """One customer of an incident, as reassurance needs them (built from its events)."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    source: str | None = None  # the event's source: "zendesk", "freshdesk", "stripe", …
    ticket_id: str | None = None
    order_number: str | None = None

    def key(self) -> str | None:
        """Who this customer is for dedup: the e-mail, else the phone (SPEC §5: each distinct
        e-mail or phone), else the helpdesk ticket; None when there is no way to reach them."""
        if self.email and self.email.strip():
            return "email:" + self.email.strip().lower()
        if self.phone and self.phone.strip():
            return "phone:" + re.sub(r"[^\d+]", "", self.phone)
        if self.source and self.ticket_id:
            return f"ticket:{self.source}:{self.ticket_id}"
        return None


def contact_of(event: Event) -> CustomerContact:
    """The customer of one event, as reassurance reaches them."""
    c = event.customer
    return CustomerContact(
        name=c.name,
        email=c.email,
        phone=c.phone,
        language=c.language,
        source=event.source,
        ticket_id=event.ticket.id,
        order_number=event.order.number,
    )


@dataclass(frozen=True, slots=True)
class TextContext:
    """The values placeholders take. `next_open` is aware, in the shop's timezone (None when
    the shop never opens); unknown optional values render as described in the module doc."""

    shop_name: str
    response_time: timedelta
    next_open: datetime | None = None
    customer_name: str | None = None
    order_number: str | None = None
    ticket_id: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    language: str  # the language of the template used
    subject: str  # for e-mail
    text: str


def base_language(language: str | None) -> str | None:
    """Base language: "es-ES", "es_MX", "ES" → "es"; empty → None."""
    if not language or not language.strip():
        return None
    return re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]


def pick_template(
    texts: Mapping[str, str], language: str | None, shop_language: str
) -> tuple[str, str] | None:
    """(language, template) for a customer: their exact language ("pt-br"), else its base
    ("pt"), else the shop's language, else English, else any text there is."""
    by_lang = {k.strip().lower().replace("_", "-"): v for k, v in texts.items()}
    wanted = [
        (language or "").strip().lower().replace("_", "-"),
        base_language(language) or "",
        shop_language.strip().lower(),
        base_language(shop_language) or "",
        "en",
    ]
    for lang in wanted:
        if lang and lang in by_lang:
            return lang, by_lang[lang]
        # A customer in "es" is served by an "es-es" text when that is all there is.
        for key in sorted(by_lang):
            if lang and base_language(key) == lang:
                return key, by_lang[key]
    if by_lang:
        lang = sorted(by_lang)[0]
        return lang, by_lang[lang]
    return None


# ---------------------------------------------------------------------------------------------
# Natural phrases


def response_time_text(duration: timedelta, language: str) -> str:
    """In words: "2 horas", "1 hora y 30 minutos", "3 días"; "2 hours", "1 hour and 30 minutes"."""
    es = base_language(language) == "es"
    minutes = max(0, round(duration.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    # "48 horas" reads worse than "2 días", but "1 día" is vaguer than "24 horas".
    if days >= 2 and rest == 0:
        return f"{days} días" if es else f"{days} days"
    hours, mins = divmod(minutes, 60)
    if es:
        parts = [f"{hours} hora" + ("s" if hours != 1 else "")] if hours else []
        if mins or not hours:
            parts.append(f"{mins} minuto" + ("s" if mins != 1 else ""))
        return " y ".join(parts)
    parts = [f"{hours} hour" + ("s" if hours != 1 else "")] if hours else []
    if mins or not hours:
        parts.append(f"{mins} minute" + ("s" if mins != 1 else ""))
    return " and ".join(parts)


_ES_DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ES_MONTHS = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def next_open_text(when: datetime | None, language: str, now: datetime | None = None) -> str:
    """When the desk opens, as a customer says it: "el lunes a las 9:00", "mañana a las 9:00",
    "hoy a las 16:00", "el lunes 4 de enero a las 9:00" (a week or more away); English "Monday
    at 9:00", "tomorrow at 9:00", … Relative words need `now`; without it the weekday is used.
    `when` is read in its own timezone (the shop's)."""
    es = base_language(language) == "es"
    if when is None:
        return "en cuanto volvamos a abrir" if es else "as soon as we reopen"
    clock = f"{when.hour}:{when.minute:02d}"
    at = ("a la " if when.hour == 1 else "a las ") + clock if es else "at " + clock
    days_away = None
    if now is not None:
        days_away = (when.date() - now.astimezone(when.tzinfo).date()).days
    if days_away == 0:
        return f"hoy {at}" if es else f"today {at}"
    if days_away == 1:
        return f"mañana {at}" if es else f"tomorrow {at}"
    wd = when.weekday()
    if days_away is not None and days_away >= 7:
        if es:
            return f"el {_ES_DAYS[wd]} {when.day} de {_ES_MONTHS[when.month - 1]} {at}"
        return f"{_EN_DAYS[wd]} {when.day} {_EN_MONTHS[when.month - 1]} {at}"
    return f"el {_ES_DAYS[wd]} {at}" if es else f"{_EN_DAYS[wd]} {at}"


def _known_name(name: str | None) -> str | None:
    # Helpdesks fill an unknown requester name with the e-mail address; nobody is greeted so.
    if name is None or not name.strip() or "@" in name:
        return None
    return " ".join(name.split())


# A greeting word that needs a noun when the name is missing: "Dear customer", "Estimado cliente".
_NAMELESS = {
    "dear": "customer",
    "estimado": "cliente",
    "estimada": "clienta",
    "querido": "cliente",
    "querida": "clienta",
}
_START_GREETING = {"es": "Hola", "en": "Hello"}


def _nameless(text_before: str, language: str) -> tuple[str, str]:
    """How to render a missing `{customer_name}`: (new text before it, replacement)."""
    word = re.search(r"(\w+)\s+$", text_before)
    if word and word.group(1).lower() in _NAMELESS:
        return text_before, _NAMELESS[word.group(1).lower()]
    if word:
        # "Hola {customer_name}, hemos…" → "Hola, hemos…": drop the name and its space.
        return text_before.rstrip(), ""
    if not text_before.strip():
        # The text opens with the name: "{customer_name}, hemos visto…" → "Hola, hemos visto…".
        return text_before, _START_GREETING.get(base_language(language) or "en", "Hello")
    # "Gracias, {customer_name}." → "Gracias.": the comma belonged to the name.
    return text_before.rstrip().removesuffix(","), ""


def render(template: str, language: str, context: TextContext, now: datetime | None = None) -> str:
    """The template with its placeholders filled in `language` (the template's language).

    An unknown value (no order number, no ticket) is left out together with the space before
    it, and with its brackets or "#" ("tu consulta ({ticket_id})" → "tu consulta"); an unknown
    placeholder is left out too (`oncall check` reports it), so a customer never reads braces."""
    values: dict[str, str | None] = {
        "customer_name": _known_name(context.customer_name),
        "order_number": (context.order_number or "").strip() or None,
        "ticket_id": (context.ticket_id or "").strip() or None,
        "shop_name": context.shop_name,
        "response_time": response_time_text(context.response_time, language),
        "next_open": next_open_text(context.next_open, language, now),
    }
    out = ""
    pos = 0
    for m in _TOKEN.finditer(template):
        out += template[pos : m.start()]
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            out += token[0]
            continue
        name = (m.group(1) or "").strip()
        value = values.get(name)
        if value is not None:
            out += value
        elif name == "customer_name":
            out, value = _nameless(out, language)
            out += value
        else:
            # "tu consulta ({ticket_id})", "pedido #{order_number}": the brackets or the "#"
            # belonged to the value and go with it.
            if out.endswith("(") and template.startswith(")", pos):
                out, pos = out[:-1], pos + 1
            elif out.endswith("#"):
                out = out[:-1]
            out = out.rstrip(" ")
    out += template[pos:]
    return out


def subject(language: str, context: TextContext) -> str:
    """The e-mail subject: short, names the shop and the order or ticket when known."""
    es = base_language(language) == "es"
    if context.order_number:
        about = f"tu pedido {context.order_number}" if es else f"your order {context.order_number}"
    elif context.ticket_id:
        about = f"tu consulta #{context.ticket_id}" if es else f"your request #{context.ticket_id}"
    else:
        about = "tu consulta" if es else "your request"
    return f"{context.shop_name}: " + (f"estamos con {about}" if es else f"we are on {about}")


def customer_message(
    rules: RulesConfig,
    message: str,
    customer: CustomerContact,
    next_open: datetime | None,
    now: datetime | None = None,
) -> RenderedMessage | None:
    """The text one customer gets for `[message.NAME]`, in their language (from the event, else
    the shop's); None when the message does not exist or has no text at all."""
    texts = rules.messages.get(message)
    if not texts:
        return None
    picked = pick_template(texts, customer.language, rules.shop.language)
    if picked is None:
        return None
    language, template = picked
    context = TextContext(
        shop_name=rules.shop.name,
        response_time=rules.shop.response_time,
        next_open=next_open,
        customer_name=customer.name,
        order_number=customer.order_number,
        ticket_id=customer.ticket_id,
    )
    return RenderedMessage(language, subject(language, context), render(template, language, context, now))


# ---------------------------------------------------------------------------------------------
# `oncall check`


def template_problems(template: str) -> list[str]:
    """What is wrong with one template: unknown placeholders, stray braces."""
    problems: list[str] = []
    known = ", ".join(PLACEHOLDERS)
    for m in _TOKEN.finditer(template):
        if m.group(0) in ("{{", "}}"):
            continue
        name = m.group(1) or ""
        if name.strip() not in PLACEHOLDERS:
            problems.append(f"unknown placeholder {{{name}}} (known: {known})")
    rest = _TOKEN.sub("", template)
    if "{" in rest or "}" in rest:
        problems.append("unbalanced brace (write {{ or }} for a literal one)")
    return problems


def check_messages(rules: RulesConfig, file: str = "escalation_rules.toml") -> list[str]:
    """Problems `oncall check` reports as errors: unknown placeholders in `[message.*]`, and
    rules that reassure with a message missing, or missing the shop's language."""
    problems: list[str] = []
    for name, texts in rules.messages.items():
        for language, template in texts.items():
            for problem in template_problems(template):
                problems.append(f"{file}: message.{name}.{language}: {problem}")
    shop_language = rules.shop.language.strip().lower()
    for i, rule in enumerate(rules.rules, start=1):
        if rule.reassure is None:
            continue
        wanted = rules.messages.get(rule.reassure)
        if wanted is None:
            known = ", ".join(sorted(rules.messages)) or "none"
            problems.append(f'{file}: rule[{i}].reassure: unknown message "{rule.reassure}" (known: {known})')
            continue
        languages = {k.strip().lower().replace("_", "-") for k in wanted}
        bases = {base_language(k) for k in wanted}
        if shop_language not in languages and base_language(shop_language) not in bases:
            problems.append(
                f'{file}: rule[{i}].reassure: message "{rule.reassure}" has no text in the '
                f'shop\'s language "{rules.shop.language}"'
            )
    return problems
