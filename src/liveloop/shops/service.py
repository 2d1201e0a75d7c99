"""Shops (tenants) and their API keys."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.errors import Conflict, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import is_valid_zone, utc_now
from liveloop.markets.presets import PRESETS
from liveloop.markets.repository import MarketRepository
from liveloop.models import ApiKey, Market, Shop
from liveloop.shops.auth import SCOPE_NAMES, generate_key
from liveloop.shops.repository import ApiKeyRepository, ShopRepository

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


async def create_shop(
    session: AsyncSession,
    *,
    slug: str,
    name: str,
    landing_url: str,
    reporting_timezone: str = "UTC",
    default_market: str = "na",
    shopify_secret: str | None = None,
) -> Shop:
    if not _SLUG.match(slug):
        raise Unprocessable(
            "A shop slug is 2-63 lower-case letters, digits or dashes, e.g. 'acme-beauty'.",
            code="invalid_slug",
        )
    if not is_valid_zone(reporting_timezone):
        raise Unprocessable(
            f"{reporting_timezone!r} is not an IANA time zone; use one like 'Asia/Bangkok'.",
            code="invalid_timezone",
        )
    if default_market not in PRESETS:
        raise Unprocessable(f"default_market must be one of {sorted(PRESETS)}.", code="unknown_market")
    if shopify_secret is not None:
        check_shopify_secret(shopify_secret)
    shops = ShopRepository(session)
    if await shops.slug_taken(slug):
        raise Conflict(f"A shop with the slug {slug!r} exists already; pick another.", code="shop_exists")
    shop = Shop(
        id=new_id("shop"),
        slug=slug,
        name=name,
        landing_url=landing_url,
        reporting_timezone=reporting_timezone,
        default_market=default_market,
        webhook_secret="whsec_" + secrets.token_urlsafe(32),
        shopify_secret=shopify_secret,
    )
    await shops.add(shop)
    markets = MarketRepository(session)
    markets.add_all(Market(id=new_id("mkt"), shop_id=shop.id, code=code, **preset) for code, preset in PRESETS.items())
    await session.flush()
    return shop


_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` (http or https, lower case, default port dropped), or 422 ``invalid_origin``."""
    problem = Unprocessable(
        f"{value!r} is not an origin. Give scheme://host[:port] with http or https and nothing after it, "
        "e.g. 'https://shop.example' or 'https://shop.example:8443'.",
        code="invalid_origin",
    )
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or not parts.hostname
    ):
        raise problem
    try:
        port = parts.port
    except ValueError:
        raise problem from None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6
        if not re.fullmatch(r"[0-9a-f:.]+", host):
            raise problem
        host = f"[{host}]"
    elif not _HOSTNAME.match(host):
        raise problem
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def check_landing_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unprocessable(
            f"{value!r} is not a landing URL; give an http(s) URL such as 'https://shop.example/welcome'.",
            code="invalid_url",
        )
    return value


async def update_shop(
    session: AsyncSession,
    shop: Shop,
    *,
    name: str | None = None,
    landing_url: str | None = None,
    storefront_origins: list[str] | None = None,
) -> Shop:
    """Change a shop's display name, the page its invite links land on and the storefronts that may embed it."""
    if name is not None:
        shop.name = name
    if landing_url is not None:
        shop.landing_url = check_landing_url(landing_url)
    if storefront_origins is not None:
        shop.storefront_origins = list(dict.fromkeys(normalize_origin(o) for o in storefront_origins))
    await session.flush()
    return shop


async def get_shop_by_slug(session: AsyncSession, slug: str) -> Shop:
    """The shop with this slug, or 404 ``shop_not_found``."""
    return await ShopRepository(session).by_slug_or_raise(slug)


async def find_shop_by_slug(session: AsyncSession, slug: str) -> Shop | None:
    return await ShopRepository(session).by_slug(slug)


