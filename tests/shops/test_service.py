"""Shops, API keys and idempotency records through the service and repository, called directly."""

from __future__ import annotations

import pytest

from liveloop.kit.db import transaction
from liveloop.kit.errors import Forbidden, NotFound, Unprocessable
from liveloop.markets.presets import PRESETS
from liveloop.markets.repository import MarketRepository
from liveloop.models import ApiKeyScope, ConsentRegime, IdempotencyRecord
from liveloop.shops import service
from liveloop.shops.auth import SCOPE_NAMES, Operator, authorized
from liveloop.shops.repository import IdempotencyRepository
from tests.conftest import ShopCtx, make_shop


async def test_another_shops_api_key_is_not_found_by_id_or_prefix(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    async with transaction(shop.app.state.sessions) as s:
        theirs, _ = await service.create_api_key(s, other.shop, name="theirs", scopes=[ApiKeyScope.LIVE_READ])
    for key in (theirs.id, theirs.prefix):
        async with transaction(shop.app.state.sessions) as s:
            with pytest.raises(NotFound) as refused:
                await service.revoke_api_key(s, shop.shop.id, key)
        assert refused.value.code == "api_key_not_found"
    async with transaction(shop.app.state.sessions) as s:
        assert theirs.id in [k.id for k in await service.list_api_keys(s, other.shop.id)]
        assert theirs.id not in [k.id for k in await service.list_api_keys(s, shop.shop.id)]
        revoked = await service.revoke_api_key(s, other.shop.id, theirs.prefix)
    assert revoked.revoked_at is not None  # its own shop revokes it, by prefix as by id
    await other.api.aclose()


async def test_a_shop_is_found_by_its_slug_only(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    async with transaction(shop.app.state.sessions) as s:
        assert (await service.get_shop_by_slug(s, "rival")).id == other.shop.id
        assert await service.find_shop_by_slug(s, "nobody") is None
        with pytest.raises(NotFound) as refused:
            await service.get_shop_by_slug(s, "nobody")
        assert [x.slug for x in await service.list_shops(s)] == [shop.slug, "rival"]  # oldest first
    assert refused.value.code == "shop_not_found"
    assert "'nobody'" in refused.value.message
    await other.api.aclose()


async def test_a_new_shop_has_its_own_copy_of_every_preset_market(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as s:
        markets = {m.code: m for m in await MarketRepository(s).all_of(shop.shop.id)}
        with pytest.raises(Unprocessable) as refused:
            await service.create_shop(
                s, slug="moonshop", name="Moon", landing_url="https://moon.test/", default_market="moon"
            )
    assert set(markets) == set(PRESETS)
    assert markets["eu"].consent_regime is ConsentRegime.GDPR  # read back as the enum
    assert markets["sea"].consent_regime is ConsentRegime.NONE
    assert refused.value.code == "unknown_market"


def test_scopes_are_named_plainly_sorted_and_once() -> None:
    assert service.check_scopes(["members:read", ApiKeyScope.ADMIN, "members:read"]) == ["admin", "members:read"]
    assert all(type(s) is str for s in service.check_scopes([ApiKeyScope.LIVE_WRITE]))  # stored as plain text
    for scopes in (["members:raed"], []):
        with pytest.raises(Unprocessable) as refused:
            service.check_scopes(scopes)
        assert refused.value.code == "invalid_scopes"
        assert str(SCOPE_NAMES) in refused.value.message  # the names, not the enum's members
        assert "ApiKeyScope" not in refused.value.message
    assert sorted(scope.value for scope in ApiKeyScope) == SCOPE_NAMES


async def test_a_key_without_the_scope_is_told_which_one_it_lacks(shop: ShopCtx) -> None:
    operator = Operator(shop=shop.shop, key_id="key_x", scopes=frozenset({"members:read"}), shop_id=shop.shop.id)
    operator.require(ApiKeyScope.MEMBERS_READ)
    with pytest.raises(Forbidden) as refused:
        operator.require(ApiKeyScope.MEMBERS_WRITE)
    assert refused.value.code == "missing_scope"
    assert "lacks the scope 'members:write'" in refused.value.message
    assert "--scope members:write`" in refused.value.message
    Operator(shop=shop.shop, key_id="key_y", scopes=frozenset({"admin"}), shop_id=shop.shop.id).require(
        ApiKeyScope.LEDGER_WRITE
    )


def test_a_route_asking_for_a_scope_that_does_not_exist_fails_when_declared() -> None:
    with pytest.raises(ValueError, match="members:wirte"):
        authorized("members:wirte")


async def test_an_idempotency_key_is_looked_up_in_its_own_shop_only(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    record = IdempotencyRecord(
        id="idem_t1",
        shop_id=shop.shop.id,
        scope="POST /v1/members",
        key="k1",
        request_hash="h",
        status_code=0,
        response_body={},
    )
    async with transaction(shop.app.state.sessions) as s:
        await IdempotencyRepository(s).add(record)
    async with transaction(shop.app.state.sessions) as s:
        records = IdempotencyRepository(s)
        assert (await records.find(shop.shop.id, "POST /v1/members", "k1")) is not None
        assert await records.find(other.shop.id, "POST /v1/members", "k1") is None
        assert await records.find(shop.shop.id, "POST /v1/campaigns", "k1") is None
        assert (await records.by_id("idem_t1")) is not None
    await other.api.aclose()
