"""Error codes of markets."""

from __future__ import annotations

from liveloop.kit.errors import ErrorCode


class MarketErrorCode(ErrorCode):
    """Markets: the per-shop data of a region (currency, time zone, presets)."""

    UNKNOWN_MARKET = (
        "unknown_market",
        422,
        "A market named in the body is not one of this shop's markets.",
        "Use a market code the shop has (`sea`, `na`, `eu`, `me` by default); `GET /v1/markets` lists them.",
    )
    MARKET_NOT_FOUND = (
        "market_not_found",
        404,
        "The shop has no market with the code in the path.",
        "List the shop's markets with `GET /v1/markets` and use one of their codes.",
    )
