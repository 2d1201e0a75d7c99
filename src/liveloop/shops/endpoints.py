from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from liveloop.kit.http import Session, ShownOnce, UnitOfWorkRoute
from liveloop.markets import service as markets
from liveloop.shops import service
from liveloop.shops.auth import SCOPES, Operator, requires

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["shop"])


class ShopOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    slug: str
    name: str
    reporting_timezone: str
    default_market: str
    landing_url: str
    shopify_configured: bool = Field(description="Whether a Shopify secret is set (the secret is never shown)")
    storefront_origins: list[str] = Field(description="Origins whose pages may embed the viewer page")
    created_at: datetime


class ShopifySecretIn(BaseModel):
    secret: str = Field(
        min_length=8,
        max_length=128,
        description="The Shopify app's client secret (or the store's webhook signing secret); write-only",
        json_schema_extra={"writeOnly": True},
    )
    grace_seconds: int = Field(
        3600,
        ge=0,
        le=604800,
        description="How long the previous secret still verifies webhooks after a rotation; 0 retires it at once",
    )


class ShopUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    landing_url: str | None = Field(None, max_length=1000, description="Where invite links land (http or https)")
    storefront_origins: list[str] | None = Field(
        None,
        max_length=20,
        description="The shop's storefronts, as scheme://host[:port] (e.g. https://shop.example): only their pages "
        "may frame the viewer page (`/embed.js`). Replaces the list; [] allows no framing at all.",
    )


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, description=f"Any of: {', '.join(SCOPES)}")


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: ShownOnce = Field(description="Shown once; store it now")


class MarketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    currency: str
    timezone: str
    locales: list[str]
    consent_regime: str
    points_expiry_months: int
    return_window_days: int
    reward_presets: dict[str, Any]


class MarketUpdate(BaseModel):
    name: str | None = Field(None, max_length=100)
    currency: str | None = None
    timezone: str | None = None
    locales: list[str] | None = None
    consent_regime: str | None = Field(None, pattern="^(gdpr|ccpa|none)$")
    points_expiry_months: int | None = Field(None, ge=1, le=120)
    return_window_days: int | None = Field(None, ge=0, le=365)
    reward_presets: dict[str, Any] | None = None


@router.get("/shop", response_model=ShopOut)
async def get_shop(op: Operator = requires("campaigns:read")) -> Any:
    return op.shop


@router.put("/shop/shopify-secret", response_model=ShopOut)
async def set_shopify_secret(body: ShopifySecretIn, session: Session, op: Operator = requires("admin")) -> Any:
    """Set or rotate the secret that verifies `POST /v1/webhooks/shopify/{shop}`. It is never returned.

    After a rotation the previous secret keeps verifying for `grace_seconds`, so deliveries Shopify signed
    before the switch are not lost."""
    return await service.set_shopify_secret(session, op.shop, body.secret, grace=timedelta(seconds=body.grace_seconds))


@router.patch("/shop", response_model=ShopOut)
async def update_shop(body: ShopUpdate, session: Session, op: Operator = requires("admin")) -> Any:
    """Change the shop's name, landing page and the storefront origins allowed to embed its viewer page."""
    return await service.update_shop(session, op.shop, **body.model_dump(exclude_unset=True, exclude_none=True))


@router.get("/api-keys", response_model=list[ApiKeyOut])
async def list_keys(session: Session, op: Operator = requires("admin")) -> Any:
    return await service.list_api_keys(session, op.shop_id)


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
async def create_key(body: ApiKeyCreate, session: Session, op: Operator = requires("admin")) -> Any:
    row, key = await service.create_api_key(session, op.shop, name=body.name, scopes=body.scopes)
    return {**ApiKeyOut.model_validate(row).model_dump(), "key": key}


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_key(key_id: str, session: Session, op: Operator = requires("admin")) -> Any:
    return await service.revoke_api_key(session, op.shop_id, key_id)


@router.get("/markets", response_model=list[MarketOut], tags=["markets"])
async def list_markets(session: Session, op: Operator = requires("campaigns:read")) -> Any:
    return await service.list_markets(session, op.shop_id)


@router.patch("/markets/{code}", response_model=MarketOut, tags=["markets"])
async def update_market(code: str, body: MarketUpdate, session: Session, op: Operator = requires("admin")) -> Any:
    market = await service.get_market(session, op.shop_id, code)
    markets.update_market(market, body.model_dump(exclude_none=True))
    await session.flush()
    return market
