"""The shop's markets: list them, edit one (``/v1/markets``).

API keys belong to shops, a layer above markets, so this module does not import the authentication: the app
builds the routes with it (``routes(shops.auth.requires)``), and every route still declares its scope here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from fastapi import APIRouter

from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.markets import service
from liveloop.markets.schemas import MarketCodeInPath, MarketOut, MarketUpdate
from liveloop.models import ApiKeyScope


class ShopOperator(Protocol):
    """The authenticated operator, as far as markets need it: whose shop it acts for."""

    @property
    def shop_id(self) -> str: ...


# ``requires(scope)``: the dependency that authenticates an operator holding ``scope`` (see shops.auth).
Requires = Callable[[ApiKeyScope], Any]


def routes(requires: Requires) -> APIRouter:
    """The markets' routes, authenticated by ``requires``."""
    router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["shop"])

    @router.get("/markets", response_model=list[MarketOut], tags=["markets"])
    async def list_markets(
        session: Session, op: ShopOperator = requires(ApiKeyScope.CAMPAIGNS_READ)
    ) -> list[MarketOut]:
        return [MarketOut.model_validate(m) for m in await service.list_markets(session, op.shop_id)]

    @router.patch("/markets/{code}", response_model=MarketOut, tags=["markets"])
    async def update_market(
        code: MarketCodeInPath,
        body: MarketUpdate,
        session: Session,
        op: ShopOperator = requires(ApiKeyScope.ADMIN),
    ) -> MarketOut:
        market = await service.market_named_in_path(session, op.shop_id, code)
        return MarketOut.model_validate(await service.update_market(session, market, body))

    return router
