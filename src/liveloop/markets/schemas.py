"""API types of markets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from liveloop.kit.money import Currency
from liveloop.kit.schemas import JSONObject, RequestModel, Timezone
from liveloop.markets.presets import PRESETS

# A market's code. Every shop has the preset markets; an unknown code answers 422 unknown_market (404 in a path).
MarketCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=16,
        description=f"A market of the shop: {', '.join(sorted(PRESETS))}",
        json_schema_extra={"enum": sorted(PRESETS)},
    ),
]

# A market's code in a URL path (an unknown one answers 404 market_not_found).
MarketCodeInPath = Annotated[str, Path(max_length=16, json_schema_extra={"enum": sorted(PRESETS)})]


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
