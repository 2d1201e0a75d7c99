"""API models of the shop, its settings and its API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from liveloop.kit.http import ShownOnce
from liveloop.kit.schemas import HTTP_URL_PATTERN, RequestModel
from liveloop.shops.auth import SCOPE_NAMES, SCOPES


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
    # Checked by the service (422 invalid_scopes); listed here so clients see the choices.
    scopes: list[Annotated[str, Field(max_length=32, json_schema_extra={"enum": SCOPE_NAMES})]] = Field(
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
