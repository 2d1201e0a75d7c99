"""Every statement about markets."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select

from liveloop.kit.repository import Repository
from liveloop.models import Market

_TERMS = select(Market.return_window_days, Market.points_expiry_months).where(
    Market.shop_id == bindparam("shop_id"), Market.code == bindparam("code")
)


class MarketRepository(Repository[Market]):
    model = Market
    not_found = ("market_not_found", "This shop has no such market; list them with GET /v1/markets.")

    async def by_code(self, shop_id: str, code: str) -> Market | None:
        return await self.one_or_none(self.scoped(shop_id).where(Market.code == code))

    async def all_of(self, shop_id: str) -> list[Market]:
        """The shop's markets, by code."""
        return await self.all(self.scoped(shop_id).order_by(Market.code))

    async def codes(self, shop_id: str) -> set[str]:
        return set((await self.session.execute(select(Market.code).where(Market.shop_id == shop_id))).scalars())

    async def terms(self, shop_id: str, code: str) -> tuple[int, int] | None:
        """(return window in days, points expiry in months) of one market, or None when the shop lacks it."""
        row = (await self.session.execute(_TERMS, {"shop_id": shop_id, "code": code})).first()
        return None if row is None else (row[0], row[1])

    def add_all(self, markets: Iterable[Market]) -> None:
        self.session.add_all(list(markets))
