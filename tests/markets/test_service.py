"""Markets through the service and repository, called directly: lookups by code per shop, edits, terms."""

from __future__ import annotations

import pytest

from liveloop.kit.db import transaction
from liveloop.kit.errors import NotFound, Unprocessable
from liveloop.markets import service
from liveloop.markets.repository import MarketRepository
from liveloop.markets.schemas import MarketUpdate
from liveloop.models import ConsentRegime
from tests.conftest import ShopCtx, make_shop


async def test_a_code_names_this_shops_market_and_an_unknown_one_is_refused_by_where_it_was_named(
    shop: ShopCtx,
) -> None:
    other = await make_shop(shop.app, slug="rival")
    async with transaction(shop.app.state.sessions) as s:
        mine = await service.market_named_in_path(s, shop.shop.id, "eu")
        theirs = await service.market_named_in_body(s, other.shop.id, "eu")
        assert mine.shop_id == shop.shop.id
        assert theirs.shop_id == other.shop.id
        assert mine.id != theirs.id  # every shop has its own copy
        with pytest.raises(NotFound) as in_path:
            await service.market_named_in_path(s, shop.shop.id, "moon")
        with pytest.raises(Unprocessable) as in_body:
            await service.market_named_in_body(s, shop.shop.id, "moon")
        with pytest.raises(Unprocessable) as in_list:
            await service.check_known(s, shop.shop.id, ["sea", "moon", "mars"])
        await service.check_known(s, shop.shop.id, ["sea", "na"])
        assert await MarketRepository(s).get(shop.shop.id, theirs.id) is None  # another shop's id: not found
    assert in_path.value.code == "market_not_found"
    assert in_body.value.code == "unknown_market"
    assert in_list.value.code == "unknown_market"
    assert "['mars', 'moon']" in in_list.value.message
    await other.api.aclose()


async def test_an_edit_changes_what_it_gives_and_the_terms_follow_at_once(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as s:
        before = await service.terms(s, shop.shop.id, "na")
        market = await service.market_named_in_path(s, shop.shop.id, "na")
        update = MarketUpdate(consent_regime="gdpr", return_window_days=45)
        await service.update_market(s, market, update)
        with pytest.raises(Unprocessable) as refused:  # the service checks what the schema checks too
            await service.update_market(s, market, MarketUpdate.model_construct(timezone="Mars/Olympus"))
    assert refused.value.code == "invalid_timezone"
    async with transaction(shop.app.state.sessions) as s:
        market = await service.market_named_in_path(s, shop.shop.id, "na")
        after = await service.terms(s, shop.shop.id, "na")
    assert market.consent_regime is ConsentRegime.GDPR
    assert (market.name, market.currency) == ("North America", "USD")  # left as they were
    assert (before.return_window_days, after.return_window_days) == (30, 45)
    assert after.points_expiry_months == before.points_expiry_months
