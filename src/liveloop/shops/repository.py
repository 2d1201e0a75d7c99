"""Every statement about shops, their API keys and their idempotency records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select

from liveloop.kit.errors import NotFound
from liveloop.kit.pagination import PageRequest
from liveloop.kit.repository import Repository
from liveloop.models import ApiKey, IdempotencyRecord, Shop
from liveloop.shops.errors import ShopErrorCode


class ShopRepository(Repository[Any]):
    """The shops themselves. A shop is the tenant: its own row is the only one "of this shop"."""

    model = Shop
    not_found = ("shop_not_found", "No such shop; list shops with `liveloop shop list`.")

    def scoped(self, shop_id: str) -> Select[Any]:
        """``SELECT shop WHERE id = :shop_id``: the shop's own row (so ``get(shop_id, shop_id)`` finds it)."""
        return select(Shop).where(Shop.id == shop_id)

    async def by_slug(self, slug: str) -> Shop | None:
        return (await self.session.execute(select(Shop).where(Shop.slug == slug))).scalar_one_or_none()

    async def by_slug_or_raise(self, slug: str) -> Shop:
        shop = await self.by_slug(slug)
        if shop is None:
            raise NotFound(
                f"No shop with the slug {slug!r}; list shops with `liveloop shop list`.",
                code=ShopErrorCode.SHOP_NOT_FOUND,
            )
        return shop

    async def slug_taken(self, slug: str) -> bool:
        return (await self.session.execute(select(Shop.id).where(Shop.slug == slug))).first() is not None

    async def all_by_creation(self) -> list[Shop]:
        """Every shop, oldest first."""
        return list((await self.session.execute(select(Shop).order_by(Shop.created_at))).scalars())


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey
    not_found = (
        "api_key_not_found",
        "No such API key in this shop; `liveloop apikey list` shows each key's id and prefix.",
    )

    async def with_shop_by_prefix(self, prefix: str) -> tuple[ApiKey, Shop] | None:
        """The key with this lookup prefix and its shop (what authenticating a request reads), or None."""
        row = (
            await self.session.execute(
                select(ApiKey, Shop).join(Shop, Shop.id == ApiKey.shop_id).where(ApiKey.prefix == prefix)
            )
        ).one_or_none()
        return None if row is None else (row.ApiKey, row.Shop)

    async def by_id_or_prefix_or_raise(self, shop_id: str, key: str) -> ApiKey:
        """This shop's key whose id (``key_…``) or lookup prefix (``ll_…``) is ``key``, or 404 ``api_key_not_found``."""
        found = await self.one_or_none(self.scoped(shop_id).where(or_(ApiKey.id == key, ApiKey.prefix == key)))
        if found is None:
            raise NotFound(self.not_found[1], code=ShopErrorCode.API_KEY_NOT_FOUND)
        return found

    async def all_of(self, shop_id: str) -> list[ApiKey]:
        """The shop's keys, oldest first."""
        return await self.all(self.scoped(shop_id).order_by(ApiKey.created_at))

    async def page_of(self, shop_id: str, page: PageRequest) -> tuple[list[ApiKey], str | None]:
        """A page of the shop's keys, oldest first."""
        return await self.paginate(self.scoped(shop_id), page, [ApiKey.created_at, ApiKey.id])


class IdempotencyRepository(Repository[IdempotencyRecord]):
    model = IdempotencyRecord

    async def find(self, shop_id: str, scope: str, key: str) -> IdempotencyRecord | None:
        """The record of this shop's ``Idempotency-Key`` for this method and path, if any."""
        return await self.one_or_none(
            self.scoped(shop_id).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        )

    async def by_id(self, record_id: str) -> IdempotencyRecord | None:
        """The record with this id (from the session when it is loaded already)."""
        return await self.session.get(IdempotencyRecord, record_id)
