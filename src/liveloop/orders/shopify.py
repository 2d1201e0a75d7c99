"""Shopify order webhooks, turned into generic order events."""

from __future__ import annotations

from typing import Any

from liveloop.kit.errors import Unprocessable
from liveloop.kit.money import exponent
from liveloop.orders.schemas import OrderEventIn

TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled", "refunds/create")


def to_minor(amount: str | int | float | None, currency: str) -> int:
    """Shopify sends decimal strings ("25.99"); convert without ever going through a float."""
    if amount is None:
        return 0
    text = str(amount).strip()
    whole, _, frac = text.partition(".")
    exp = exponent(currency)
    if not whole.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise Unprocessable(f"{amount!r} is not a decimal amount.", code="invalid_payload")
    frac = (frac + "0" * exp)[:exp] if exp else ""
    return int(whole) * 10**exp + (int(frac) if frac else 0)


def to_event(
    topic: str,
    webhook_id: str,
    body: dict[str, Any],
    *,
    known_total: int | None = None,
    known_currency: str | None = None,
    known_customer: dict[str, Any] | None = None,
) -> OrderEventIn | None:
    if topic == "refunds/create":
        currency = known_currency or "USD"
        refunded = sum(
            to_minor(t.get("amount"), currency)
            for t in body.get("transactions", [])
            if t.get("kind") == "refund" and t.get("status", "success") == "success"
        )
        if known_total is None or known_customer is None:
            return None  # a refund for an order we never saw: nothing to take back
        return OrderEventIn.model_validate(
            {
                "id": f"shopify:{webhook_id}",
                "type": "order.partially_refunded",
                "occurred_at": body.get("created_at"),
                "order": {
                    "id": str(body["order_id"]),
                    "currency": currency,
                    "total_minor": known_total,
                    "refunded_minor": refunded,
                    "customer": known_customer,
                },
            }
        )
    currency = body.get("currency") or "USD"
    total = to_minor(body.get("total_price"), currency)
    refunded = sum(
        to_minor(t.get("amount"), currency)
        for r in body.get("refunds", [])
        for t in r.get("transactions", [])
        if t.get("kind") == "refund"
    )
    status = body.get("financial_status")
    kind = {
        "orders/create": "order.paid" if status == "paid" else "order.created",
        "orders/paid": "order.paid",
        "orders/cancelled": "order.cancelled",
    }.get(topic)
    if topic == "orders/updated":
        kind = {
            "paid": "order.paid",
            "refunded": "order.refunded",
            "partially_refunded": "order.partially_refunded",
        }.get(status or "")
        if kind is None:
            return None
    customer = body.get("customer") or {}
    if not customer.get("id"):
        raise Unprocessable(
            "The Shopify order has no customer; guest orders cannot be attributed.", code="missing_customer"
        )
    gateway = body.get("payment_details") or {}
    fingerprint = gateway.get("credit_card_bin", "") + ":" + gateway.get("credit_card_number", "")[-4:]
    return OrderEventIn.model_validate(
        {
            "id": f"shopify:{webhook_id}",
            "type": kind,
            "occurred_at": body.get("processed_at") or body.get("updated_at"),
            "order": {
                "id": str(body["id"]),
                "currency": currency,
                "total_minor": total,
                "refunded_minor": min(refunded, total),
                "payment_fingerprint": fingerprint if fingerprint != ":" else None,
                "customer": {
                    "id": str(customer["id"]),
                    "email": customer.get("email") or body.get("email"),
                    "phone": customer.get("phone"),
                    "locale": body.get("customer_locale"),
                    "name": " ".join(filter(None, [customer.get("first_name"), customer.get("last_name")])) or None,
                },
            },
        }
    )
