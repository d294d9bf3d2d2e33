"""How an amount is written: with as many decimals as its currency has (ISO 4217), so a
page reads "5000 JPY" and "5.120 KWD", not "5000.00 JPY" and "5.12 KWD"."""

from __future__ import annotations

_NO_DECIMALS = frozenset([
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "UYI",
    "VND", "VUV", "XAF", "XOF", "XPF",
])  # fmt: skip
_THREE_DECIMALS = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])


def decimals(currency: str | None) -> int:
    cur = (currency or "").upper()
    return 0 if cur in _NO_DECIMALS else 3 if cur in _THREE_DECIMALS else 2


def format_amount(amount: float, currency: str | None) -> str:
    """ "189.90 EUR", "5000 JPY", "5.120 KWD"; without a currency, two decimals."""
    return f"{amount:.{decimals(currency)}f} {(currency or '').upper()}".strip()
