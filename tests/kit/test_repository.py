"""The query layer's base: tenant-scoped lookups, typed rowcounts, the FOR UPDATE decision, keyset pages."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from liveloop.kit.db import transaction
from liveloop.kit.errors import NotFound
from liveloop.kit.pagination import PageRequest
from liveloop.kit.repository import Repository, changed, locked, locks
from liveloop.models import Member
from tests.conftest import ShopCtx, make_shop
from tests.factories import campaign_row, member_row


class MemberRows(Repository[Member]):
    model = Member
    not_found = ("member_not_found", "No such member in this shop.")


async def test_a_row_is_found_only_for_its_own_shop(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    async with transaction(shop.app.state.sessions) as session:
        mine = await member_row(session, shop.shop)
        theirs = await member_row(session, other.shop)
        rows = MemberRows(session)
        found = await rows.get_or_raise(shop.shop.id, mine.id)
        assert found is mine  # the session's own row, not a copy
        assert await rows.get(shop.shop.id, theirs.id) is None  # another shop's id: not found, not forbidden
        with pytest.raises(NotFound) as refused:
            await rows.get_or_raise(shop.shop.id, theirs.id)
        assert refused.value.code == "member_not_found"
        assert await rows.get(other.shop.id, theirs.id, lock=True) is theirs
    await other.api.aclose()


async def test_changed_counts_the_rows_a_statement_touched(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as session:
        first = await member_row(session, shop.shop)
        await member_row(session, shop.shop)
        rows = MemberRows(session)
        rename = update(Member).where(Member.shop_id == shop.shop.id).values(display_name="Ana")
        assert await rows.changed(rename) == 2
        only_first = update(Member).where(Member.id == first.id, Member.display_name == "Ana")
        assert await changed(session, only_first.values(display_name="Bo")) == 1
        assert await changed(session, only_first.values(display_name="Bo")) == 0  # already changed: no row matches


async def test_for_update_is_asked_only_where_the_database_has_row_locks(shop: ShopCtx) -> None:
    query = select(Member).where(Member.shop_id == shop.shop.id)
    async with transaction(shop.app.state.sessions) as session:
        on_postgres = session.bind.dialect.name == "postgresql"
        assert locks(session) is on_postgres
        sql = str(locked(session, query, skip_locked=True).compile(dialect=session.bind.dialect))
        if on_postgres:
            assert sql.endswith("FOR UPDATE SKIP LOCKED")
        else:
            assert "FOR UPDATE" not in sql
    # What each dialect would be sent, independent of the one this run uses.
    assert "FOR UPDATE" in str(query.with_for_update().compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE" not in str(query.with_for_update().compile(dialect=sqlite.dialect()))


async def test_pages_follow_the_key_and_end(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as session:
        made = sorted([(await member_row(session, shop.shop)).id for _ in range(5)])
    secret = shop.app.state.settings.secret_key
    seen: list[str] = []
    cursor = None
    async with transaction(shop.app.state.sessions) as session:
        rows = MemberRows(session)
        while True:
            page = PageRequest(limit=2, cursor=cursor, scope="members", secret=secret)
            items, cursor = await rows.paginate(rows.scoped(shop.shop.id), page, [Member.id])
            seen.extend(m.id for m in items)
            if cursor is None:
                break
    assert seen == made


async def test_the_service_level_factories_make_rows_the_api_then_shows(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as session:
        member = await member_row(session, shop.shop, market="eu", display_name="Ana")
        campaign = await campaign_row(session, shop.shop, name="Spring")
    shown = (await shop.api.get(f"/v1/members/{member.id}")).json()
    assert (shown["market"], shown["display_name"]) == ("eu", "Ana")
    assert (await shop.api.get(f"/v1/campaigns/{campaign.id}")).json()["name"] == "Spring"
