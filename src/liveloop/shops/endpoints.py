"""The shop (its settings and Shopify secret) and its API keys."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import PathId
from liveloop.models import ApiKeyScope
from liveloop.shops import service
from liveloop.shops.auth import Operator, requires
from liveloop.shops.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ShopifySecretIn, ShopOut, ShopUpdate

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["shop"])


@router.get("/shop", response_model=ShopOut)
async def get_shop(op: Operator = requires(ApiKeyScope.CAMPAIGNS_READ)) -> ShopOut:
    return ShopOut.model_validate(op.shop)


@router.put("/shop/shopify-secret", response_model=ShopOut)
async def set_shopify_secret(
    body: ShopifySecretIn, session: Session, op: Operator = requires(ApiKeyScope.ADMIN)
) -> ShopOut:
    """Set or rotate the secret that verifies `POST /v1/webhooks/shopify/{shop}`. It is never returned.

    After a rotation the previous secret keeps verifying for `grace_seconds`, so deliveries Shopify signed
    before the switch are not lost."""
    shop = await service.set_shopify_secret(session, op.shop, body.secret, grace=timedelta(seconds=body.grace_seconds))
    return ShopOut.model_validate(shop)


@router.patch("/shop", response_model=ShopOut)
async def update_shop(body: ShopUpdate, session: Session, op: Operator = requires(ApiKeyScope.ADMIN)) -> ShopOut:
    """Change the shop's name, landing page and the storefront origins allowed to embed its viewer page."""
    shop = await service.update_shop(session, op.shop, **body.model_dump(exclude_unset=True, exclude_none=True))
    return ShopOut.model_validate(shop)


@router.get("/api-keys", response_model=Page[ApiKeyOut])
async def list_keys(session: Session, page: Pagination, op: Operator = requires(ApiKeyScope.ADMIN)) -> Page[ApiKeyOut]:
    """The shop's API keys (never their secrets), oldest first."""
    items, cursor = await service.page_api_keys(session, op.shop_id, page)
    return Page[ApiKeyOut](items=[ApiKeyOut.model_validate(k) for k in items], next_cursor=cursor)


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
async def create_key(body: ApiKeyCreate, session: Session, op: Operator = requires(ApiKeyScope.ADMIN)) -> ApiKeyCreated:
    row, key = await service.create_api_key(session, op.shop, name=body.name, scopes=body.scopes)
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=key)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_key(key_id: PathId, session: Session, op: Operator = requires(ApiKeyScope.ADMIN)) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await service.revoke_api_key(session, op.shop_id, key_id))
