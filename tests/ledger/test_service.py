"""The ledger's service and repository, called directly: postings, lookups per shop, verify."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from liveloop.kit.db import transaction
from liveloop.kit.errors import NotFound
from liveloop.kit.time import utc_now
from liveloop.ledger import service as ledger
from liveloop.ledger.repository import LedgerRepository, move_balance
from liveloop.ledger.verify import verify
from liveloop.models import LedgerAccount, LedgerBucket, LedgerOwnerType, LedgerTransactionKind
from tests.conftest import ShopCtx, make_shop
from tests.factories import create_member


async def _grant_points(shop: ShopCtx, member_id: str, amount: int, expires_in: timedelta) -> str:
    async with transaction(shop.app.state.sessions) as s:
        txn = await ledger.grant(s, shop.shop.id, member_id, ledger.POINTS, amount, expires_at=utc_now() + expires_in)
        return txn.id


async def test_the_database_itself_refuses_a_negative_balance(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    await _grant_points(shop, member["id"], 5, timedelta(days=30))
    with pytest.raises(IntegrityError):
        async with transaction(shop.app.state.sessions) as s:
            await s.execute(
                update(LedgerAccount)
                .where(LedgerAccount.owner_id == member["id"])
                .values(balance=LedgerAccount.balance - 6)
            )


async def test_verify_finds_a_tampered_balance(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    await _grant_points(shop, member["id"], 10, timedelta(days=5))
    async with transaction(shop.app.state.sessions) as s:
        await s.execute(text("UPDATE ledger_accounts SET balance = balance + 1 WHERE owner_type = 'member'"))
    async with transaction(shop.app.state.sessions) as s:
        report = await verify(s)
    assert not report.ok
    assert report.problems["balance_mismatch"]
    assert report.problems["lots_out_of_step"]


async def test_another_shops_transaction_is_not_found_as_if_it_did_not_exist(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    member = await create_member(shop.api)
    txn_id = await _grant_points(shop, member["id"], 10, timedelta(days=30))
    async with transaction(shop.app.state.sessions) as s:
        assert (await ledger.get_transaction(s, shop.shop.id, txn_id)).id == txn_id
        refusals = []
        for shop_id, wanted in ((other.shop.id, txn_id), (shop.shop.id, "ltx_nosuchtransaction")):
            with pytest.raises(NotFound) as refused:
                await ledger.get_transaction(s, shop_id, wanted)
            refusals.append((refused.value.code, refused.value.message))
        assert refusals == [("transaction_not_found", "No such ledger transaction in this shop.")] * 2
    async with transaction(shop.app.state.sessions) as s:
        with pytest.raises(NotFound) as refused:
            await ledger.reverse(s, other.shop.id, txn_id, reason="not theirs")
        assert refused.value.code == "transaction_not_found"
        with pytest.raises(NotFound) as refused:
            await ledger.release(s, other.shop.id, txn_id)
        assert refused.value.code == "transaction_not_found"
    async with transaction(shop.app.state.sessions) as s:
        assert await ledger.balance(s, shop.shop.id, member["id"], ledger.POINTS) == 10  # nothing was reversed
    await other.api.aclose()


async def test_an_idempotency_key_is_one_shops_own(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    mine, theirs = await create_member(shop.api), await create_member(other.api)
    async with transaction(shop.app.state.sessions) as s:
        first = await ledger.grant(s, shop.shop.id, mine["id"], ledger.TICKETS, 1, idempotency_key="draw:1")
        assert await ledger.existing_transaction(s, other.shop.id, "draw:1") is None
        second = await ledger.grant(s, other.shop.id, theirs["id"], ledger.TICKETS, 1, idempotency_key="draw:1")
        again = await ledger.grant(s, shop.shop.id, mine["id"], ledger.TICKETS, 1, idempotency_key="draw:1")
    assert second.id != first.id
    assert again.id == first.id
    await other.api.aclose()


async def test_a_balance_moves_only_while_it_stays_at_or_above_zero(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    await _grant_points(shop, member["id"], 5, timedelta(days=30))
    async with transaction(shop.app.state.sessions) as s:
        account = await ledger.member_account(s, shop.shop.id, member["id"], ledger.POINTS)
        assert await move_balance(s, account, ledger.POINTS, -6) is False
        assert await move_balance(s, account, ledger.TICKETS, -1) is False  # the account holds another asset
        assert await move_balance(s, account, ledger.POINTS, -5) is True
        assert await ledger.balance(s, shop.shop.id, member["id"], ledger.POINTS) == 0


async def test_kinds_buckets_and_owners_read_back_as_their_enums(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        hold = await ledger.grant(s, shop.shop.id, member["id"], "credit:USD", 300, pending=True)
        released = await ledger.release(s, shop.shop.id, hold.id)
    async with transaction(shop.app.state.sessions) as s:
        repo = LedgerRepository(s)
        assert (await repo.get_or_raise(shop.shop.id, hold.id)).kind is LedgerTransactionKind.HOLD
        assert (await repo.get_or_raise(shop.shop.id, released.id)).kind is LedgerTransactionKind.RELEASE
        entries = await ledger.transaction_entries(s, released.id)
        owners = sorted((a.owner_type, a.bucket, e.amount) for e, a in entries)
        assert owners == [
            (LedgerOwnerType.MEMBER, LedgerBucket.AVAILABLE, 300),
            (LedgerOwnerType.MEMBER, LedgerBucket.PENDING, -300),
        ]
        assert all(type(a.owner_type) is LedgerOwnerType for _, a in entries)
        assert await ledger.balances(s, shop.shop.id, member["id"]) == [ledger.Balance("credit:USD", 300, 0)]


async def test_verify_counts_a_consistent_ledger_and_finds_nothing(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    await _grant_points(shop, member["id"], 10, timedelta(days=5))
    async with transaction(shop.app.state.sessions) as s:
        await ledger.spend(s, shop.shop.id, member["id"], ledger.POINTS, 4)
    async with transaction(shop.app.state.sessions) as s:
        report = await verify(s)
    assert report.ok
    assert (report.transactions, report.entries) == (2, 4)
    assert report.accounts == 3  # the member's points, issuance and redemption