async def list_shops(session: AsyncSession) -> list[Shop]:
    """Every shop, oldest first."""
    return await ShopRepository(session).all_by_creation()


_SHOPIFY_SECRET = re.compile(r"^[\x21-\x7e]{8,128}$")
SHOPIFY_SECRET_GRACE_MAX = timedelta(days=7)


def check_shopify_secret(secret: str) -> str:
    if not _SHOPIFY_SECRET.match(secret):
        raise Unprocessable(
            "A Shopify secret is 8 to 128 visible ASCII characters without spaces: copy the app's "
            "client secret (or the webhook signing secret shown under Settings → Notifications) as it is.",
            code="invalid_shopify_secret",
        )
    return secret


async def set_shopify_secret(session: AsyncSession, shop: Shop, secret: str, *, grace: timedelta) -> Shop:
    """Set or rotate the secret that verifies the shop's Shopify webhooks.

    After a rotation the previous secret keeps verifying for ``grace`` (up to seven days), so deliveries
    signed before Shopify switched over are not lost; a grace of zero retires it at once (a leaked secret).
    """
    check_shopify_secret(secret)
    if not timedelta(0) <= grace <= SHOPIFY_SECRET_GRACE_MAX:
        raise Unprocessable("grace_seconds is 0 to 604800 (seven days).", code="invalid_grace")
    now = utc_now()
    previous = shop.shopify_secret
    if previous and previous != secret and grace > timedelta(0):
        shop.shopify_previous_secret = previous
        shop.shopify_previous_secret_expires_at = now + grace
    elif previous != secret or grace == timedelta(0):
        shop.shopify_previous_secret = None
        shop.shopify_previous_secret_expires_at = None
    shop.shopify_secret = secret
    await session.flush()
    return shop


def shopify_secrets(shop: Shop, now: datetime) -> list[str]:
    """The secrets a Shopify webhook of this shop may be signed with right now (current first)."""
    found = [shop.shopify_secret] if shop.shopify_secret else []
    expires = shop.shopify_previous_secret_expires_at
    if shop.shopify_previous_secret and expires is not None and now < expires:
        found.append(shop.shopify_previous_secret)
    return found


def check_scopes(scopes: Sequence[str]) -> list[str]:
    """The scopes' names, sorted and each once; 422 ``invalid_scopes`` for none or one that does not exist."""
    unknown = sorted(set(scopes) - set(SCOPE_NAMES))
    if unknown or not scopes:
        raise Unprocessable(
            f"Unknown scopes {unknown}; choose from {SCOPE_NAMES}."
            if unknown
            else f"Give at least one scope; choose from {SCOPE_NAMES}.",
            code="invalid_scopes",
        )
    return sorted({str(scope) for scope in scopes})


async def create_api_key(session: AsyncSession, shop: Shop, *, name: str, scopes: Sequence[str]) -> tuple[ApiKey, str]:
    key, prefix, digest = generate_key()
    row = ApiKey(
        id=new_id("key"), shop_id=shop.id, name=name, prefix=prefix, key_hash=digest, scopes=check_scopes(scopes)
    )
    return await ApiKeyRepository(session).add(row), key


async def list_api_keys(session: AsyncSession, shop_id: str) -> list[ApiKey]:
    return await ApiKeyRepository(session).all_of(shop_id)


async def page_api_keys(session: AsyncSession, shop_id: str, page: PageRequest) -> tuple[list[ApiKey], str | None]:
    return await ApiKeyRepository(session).page_of(shop_id, page)


async def revoke_api_key(session: AsyncSession, shop_id: str, key_id: str) -> ApiKey:
    """Revoke the key with this id (``key_…``) or lookup prefix (``ll_…``); revoking twice changes nothing."""
    row = await ApiKeyRepository(session).by_id_or_prefix_or_raise(shop_id, key_id)
    if row.revoked_at is None:
        row.revoked_at = utc_now()
    await session.flush()
    return row
