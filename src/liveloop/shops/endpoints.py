from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from liveloop.kit.http import Session, ShownOnce, UnitOfWorkRoute
from liveloop.kit.money import Currency
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import HTTP_URL_PATTERN, JSONObject, PathId, RequestModel, Timezone
from liveloop.markets import service as markets
from liveloop.markets.presets import PRESETS
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


# A landing page as the service accepts it (422 invalid_url otherwise): http(s) with a host.
LandingUrl = Annotated[str, Field(max_length=1000, json_schema_extra={"pattern": HTTP_URL_PATTERN + "[^/?#]"})]

# An origin as the service accepts it (422 invalid_origin otherwise): scheme://host[:port], nothing after.
ORIGIN = {"pattern": "^[hH][tT][tT][pP][sS]?://[^/?#@\\s]+/?$"}


class ShopifySecretIn(RequestModel):
    secret: str = Field(
        min_length=8,
        max_length=128,
        description="The Shopify app's client secret (or the store's webhook signing secret); write-only",
        # Checked by the service (422 invalid_shopify_secret); documented here for clients.
        json_schema_extra={"writeOnly": True, "pattern": "^[\\x21-\\x7e]{8,128}$"},
    )
    grace_seconds: int = Field(
        3600,
        ge=0,
        le=604800,
        description="How long the previous secret still verifies webhooks after a rotation; 0 retires it at once",
    )


class ShopUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    landing_url: LandingUrl | None = Field(None, description="Where invite links land (http or https)")
    storefront_origins: list[Annotated[str, Field(max_length=300, json_schema_extra=ORIGIN)]] | None = Field(
        None,
        max_length=20,
        description="The shop's storefronts, as scheme://host[:port] (e.g. https://shop.example): only their "
        "pages may frame the viewer page (`/embed.js`). Replaces the list; [] allows no framing at all.",
    )


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Annotated[str, Field(max_length=32, json_schema_extra={"enum": sorted(SCOPES)})]] = Field(
        min_length=1, max_length=len(SCOPES), description=f"Any of: {', '.join(SCOPES)}"
    )


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


class MarketUpdate(RequestModel):
    name: str | None = Field(None, max_length=100)
    currency: Currency | None = None
    timezone: Timezone | None = None
    locales: list[Annotated[str, Field(min_length=1, max_length=16)]] | None = Field(None, max_length=20)
    consent_regime: str | None = Field(None, pattern="^(gdpr|ccpa|none)$")
    points_expiry_months: int | None = Field(None, ge=1, le=120)
    return_window_days: int | None = Field(None, ge=0, le=365)
    reward_presets: JSONObject | None = None


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


@router.get("/api-keys", response_model=Page[ApiKeyOut])
async def list_keys(session: Session, page: Pagination, op: Operator = requires("admin")) -> Any:
    """The shop's API keys (never their secrets), oldest first."""
    items, cursor = await service.page_api_keys(session, op.shop_id, page)
    return {"items": items, "next_cursor": cursor}


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
async def create_key(body: ApiKeyCreate, session: Session, op: Operator = requires("admin")) -> Any:
    row, key = await service.create_api_key(session, op.shop, name=body.name, scopes=body.scopes)
    return {**ApiKeyOut.model_validate(row).model_dump(), "key": key}


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_key(key_id: PathId, session: Session, op: Operator = requires("admin")) -> Any:
    return await service.revoke_api_key(session, op.shop_id, key_id)


@router.get("/markets", response_model=list[MarketOut], tags=["markets"])
async def list_markets(session: Session, op: Operator = requires("campaigns:read")) -> Any:
    return await markets.list_markets(session, op.shop_id)


@router.patch("/markets/{code}", response_model=MarketOut, tags=["markets"])
async def update_market(
    code: Annotated[str, Path(max_length=16, json_schema_extra={"enum": sorted(PRESETS)})],
    body: MarketUpdate,
    session: Session,
    op: Operator = requires("admin"),
) -> Any:
    market = await markets.market_named_in_path(session, op.shop_id, code)
    markets.update_market(market, body.model_dump(exclude_none=True))
    await session.flush()
    return market
