"""Money is an integer amount of minor units next to an ISO 4217 code. Never a float."""

from __future__ import annotations

# Minor-unit exponents that differ from 2 (ISO 4217).
_EXPONENTS = {
    "BHD": 3,
    "CLP": 0,
    "IDR": 2,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "OMR": 3,
    "PYG": 0,
    "TND": 3,
    "UGX": 0,
    "VND": 0,
    "XAF": 0,
    "XOF": 0,
}
KNOWN_CURRENCIES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "CAD",
        "AUD",
        "NZD",
        "SGD",
        "MYR",
        "THB",
        "IDR",
        "PHP",
        "VND",
        "JPY",
        "KRW",
        "CNY",
        "HKD",
        "TWD",
        "INR",
        "AED",
        "SAR",
        "QAR",
        "KWD",
        "BHD",
        "OMR",
        "JOD",
        "EGP",
        "TRY",
        "MXN",
        "BRL",
        "CLP",
        "COP",
        "PEN",
        "CHF",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "CZK",
        "HUF",
        "RON",
        "ILS",
        "ZAR",
        "NGN",
        "KES",
    ]
)


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def is_currency(code: str) -> bool:
    return code in KNOWN_CURRENCIES


def percent_of(amount_minor: int, basis_points: int) -> int:
    """``basis_points`` (1/100 of a percent) of an amount, rounded half up, in integers only."""
    return (amount_minor * basis_points + 5_000) // 10_000
