"""API types of markets."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

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
