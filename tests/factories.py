"""Test factories: plain functions with keyword defaults.

The first ones go through the public API (an ``httpx`` client, JSON back); the service-level ones at the end
make typed rows through the services in the caller's session, for tests of a service or repository.
"""

from __future__ import annotations

import itertools
import random
import string
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.client import order_event, signed_order_headers
from liveloop.members import devices
from liveloop.members import service as member_service
from liveloop.models import Campaign, Member, Shop
from liveloop.referral import service as referral_service
from liveloop.referral.schemas import CampaignCreate

_seq = itertools.count(1)


def _letters(n: int = 12) -> str:
    """A random letters-only local part: never "alike" another by the fraud rules' measures."""
    return "".join(random.choices(string.ascii_lowercase, k=n))


def ok(response: httpx.Response, status: int | None = None) -> Any:
    expected = status or (response.status_code if response.status_code < 400 else 200)
    assert response.status_code == expected, f"{response.status_code}: {response.text}"
    return response.json()


async def all_items(api: httpx.AsyncClient, path: str, **params: Any) -> list[Any]:
    """Every item of a paginated list, following ``next_cursor`` page after page."""
    items: list[Any] = []
    cursor = None
    while True:
        page = ok(await api.get(path, params={**params, **({"cursor": cursor} if cursor else {})}))
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def new_device(app: Any) -> str:
    """A device cookie value as the server issues it to a browser (signed with the app's secret key)."""
    return devices.mint(app.state.settings.secret_key)


async def create_member(
    api: httpx.AsyncClient,
    *,
    market: str = "sea",
    email: str | None = None,
    external_id: str | None = None,
    device_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    n = next(_seq)
    body = {
        "external_id": external_id or f"cust-{n}",
        "email": email or f"{_letters()}@example.com",
        "market": market,
        **({"device_id": device_id} if device_id else {}),
        **extra,
    }
    return ok(await api.post("/v1/members", json=body), 201)


async def create_campaign(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Friends",
        "status": "active",
        "conversion_event": "first_paid_order",
        "inviter_reward": {"type": "points", "amount": 500},
        "invitee_reward": {"type": "credit", "amount": 300, "currency": "USD"},
        **overrides,
    }
    return ok(await api.post("/v1/campaigns", json=body), 201)


async def create_group(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A VIP group of a sign-up campaign, owned by a new member (both made here)."""
    campaign = await create_campaign(api, conversion_event="signup")
    owner = await create_member(api)
    body = {"campaign_id": campaign["id"], "name": "Insiders", "owner_id": owner["id"], **fields}
    return ok(await api.post("/v1/groups", json=body), 201)


async def click(
    api: httpx.AsyncClient, slug: str, code: str, channel: str = "whatsapp", **params: str
) -> tuple[str, str]:
    """Follow an invite link as a fresh browser; return (click id, device cookie)."""
    api.cookies.clear()
    response = await api.get(f"/r/{slug}/{code}", params={"ch": channel, **params})
    assert response.status_code == 302, response.text
    click_id = response.headers["location"].split("ll_click=")[1].split("&")[0]
    device = response.cookies.get("ll_did")
    api.cookies.clear()
    return click_id, device


async def invite(
    api: httpx.AsyncClient,
    slug: str,
    inviter: dict[str, Any],
    *,
    market: str = "sea",
    email: str | None = None,
    channel: str = "whatsapp",
    ip: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    click_id, device = await click(api, slug, inviter["referral_code"], channel)
    return await create_member(
        api, market=market, email=email, device_id=device, ip=ip, referral={"click_id": click_id}, **extra
    )


async def send_order(
    api: httpx.AsyncClient,
    slug: str,
    secret: str,
    kind: str,
    order_id: str,
    customer_id: str,
    total_minor: int = 5000,
    *,
    event_id: str | None = None,
    **kw: Any,
) -> httpx.Response:
    body = order_event(
        event_id or f"evt-{order_id}-{kind}-{next(_seq)}", kind, order_id, customer_id, total_minor, **kw
    )
    return await api.post("/v1/webhooks/orders", content=body, headers=signed_order_headers(slug, secret, body))


# --- service-level factories: rows made through the services in the caller's session, typed ---------------


async def member_row(
    session: AsyncSession,
    shop: Shop,
    *,
    market: str = "sea",
    email: str | None = None,
    external_id: str | None = None,
    display_name: str | None = None,
) -> Member:
    """A member made by the members service in ``session`` (flushed, not committed), as the API would make it."""
    n = next(_seq)
    return await member_service.create_member(
        session,
        shop,
        external_id=external_id or f"cust-{n}",
        email=email or f"{_letters()}@example.com",
        market=market,
        display_name=display_name,
    )


async def campaign_row(session: AsyncSession, shop: Shop, **overrides: Any) -> Campaign:
    """An active first-order campaign (points for the inviter, credit for the invitee) made by the service."""
    body: dict[str, Any] = {
        "name": "Friends",
        "status": "active",
        "conversion_event": "first_paid_order",
        "inviter_reward": {"type": "points", "amount": 500},
        "invitee_reward": {"type": "credit", "amount": 300, "currency": "USD"},
        **overrides,
    }
    return await referral_service.create_campaign(session, shop.id, CampaignCreate.model_validate(body))
