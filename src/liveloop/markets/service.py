"""Market terms (return window, points expiry) that the reward path reads on every conversion, cached briefly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.batching import TTLCache
from liveloop.kit.errors import NotFound, Unprocessable
from liveloop.kit.money import is_currency
from liveloop.kit.time import add_months, is_valid_zone
from liveloop.markets.repository import MarketRepository
from liveloop.markets.schemas import MarketUpdate
from liveloop.models import ConsentRegime, Market


@dataclass(frozen=True, slots=True)
class MarketTerms:
    return_window_days: int
    points_expiry_months: int


DEFAULT_TERMS = MarketTerms(return_window_days=14, points_expiry_months=12)

# A changed market reaches the other processes within this many seconds; this process sees it at once.
TERMS_TTL_SECONDS = 30.0
_terms: TTLCache[tuple[str, str], MarketTerms] = TTLCache(TERMS_TTL_SECONDS)


async def terms(session: AsyncSession, shop_id: str, code: str) -> MarketTerms:
    """Return window and points expiry of a shop's market (the defaults for a market the shop lacks)."""
    key = (shop_id, code)
    found = _terms.get(key)
    if found is None:
        row = await MarketRepository(session).terms(shop_id, code)
        found = MarketTerms(*row) if row is not None else DEFAULT_TERMS
        _terms.put(key, found)
    return found


async def points_expiry(session: AsyncSession, shop_id: str, market_code: str, earned_at: datetime) -> datetime:
    """When points earned at ``earned_at`` in this market expire (its ``points_expiry_months`` later)."""
    return add_months(earned_at, (await terms(session, shop_id, market_code)).points_expiry_months)


def _no_such_market(code: str) -> str:
    return f"This shop has no market {code!r}; list them with GET /v1/markets."


async def market_named_in_body(session: AsyncSession, shop_id: str, code: str) -> Market:
    """The shop's market with this code, named in a request body: 422 ``unknown_market`` when it has none."""
    market = await MarketRepository(session).by_code(shop_id, code)
    if market is None:
        raise Unprocessable(_no_such_market(code), code="unknown_market")
    return market


async def market_named_in_path(session: AsyncSession, shop_id: str, code: str) -> Market:
    """The shop's market with this code, named in a URL path: 404 ``market_not_found`` when it has none."""
    market = await MarketRepository(session).by_code(shop_id, code)
    if market is None:
        raise NotFound(_no_such_market(code), code="market_not_found")
    return market


async def check_known(session: AsyncSession, shop_id: str, codes: Iterable[str]) -> None:
    """Every code names one of the shop's markets (a body's list of markets): else 422 ``unknown_market``."""
    known = await MarketRepository(session).codes(shop_id)
    unknown = sorted(set(codes) - known)
    if unknown:
        raise Unprocessable(f"Unknown markets {unknown}; this shop has {sorted(known)}.", code="unknown_market")


async def list_markets(session: AsyncSession, shop_id: str) -> list[Market]:
    return await MarketRepository(session).all_of(shop_id)


async def update_market(session: AsyncSession, market: Market, update: MarketUpdate) -> Market:
    """Change what the update gives (a field left out or null stays as it is)."""
    changes = update.model_dump(exclude_none=True)
    if "timezone" in changes and not is_valid_zone(changes["timezone"]):
        raise Unprocessable("timezone must be an IANA zone such as 'Asia/Manila'.", code="invalid_timezone")
    if "currency" in changes and not is_currency(changes["currency"]):
        raise Unprocessable("currency must be an ISO 4217 code such as THB.", code="invalid_currency")
    if "consent_regime" in changes:
        changes["consent_regime"] = ConsentRegime(changes["consent_regime"])
    for key, value in changes.items():
        setattr(market, key, value)
    _terms.forget((market.shop_id, market.code))
    await session.flush()
    return market
