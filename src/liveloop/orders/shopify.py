"""Shopify order and refund webhooks, read from the signed body alone.

Shopify signs the body only (``X-Shopify-Hmac-Sha256``); ``X-Shopify-Topic`` and ``X-Shopify-Webhook-Id`` are
not signed, so a captured body can be replayed under any topic and any webhook id. What an event means is
therefore read from the body: an order's ``financial_status``, ``cancelled_at`` and ``refunds``, a refund's
own ``id`` and ``transactions``. A refund payload is recognised by its shape (``order_id`` with
``transactions`` or ``refund_line_items``, and no ``financial_status``). Replaying the same facts has no
further effect: an order is paid once and each refund id is counted once (see ``orders.service``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from liveloop.kit.errors import Unprocessable
from liveloop.kit.money import exponent, is_currency
from liveloop.kit.time import as_utc
from liveloop.orders.schemas import CustomerIn
from liveloop.orders.service import OrderFacts, ReferralHint

log = logging.getLogger("liveloop.orders.shopify")

# Subscribe to these; whichever topic a delivery names, its body decides what it means.
TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled", "refunds/create")
# Financial statuses of an order whose payment was captured (refunds come after a payment).
PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
# Attribution carried from the storefront, in the landing URL's query or as cart attributes (note_attributes).
# Cart attributes starting with "_" are hidden from the buyer at checkout, so both spellings are read.
ATTRIBUTION_KEYS = ("ll_click", "ll_ref", "ll_ch", "ll_show", "ll_host")
_MAX_ATTRIBUTE = 64
MAX_MINOR = 10**15  # minor units; far above any real order, well inside a 64-bit column

# A JSON object of a Shopify body: an order, a refund, one of their transactions, line items, customer or money
# objects. The body is signed, but its shape is Shopify's: every field is read as the JSON value it may be.
ShopifyObject = Mapping[str, object]


def to_minor(amount: object, currency: str) -> int:
    """Shopify sends decimal strings ("25.99"); convert without ever going through a float."""
    if amount is None:
        return 0
    text = str(amount).strip()
    negative = text.startswith("-")
    whole, _, frac = text.removeprefix("-").partition(".")
    exp = exponent(currency)
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(whole) > 18:
        raise Unprocessable(f"{amount!r} is not a decimal amount.", code="invalid_payload")
    frac = (frac + "0" * exp)[:exp] if exp else ""
    value: int = int(whole) * 10**exp + (int(frac) if frac else 0)
    if value > MAX_MINOR:
        raise Unprocessable(f"{amount!r} is larger than any order liveloop accepts.", code="invalid_payload")
    return -value if negative else value


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return as_utc(parsed) if parsed.tzinfo else None


def _items(body: ShopifyObject, key: str) -> list[ShopifyObject]:
    """The objects of a list field; anything else reads as none."""
    value = body.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _ident(value: object, what: str) -> str:
    """A Shopify id (a number, or a string in some payloads) as text."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not 0 < len(str(value)) <= 255:
        raise Unprocessable(f"The Shopify payload's {what} must be a number or a short string.", code="invalid_payload")
    return str(value)


def _money(value: object) -> tuple[str, str] | None:
    """``(amount, currency)`` of a Shopify money object ``{"amount": "1.00", "currency_code": "USD"}``."""
    if not isinstance(value, dict):
        return None
    currency = value.get("currency_code")
    if value.get("amount") is not None and isinstance(currency, str):
        return str(value["amount"]), currency
    return None


@dataclass(frozen=True)
class Rate:
    """Shop money per presentment money, from a pair of amounts Shopify gives in both."""

    shop_currency: str
    shop_minor: int
    presentment_currency: str
    presentment_minor: int

    def convert(self, amount_minor: int) -> int:
        # Rounded half up, in integers only.
        return (2 * amount_minor * self.shop_minor + self.presentment_minor) // (2 * self.presentment_minor)


def _rate(sets: list[object]) -> Rate | None:
    """The exchange rate implied by money sets (``{"shop_money": …, "presentment_money": …}``)."""
    shop_total = presentment_total = 0
    shop_currency = presentment_currency = None
    for item in sets:
        if not isinstance(item, dict):
            continue
        shop, presentment = _money(item.get("shop_money")), _money(item.get("presentment_money"))
        if shop is None or presentment is None or not is_currency(shop[1]) or not is_currency(presentment[1]):
            continue
        shop_currency, presentment_currency = shop[1], presentment[1]
        shop_total += to_minor(shop[0], shop[1])
        presentment_total += to_minor(presentment[0], presentment[1])
    if shop_currency is None or presentment_currency is None or shop_total <= 0 or presentment_total <= 0:
        return None
    return Rate(shop_currency, shop_total, presentment_currency, presentment_total)


@dataclass(frozen=True)
class ShopifyRefund:
    """One Shopify refund: its id and the money its successful refund transactions returned."""

    external_id: str
    refunded_at: datetime | None
    transactions: tuple[tuple[str, str | None], ...]  # (decimal amount, currency) of each
    rate: Rate | None = None  # for transactions in the buyer's (presentment) currency

    def amount_minor(self, currency: str) -> int:
        total = 0
        for amount, tx_currency in self.transactions:
            if tx_currency is None or tx_currency == currency:
                total += to_minor(amount, currency)
            elif (
                self.rate is not None
                and self.rate.shop_currency == currency
                and self.rate.presentment_currency == tx_currency
            ):
                total += self.rate.convert(to_minor(amount, tx_currency))
            else:
                log.warning(
                    "refund %s: a %s transaction on a %s order has no exchange rate in the payload; not counted",
                    self.external_id,
                    tx_currency,
                    currency,
                )
        return total


