from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from liveloop.events import service as events
from liveloop.kit.errors import Unprocessable
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import JSONObject, PathId, QueryText, RequestModel
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
    created_at: datetime


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Annotated[str, Field(max_length=32)]] = Field(
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
    key: str = Field(description="Shown once; store it now")


class EndpointCreate(RequestModel):
    url: str = Field(max_length=2000)
    event_types: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=lambda: ["*"], max_length=50)


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="Verify X-Liveloop-Signature with it; shown once")


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
    currency: str | None = Field(None, max_length=3)
    timezone: str | None = Field(None, max_length=64)
    locales: list[Annotated[str, Field(min_length=1, max_length=16)]] | None = Field(None, max_length=20)
    consent_regime: str | None = Field(None, pattern="^(gdpr|ccpa|none)$")
    points_expiry_months: int | None = Field(None, ge=1, le=120)
    return_window_days: int | None = Field(None, ge=0, le=365)
    reward_presets: JSONObject | None = None


@router.get("/shop", response_model=ShopOut)
async def get_shop(op: Operator = requires("campaigns:read")) -> Any:
    return op.shop


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


@router.get("/webhook-endpoints", response_model=Page[EndpointOut])
async def list_endpoints(session: Session, page: Pagination, op: Operator = requires("admin")) -> Any:
    items, cursor = await service.list_webhook_endpoints(session, op.shop_id, page)
    return {"items": items, "next_cursor": cursor}


@router.post("/webhook-endpoints", response_model=EndpointCreated, status_code=201)
async def create_endpoint(body: EndpointCreate, session: Session, op: Operator = requires("admin")) -> Any:
    unknown = sorted(set(body.event_types) - set(events.EVENT_TYPES) - {"*"})
    if unknown:
        raise Unprocessable(
            f"Unknown event types {unknown}; use '*' or some of {list(events.EVENT_TYPES)}.", code="unknown_event_type"
        )
    endpoint = await service.add_webhook_endpoint(session, op.shop_id, url=body.url, event_types=body.event_types)
    return {**EndpointOut.model_validate(endpoint).model_dump(), "secret": endpoint.secret}


class EventOut(BaseModel):
    id: str
    type: str
    created_at: str
    data: dict[str, Any]


@router.get("/events", response_model=Page[EventOut])
async def list_events(
    session: Session,
    page: Pagination,
    type: Annotated[str | None, QueryText(64, "Only events of this type, such as reward.granted")] = None,
    op: Operator = requires("admin"),
) -> Any:
    """The shop's events (what its webhooks receive), newest first."""
    found, cursor = await events.list_events(session, op.shop_id, page, event_type=type)
    return {"items": [events.envelope(e) for e in found], "next_cursor": cursor}


@router.get("/markets", response_model=list[MarketOut], tags=["markets"])
async def list_markets(session: Session, op: Operator = requires("campaigns:read")) -> Any:
    return await service.list_markets(session, op.shop_id)


@router.patch("/markets/{code}", response_model=MarketOut, tags=["markets"])
async def update_market(
    code: Annotated[str, Path(max_length=16)], body: MarketUpdate, session: Session, op: Operator = requires("admin")
) -> Any:
    market = await service.get_market(session, op.shop_id, code)
    markets.update_market(market, body.model_dump(exclude_none=True))
    await session.flush()
    return market
