"""Market terms (return window, points expiry) that the reward path reads on every conversion, cached briefly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.batching import TTLCache
from liveloop.kit.errors import Unprocessable
from liveloop.kit.money import is_currency
from liveloop.kit.time import add_months, is_valid_zone
from liveloop.models import Market


@dataclass(frozen=True, slots=True)
class MarketTerms:
    return_window_days: int
    points_expiry_months: int


DEFAULT_TERMS = MarketTerms(return_window_days=14, points_expiry_months=12)

# A changed market reaches the other processes within this many seconds; this process sees it at once.
TERMS_TTL_SECONDS = 30.0
_terms: TTLCache[tuple[str, str], MarketTerms] = TTLCache(TERMS_TTL_SECONDS)

_TERMS_QUERY = select(Market.return_window_days, Market.points_expiry_months).where(
    Market.shop_id == bindparam("shop_id"), Market.code == bindparam("code")
)


async def terms(session: AsyncSession, shop_id: str, code: str) -> MarketTerms:
    """Return window and points expiry of a shop's market (the defaults for a market the shop lacks)."""
    key = (shop_id, code)
    found = _terms.get(key)
    if found is None:
        row = (await session.execute(_TERMS_QUERY, {"shop_id": shop_id, "code": code})).first()
        found = MarketTerms(row[0], row[1]) if row is not None else DEFAULT_TERMS
        _terms.put(key, found)
    return found


async def points_expiry(session: AsyncSession, shop_id: str, market_code: str, earned_at: datetime) -> datetime:
    """When points earned at ``earned_at`` in this market expire (its ``points_expiry_months`` later)."""
    return add_months(earned_at, (await terms(session, shop_id, market_code)).points_expiry_months)


def update_market(market: Market, changes: dict[str, Any]) -> Market:
    if "timezone" in changes and not is_valid_zone(changes["timezone"]):
        raise Unprocessable("timezone must be an IANA zone such as 'Asia/Manila'.", code="invalid_timezone")
    if "currency" in changes and not is_currency(changes["currency"]):
        raise Unprocessable("currency must be an ISO 4217 code such as THB.", code="invalid_currency")
    for key, value in changes.items():
        setattr(market, key, value)
    _terms.forget((market.shop_id, market.code))
    return market
