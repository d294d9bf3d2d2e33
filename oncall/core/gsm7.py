"""The GSM-7 alphabet SMS are counted in (GSM 03.38): which characters a phone shows without
turning the whole message into UCS-2 (70 characters a segment instead of 160), what each costs,
and how many segments a text takes. Pure; shared by the page texts (`core.pagetext`) and the SMS
channel (`channels.sms`).
"""

from __future__ import annotations

import unicodedata

SEGMENT = 160  # septets in a single GSM-7 SMS
MULTIPART_SEGMENT = 153  # septets per part of a concatenated one (7 go to the header)

# The basic character set (without ESC, the extension table's escape), and the extension table
# whose characters cost two septets.
BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENDED = frozenset("^{}\\[~]|€\f")
# What a character outside the alphabet becomes when dropping its accent is not enough.
_INSTEAD = {
    "\u2014": "-",  # em dash
    "\u2013": "-",  # en dash
    "\u201c": '"',
    "\u201d": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u2026": "...",
    "\u00b7": "-",
    "\u00a0": " ",
    "•": "-",
    "œ": "oe",
}


def to_gsm7(text: str) -> str:
    """`text` in the GSM-7 alphabet: accents outside it are dropped (í → i), a few signs become
    their plain look-alikes (“ ” — …), anything else becomes ?."""
    out: list[str] = []
    for ch in text:
        if ch in BASIC or ch in EXTENDED:
            out.append(ch)
        elif ch in _INSTEAD:
            out.append(_INSTEAD[ch])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(base if base and all(c in BASIC for c in base) else "?")
    return "".join(out)


def septets(text: str) -> int:
    return sum(2 if ch in EXTENDED else 1 for ch in text)


def segments(text: str) -> int:
    """How many SMS segments a GSM-7 text takes."""
    n = septets(text)
    return 1 if n <= SEGMENT else -(-n // MULTIPART_SEGMENT)
