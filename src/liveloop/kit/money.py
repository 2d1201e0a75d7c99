"""Money is an integer amount of minor units next to an ISO 4217 code. Never a float.

:data:`KNOWN_CURRENCIES` is the one list of currencies liveloop accepts, and :data:`Currency` the one
validator every request model uses for a currency field (orders, coupons, rewards, products, ledger assets).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

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


def check_currency(code: str) -> str:
    """``code`` when it is a currency liveloop knows (upper case ISO 4217); ValueError otherwise."""
    if not is_currency(code):
        raise ValueError("must be an ISO 4217 currency code in upper case, such as USD")
    return code


Currency = Annotated[
    str,
    Field(
        min_length=3,
        max_length=3,
        pattern="^[A-Z]{3}$",
        description="ISO 4217 currency code",
        examples=["USD"],
        json_schema_extra={"enum": sorted(KNOWN_CURRENCIES)},
    ),
    AfterValidator(check_currency),
]


def percent_of(amount_minor: int, basis_points: int) -> int:
    """``basis_points`` (1/100 of a percent) of an amount, rounded half up, in integers only."""
    return (amount_minor * basis_points + 5_000) // 10_000