def _refund(body: ShopifyObject, order_rate: Rate | None = None) -> ShopifyRefund:
    if body.get("id") is None:
        raise Unprocessable(
            "A Shopify refund without an id cannot be counted once; send it as Shopify does.", code="invalid_payload"
        )
    transactions = []
    for tx in _items(body, "transactions"):
        if tx.get("kind") != "refund" or tx.get("status", "success") != "success":
            continue
        currency = tx.get("currency")
        transactions.append((str(tx.get("amount") or "0"), currency if isinstance(currency, str) else None))
    sets: list[object] = []
    for line in _items(body, "refund_line_items"):
        sets += [line.get("subtotal_set"), line.get("total_tax_set")]
    return ShopifyRefund(
        external_id=_ident(body["id"], "refund id"),
        refunded_at=_time(body.get("processed_at") or body.get("created_at")),
        transactions=tuple(transactions),
        rate=_rate(sets) or order_rate,
    )


def is_refund(body: ShopifyObject) -> bool:
    return (
        "order_id" in body
        and ("transactions" in body or "refund_line_items" in body)
        and "financial_status" not in body
    )


def is_order(body: ShopifyObject) -> bool:
    shaped = "financial_status" in body or "line_items" in body
    return body.get("id") is not None and shaped and "order_id" not in body


def attribution(body: ShopifyObject) -> ReferralHint | None:
    """The click id or invite code a storefront carried into the order: cart attributes first, then the URL."""
    found: dict[str, str] = {}
    for attribute in _items(body, "note_attributes"):
        name = attribute.get("name")
        if not isinstance(name, str):
            continue
        name = name.strip().removeprefix("_")
        value = attribute.get("value")
        if name in ATTRIBUTION_KEYS and isinstance(value, str) and 0 < len(value.strip()) <= _MAX_ATTRIBUTE:
            found.setdefault(name, value.strip())
    landing = body.get("landing_site")
    if isinstance(landing, str) and not (found.get("ll_click") or found.get("ll_ref")):
        query = parse_qs(urlsplit(landing).query)
        for key in ATTRIBUTION_KEYS:
            for name in (key, "_" + key):
                values = query.get(name)
                if values and 0 < len(values[0]) <= _MAX_ATTRIBUTE:
                    found.setdefault(key, values[0])
    if not (found.get("ll_click") or found.get("ll_ref")):
        return None
    customer = body.get("customer")
    customer = customer if isinstance(customer, dict) else {}
    orders_count = customer.get("orders_count", customer.get("number_of_orders"))
    return ReferralHint(
        click_id=found.get("ll_click"),
        code=found.get("ll_ref"),
        channel=found.get("ll_ch"),
        show_id=found.get("ll_show"),
        host_id=found.get("ll_host"),
        # The buyer had ordered in the shop before this order: an existing customer, not a new one.
        existing_customer=isinstance(orders_count, int) and orders_count > 1,
    )


def read(body: ShopifyObject) -> tuple[str, OrderFacts]:
    """What a Shopify webhook body says: ``("refund" | "order", facts)``."""
    if is_refund(body):
        return "refund", OrderFacts(external_id=_ident(body["order_id"], "order_id"), refunds=[_refund(body)])
    if not is_order(body):
        raise Unprocessable(
            f"This is neither a Shopify order nor a refund; subscribe this URL to the topics {', '.join(TOPICS)} only.",
            code="unsupported_payload",
        )
    currency = body.get("currency")
    if not isinstance(currency, str) or not is_currency(currency):
        raise Unprocessable(
            f"The Shopify order's currency {currency!r} is not an ISO 4217 code.", code="invalid_payload"
        )
    total = to_minor(body.get("total_price"), currency)
    if total < 0:
        raise Unprocessable("The Shopify order's total_price is negative.", code="invalid_payload")
    status = body.get("financial_status")
    order_rate = _rate([body.get("total_price_set")])
    refunds = [_refund(r, order_rate) for r in _items(body, "refunds")]
    customer = body.get("customer") or None
    customer_in = None
    if isinstance(customer, dict) and customer.get("id") is not None:
        parts = [customer.get("first_name"), customer.get("last_name")]
        if any(part is not None and not isinstance(part, str) for part in parts):
            raise Unprocessable("The Shopify customer's first_name and last_name must be text.", code="invalid_payload")
        name = " ".join(part for part in parts if isinstance(part, str) and part) or None
        # Validated like any customer the API is sent (422 invalid_payload naming the field).
        customer_in = CustomerIn.model_validate(
            {
                "id": _ident(customer["id"], "customer id"),
                "email": customer.get("email") or body.get("email"),
                "phone": customer.get("phone"),
                "locale": body.get("customer_locale"),
                "name": name,
            }
        )
    gateway = body.get("payment_details") or {}
    fingerprint = None
    if isinstance(gateway, dict) and (gateway.get("credit_card_bin") or gateway.get("credit_card_number")):
        fingerprint = f"{gateway.get('credit_card_bin') or ''}:{str(gateway.get('credit_card_number') or '')[-4:]}"
    return "order", OrderFacts(
        external_id=_ident(body["id"], "order id"),
        currency=currency,
        total_minor=total,
        customer=customer_in,
        payment_fingerprint=fingerprint,
        paid=status in PAID_STATUSES,
        cancelled=body.get("cancelled_at") is not None,
        fully_refunded=status == "refunded",
        refunds=refunds,
        referral=attribution(body),
        occurred_at=_time(body.get("processed_at")) or _time(body.get("updated_at")),
    )
