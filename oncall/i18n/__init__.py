"""What rota people read, in their language (SPEC §5): one catalogue file per language
(`en.toml`, `es.toml`), keys grouped by where the text appears, `{field}` placeholders
filled with `str.format`. `en` is complete and the fallback: a key missing from another
language's catalogue, or a language with no catalogue, reads English. A new language is one
file beside these.

Dates, times and amounts are written the way the language writes them, by Babel's CLDR data
("sábado 28 nov, 23:10", "189,90 €"), not by tables of our own.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_time
from babel.numbers import format_currency, format_decimal

FALLBACK = "en"


def base(lang: str | None) -> str:
    """ "es-ES" → "es"; nothing → the fallback."""
    return (lang or FALLBACK).replace("_", "-").split("-")[0].lower() or FALLBACK


@cache
def _catalogue(lang: str) -> dict[str, str]:
    """The flat key → text map of one language's file, or {} when there is none."""
    path = resources.files(__package__).joinpath(f"{lang}.toml")
    if not path.is_file():
        return {}
    return _flatten(tomllib.loads(path.read_text(encoding="utf-8")))


def _flatten(table: dict[str, object], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


def has(lang: str | None, key: str) -> bool:
    return key in _catalogue(base(lang))


def text(lang: str | None, key: str, /, **fields: object) -> str:
    """The text `key` in `lang` (else English) with its `{fields}` filled in. A key that is
    in no catalogue is a programming error, so it raises rather than showing the key."""
    template = _catalogue(base(lang)).get(key)
    if template is None:
        template = _catalogue(FALLBACK)[key]
    return template.format(**fields) if fields else template


def plural(lang: str | None, key: str, n: int, /, **fields: object) -> str:
    """`key.one` / `key.other` (CLDR plural categories of `lang`), with `{n}` filled."""
    category = _locale(lang).plural_form(n)
    name = f"{key}.{category}"
    if not has(lang, name) and not has(FALLBACK, name):
        name = f"{key}.other"
    return text(lang, name, n=n, **fields)


@cache
def _locale(lang: str | None) -> Locale:
    """The Babel locale dates and numbers are written in: English's for a language with no
    catalogue (its reader reads English, "189.90 EUR", not "189,90 EUR")."""
    if not _catalogue(base(lang)):
        return Locale.parse(FALLBACK)
    try:
        return Locale.parse(base(lang))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(FALLBACK)


def clock(t: datetime, lang: str | None, tz: ZoneInfo) -> str:
    """ "23:10" (es, en-GB style 24-hour clock as every shop here reads it)."""
    return format_time(t.astimezone(tz), "HH:mm", locale=_locale(lang))


def day_and_time(t: datetime, lang: str | None, tz: ZoneInfo) -> str:
    """ "sábado 28 nov, 23:10" / "Saturday 28 Nov, 23:10"."""
    loc = _locale(lang)
    pattern = text(lang, "format.day_and_time")
    return format_datetime(t.astimezone(tz), pattern, locale=loc).replace(".", "")


def money(amount: float, currency: str | None, lang: str | None) -> str:
    """ "189,90 €" (es), "189.90 EUR" (en, as SPEC §5 writes it: the catalogue's
    `format.money` pattern; "" there is the language's CLDR standard); as many decimals as the
    currency has ("5000 JPY"); without a currency, a plain number. No-break spaces become
    plain ones: an SMS has none, and a reader sees no difference."""
    loc = _locale(lang)
    if not currency:
        out = format_decimal(amount, format="#,##0.00", locale=loc)
    else:
        # A language's own pattern; English's where English is read (no catalogue); the
        # language's CLDR standard where its file names none.
        own = _catalogue(base(lang)) or _catalogue(FALLBACK)
        pattern = own.get("format.money") or None
        out = format_currency(amount, currency.upper(), format=pattern, locale=loc, currency_digits=True)
    return out.replace("\u00a0", " ").replace("\u202f", " ")


def spoken_money(amount: float, currency: str | None, lang: str | None) -> str:
    """An amount as a page call says it: the language's own CLDR currency format ("€189.90",
    "189,90 €"), which text-to-speech reads as money, not "189.90 E U R"."""
    if not currency:
        return money(amount, currency, lang)
    out = format_currency(amount, currency.upper(), locale=_locale(lang), currency_digits=True)
    return out.replace("\u00a0", " ").replace("\u202f", " ")


def when(t: datetime, lang: str | None, tz: ZoneInfo, now: datetime, within: timedelta | None = None) -> str:
    """A time as pages and answers give it: "23:10" on the same day (or, given `within`, no
    longer than that before `now`), else with its day ("Sat 28 Nov 23:10", "sábado 28 nov,
    23:10": `format.day_short`)."""
    local = t.astimezone(tz)
    if local.date() == now.astimezone(tz).date() or (within is not None and now - t < within):
        return clock(t, lang, tz)
    return day_short(t, lang, tz)


def day_short(t: datetime, lang: str | None, tz: ZoneInfo) -> str:
    """A time with its day, as pages and the ack page give it: "Sat 28 Nov 23:10" / "sábado
    28 nov, 23:10" (`format.day_short`)."""
    pattern = text(lang, "format.day_short")
    return format_datetime(t.astimezone(tz), pattern, locale=_locale(lang)).replace(".", "")


def waiting(d: timedelta, lang: str | None = None) -> str:
    """ "4 min", "1 h 05 min", "2 days 3 h" / "2 días 3 h"."""
    minutes = max(0, int(d.total_seconds() // 60))
    if minutes < 60:
        return text(lang, "waiting.minutes", m=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return text(lang, "waiting.hours", h=hours, m=f"{minutes:02d}")
    days, hours = divmod(hours, 24)
    return plural(lang, "waiting.days", days, h=hours)


def state(lang: str | None, name: str) -> str:
    """An incident's state as a person reads it: "acknowledged" / "reconocido"."""
    key = f"state.{name}"
    return text(lang, key) if has(FALLBACK, key) else name


def voice(lang: str | None) -> str:
    """The language tag Twilio's <Say> reads in: "es-ES", "en-GB"."""
    return text(lang, "voice.say_language")
