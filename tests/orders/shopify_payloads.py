"""Shopify webhook bodies shaped like the ones Shopify sends (REST Admin API order and refund resources),
trimmed to the fields a reader would find in a real delivery, and a signed poster for them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from typing import Any

import httpx
import orjson

_ids = itertools.count(7_000_000_001)


def money_set(amount: str, currency: str, presentment: tuple[str, str] | None = None) -> dict[str, Any]:
    p_amount, p_currency = presentment or (amount, currency)
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": p_amount, "currency_code": p_currency},
    }


def refund_transaction(order_id: int, amount: str, currency: str = "USD", status: str = "success") -> dict[str, Any]:
    return {
        "id": next(_ids),
        "order_id": order_id,
        "kind": "refund",
        "gateway": "shopify_payments",
        "status": status,
        "message": "Refunded",
        "created_at": "2026-11-25T10:15:02-05:00",
        "test": False,
        "authorization": None,
        "currency": currency,
        "amount": amount,
        "parent_id": 389404469,
        "source_name": "web",
        "receipt": {},
        "error_code": None,
    }


def refund(
    order_id: int,
    amount: str,
    *,
    refund_id: int | None = None,
    currency: str = "USD",
    line_items: list[dict[str, Any]] | None = None,
    status: str = "success",
) -> dict[str, Any]:
    """A refund as ``refunds/create`` sends it, and as it appears in an order's ``refunds`` array."""
    rid = refund_id or next(_ids)
    return {
        "id": rid,
        "order_id": order_id,
        "created_at": "2026-11-25T10:15:02-05:00",
        "note": "wrong size",
        "user_id": 548380009,
        "processed_at": "2026-11-25T10:15:02-05:00",
        "restock": False,
        "duties": [],
        "total_duties_set": money_set("0.00", "USD"),
        "additional_fees": [],
        "return": None,
        "admin_graphql_api_id": f"gid://shopify/Refund/{rid}",
        "refund_line_items": line_items or [],
        "transactions": [refund_transaction(order_id, amount, currency, status)] if amount else [],
        "order_adjustments": [],
        "refund_shipping_lines": [],
    }


def refund_line_item(subtotal: tuple[str, str], tax: tuple[str, str], shop_currency: str, buyer_currency: str) -> dict:
    """A refunded line item with its amounts in the shop's and the buyer's currency: (shop, buyer)."""
    return {
        "id": next(_ids),
        "quantity": 1,
        "line_item_id": 466157049,
        "location_id": None,
        "restock_type": "no_restock",
        "subtotal": float(subtotal[0]),
        "total_tax": float(tax[0]),
        "subtotal_set": money_set(subtotal[0], shop_currency, (subtotal[1], buyer_currency)),
        "total_tax_set": money_set(tax[0], shop_currency, (tax[1], buyer_currency)),
    }


def order(
    order_id: int,
    total: str,
    *,
    financial_status: str = "paid",
    currency: str = "USD",
    customer_id: int | None = 207119551,
    email: str = "bob.norman@mail.example.com",
    refunds: list[dict[str, Any]] | None = None,
    cancelled_at: str | None = None,
    landing_site: str | None = "/",
    note_attributes: list[dict[str, str]] | None = None,
    presentment: tuple[str, str] | None = None,
    orders_count: int | None = None,
) -> dict[str, Any]:
    """An order as ``orders/create``, ``orders/paid``, ``orders/updated`` and ``orders/cancelled`` send it."""
    customer: dict[str, Any] | None = None
    if customer_id is not None:
        customer = {
            "id": customer_id,
            "email": email,
            "created_at": "2026-11-20T09:01:12-05:00",
            "updated_at": "2026-11-25T10:10:44-05:00",
            "first_name": "Bob",
            "last_name": "Norman",
            "state": "disabled",
            "note": None,
            "verified_email": True,
            "phone": None,
            "currency": currency,
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
        }
        if orders_count is not None:
            customer["orders_count"] = orders_count
    p_total, p_currency = presentment or (total, currency)
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "app_id": 580111,
        "browser_ip": "203.0.113.20",
        "buyer_accepts_marketing": False,
        "cancel_reason": "customer" if cancelled_at else None,
        "cancelled_at": cancelled_at,
        "cart_token": "Z2NwLXVzLWVhc3QxOjAxSkE3",
        "checkout_id": 901414060,
        "confirmation_number": "TUCVQJ3S5",
        "confirmed": True,
        "contact_email": email,
        "created_at": "2026-11-25T10:10:44-05:00",
        "currency": currency,
        "current_total_price": total,
        "customer_locale": "en-US",
        "email": email,
        "financial_status": financial_status,
        "fulfillment_status": None,
        "landing_site": landing_site,
        "landing_site_ref": None,
        "name": f"#{order_id % 10000}",
        "note": None,
        "note_attributes": note_attributes or [],
        "number": order_id % 10000,
        "order_number": 1000 + order_id % 10000,
        "payment_gateway_names": ["shopify_payments"],
        "presentment_currency": p_currency,
        "processed_at": "2026-11-25T10:10:44-05:00",
        "referring_site": "https://l.instagram.com/",
        "source_name": "web",
        "subtotal_price": total,
        "tags": "",
        "test": False,
        "total_discounts": "0.00",
        "total_price": total,
        "total_price_set": money_set(total, currency, (p_total, p_currency)),
        "total_tax": "0.00",
        "updated_at": "2026-11-25T10:12:01-05:00",
        "customer": customer,
        "line_items": [
            {
                "id": 466157049,
                "product_id": 632910392,
                "variant_id": 39072856,
                "title": "Serum 30 ml",
                "quantity": 1,
                "price": total,
                "sku": "SERUM-30",
            }
        ],
        "refunds": refunds or [],
        "shipping_lines": [],
    }


def headers(secret: str, body: bytes, topic: str, webhook_id: str) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "acme.myshopify.com",
        "X-Shopify-API-Version": "2024-10",
        "Content-Type": "application/json",
    }


_deliveries = itertools.count(1)


async def deliver(
    api: httpx.AsyncClient,
    slug: str,
    payload: dict[str, Any] | bytes,
    topic: str,
    *,
    secret: str = "shpss_test",
    webhook_id: str | None = None,
) -> httpx.Response:
    """POST a signed delivery, each under a fresh webhook id unless one is given."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    wid = webhook_id or f"b54557e4-{next(_deliveries):04d}-4cd1-a9cd-2a9e0e1c4c01"
    return await api.post(f"/v1/webhooks/shopify/{slug}", content=body, headers=headers(secret, body, topic, wid))
