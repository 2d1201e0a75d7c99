"""The coupons' service and repository, called directly: lookups per shop, the conditional updates, enums."""

from __future__ import annotations

import pytest

from liveloop.coupons import service
from liveloop.coupons.repository import CouponRepository
from liveloop.kit.db import transaction
from liveloop.kit.errors import Conflict, NotFound
from liveloop.models import CouponBatch, CouponKind, CouponRedemptionStatus
from tests.conftest import ShopCtx, make_shop
from tests.factories import create_member


async def _batch(shop: ShopCtx, *, count: int = 1, max_uses_per_coupon: int = 1) -> tuple[CouponBatch, list[str]]:
    async with transaction(shop.app.state.sessions) as s:
        batch = await service.create_batch(
            s,
            shop.shop.id,
            name="Ten off",
            kind="fixed",
            count=count,
            amount_minor=1000,
            currency="USD",
            max_uses_per_coupon=max_uses_per_coupon,
            max_uses_per_member=max_uses_per_coupon,
        )
        codes = [c.code for c in await service.first_codes(s, batch.id, limit=count)]
    return batch, codes


async def test_another_shops_batch_coupon_and_redemption_are_not_found(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    batch, [code] = await _batch(shop)
    member = await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        redemption = await service.redeem(
            s, shop.shop.id, code, member_id=member["id"], order_total_minor=5000, currency="USD", idempotency_key="k"
        )
    async with transaction(shop.app.state.sessions) as s:
        assert (await service.get_batch(s, shop.shop.id, batch.id)).id == batch.id
        with pytest.raises(NotFound) as refused:
            await service.get_batch(s, other.shop.id, batch.id)
        assert (refused.value.code, refused.value.message) == (
            "coupon_batch_not_found",
            "No such coupon batch in this shop.",
        )
        with pytest.raises(NotFound) as refused:
            await service.get_coupon(s, other.shop.id, code)
        assert refused.value.code == "coupon_not_found"
        assert refused.value.message == f"No coupon {code!r} in this shop; check the code for typos."
        with pytest.raises(NotFound) as refused:
            await service.rollback(s, other.shop.id, redemption.id)
        assert (refused.value.code, refused.value.message) == (
            "redemption_not_found",
            "No such redemption in this shop.",
        )
    async with transaction(shop.app.state.sessions) as s:
        assert (await service.get_coupon(s, shop.shop.id, code)).uses == 1  # the other shop rolled nothing back
    await other.api.aclose()


async def test_a_code_is_found_whatever_its_case_and_surrounding_spaces(shop: ShopCtx) -> None:
    _, [code] = await _batch(shop)
    async with transaction(shop.app.state.sessions) as s:
        assert (await service.get_coupon(s, shop.shop.id, f"  {code.lower()} ")).code == code


async def test_a_use_is_taken_only_while_one_is_left(shop: ShopCtx) -> None:
    _, [code] = await _batch(shop, max_uses_per_coupon=2)
    async with transaction(shop.app.state.sessions) as s:
        coupon = await service.get_coupon(s, shop.shop.id, code)
        coupons = CouponRepository(s)
        assert [await coupons.take_use(coupon.id) for _ in range(3)] == [True, True, False]


async def test_a_coupon_bound_to_one_member_cannot_be_bound_to_another(shop: ShopCtx) -> None:
    _, [code] = await _batch(shop)
    first, second = await create_member(shop.api), await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        assert (await service.bind(s, shop.shop.id, code, first["id"])).member_id == first["id"]
        assert (await service.bind(s, shop.shop.id, code, first["id"])).member_id == first["id"]  # again: no change
        with pytest.raises(Conflict) as refused:
            await service.bind(s, shop.shop.id, code, second["id"])
        assert refused.value.code == "coupon_bound_to_other"


async def test_kinds_and_redemption_statuses_read_back_as_their_enums(shop: ShopCtx) -> None:
    batch, [code] = await _batch(shop)
    member = await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        redemption = await service.redeem(
            s, shop.shop.id, code, member_id=member["id"], order_total_minor=5000, currency="USD", idempotency_key="k"
        )
    assert redemption.status is CouponRedemptionStatus.REDEEMED
    async with transaction(shop.app.state.sessions) as s:
        assert (await service.get_batch(s, shop.shop.id, batch.id)).kind is CouponKind.FIXED
        rolled = await service.rollback(s, shop.shop.id, redemption.id)
        assert rolled.status is CouponRedemptionStatus.ROLLED_BACK
        again = await service.rollback(s, shop.shop.id, redemption.id)
        assert again.rolled_back_at == rolled.rolled_back_at
        assert (await service.get_coupon(s, shop.shop.id, code)).uses == 0  # given back once, not twice
