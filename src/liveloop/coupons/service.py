"""Coupons: bulk generation, binding, validation, redemption and rollback.

Usage limits are enforced by atomic conditional updates (``uses = uses + 1 WHERE uses < max_uses``) with
a CHECK constraint underneath, never by read-then-write, so racing redemptions cannot oversell. Stacking
works the same way on one row per order (:class:`~liveloop.models.CouponOrder`).

A batch's unbound codes are made in chunks of :data:`CHUNK`, one short transaction each
(:func:`generate_chunk`). A batch of at most one chunk is made by the request that creates it; a larger one
is answered at once with the status ``generating`` and filled in the background (:mod:`liveloop.coupons.tasks`
in the API process, and the worker's ``coupon_batches`` job). Each chunk first moves the batch's
``codes_generated`` forward with a conditional update, then inserts its codes, in one transaction: a chunk
commits whole or not at all, and two processes can never make the same chunk, so a killed process leaves
neither duplicates nor gaps. A batch is used only once it is ``ready``: until then its codes can be listed
but not validated or redeemed (``coupon_batch_generating``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveloop.coupons.repository import CouponBatchRepository, CouponRepository, CouponRow, RedemptionRepository
from liveloop.kit.db import transaction
from liveloop.kit.errors import Conflict, Unprocessable
from liveloop.kit.ids import code_from_pattern, new_id, pattern_space
from liveloop.kit.money import is_currency, percent_of
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import utc_now
from liveloop.models import (
    Coupon,
    CouponBatch,
    CouponBatchStatus,
    CouponKind,
    CouponRedemption,
    CouponRedemptionStatus,
)

MAX_BATCH = 100_000
CHUNK = 1_000  # codes per transaction; a batch of at most this many is made inline
GENERATION_STARTED = "liveloop.coupons.generation_started"  # session.info flag read after commit


class CouponRejected(Unprocessable):
    code = "coupon_rejected"


class CouponNotStackable(Conflict):
    code = "coupon_not_stackable"


class CouponBatchGenerating(Conflict):
    code = "coupon_batch_generating"


def _invalid(message: str) -> Unprocessable:
    return Unprocessable(message, code="invalid_coupon")


_KINDS = frozenset(CouponKind)


def _check_money_rules(
    kind: str,
    *,
    amount_minor: int | None,
    currency: str | None,
    currency_free: bool,
    percent_bp: int | None,
    gift_sku: str | None,
    min_spend_minor: int,
) -> None:
    """A coupon's currency: every batch has one, except a percent batch marked ``currency_free``."""
    if kind not in _KINDS:
        raise _invalid("kind is one of fixed, percent, gift.")
    if currency is not None and not is_currency(currency):
        raise _invalid(f"{currency!r} is not an ISO 4217 currency code; use one such as USD.")
    if kind == CouponKind.FIXED and (not amount_minor or amount_minor <= 0 or currency is None):
        raise _invalid("A fixed coupon needs a positive amount_minor and an ISO currency.")
    if kind == CouponKind.PERCENT and not (percent_bp and 0 < percent_bp <= 10_000):
        raise _invalid("A percent coupon needs percent_bp between 1 and 10000 (10000 = 100 %).")
    if kind == CouponKind.GIFT and not gift_sku:
        raise _invalid("A gift coupon needs a gift_sku.")
    if currency_free:
        if kind != CouponKind.PERCENT:
            raise _invalid("Only a percent coupon can be currency_free; give this one a currency.")
        if currency is not None:
            raise _invalid("A currency_free coupon has no currency; drop currency or currency_free.")
        if min_spend_minor:
            raise _invalid("A currency_free coupon cannot have a min_spend_minor: it would be in no currency.")
    elif kind == CouponKind.PERCENT and currency is None:
        raise _invalid(
            "A percent coupon needs the currency of the orders it applies to, or currency_free: true "
            "to apply to orders in any currency."
        )
    elif min_spend_minor and currency is None:
        raise _invalid("min_spend_minor needs a currency to be counted in.")


async def create_batch(
    session: AsyncSession,
    shop_id: str,
    *,
    name: str,
    kind: str,
    count: int,
    pattern: str = "####-####",
    amount_minor: int | None = None,
    currency: str | None = None,
    currency_free: bool = False,
    percent_bp: int | None = None,
    gift_sku: str | None = None,
    min_spend_minor: int = 0,
    max_uses_per_coupon: int = 1,
    max_uses_per_member: int = 1,
    stackable: bool = False,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> CouponBatch:
    """A new batch with ``count`` unbound codes: made now when they fit in one chunk, else in the background."""
    _check_money_rules(
        kind,
        amount_minor=amount_minor,
        currency=currency,
        currency_free=currency_free,
        percent_bp=percent_bp,
        gift_sku=gift_sku,
        min_spend_minor=min_spend_minor,
    )
    if not 0 <= count <= MAX_BATCH:
        raise Unprocessable(f"Generate between 0 and {MAX_BATCH} coupons at a time.", code="invalid_count")
    if pattern.count("#") < 4 or pattern_space(pattern) < 100 * max(count, 1):
        raise Unprocessable(
            "The pattern leaves too few distinct codes for this many coupons; add more '#' characters.",
            code="pattern_too_small",
        )
    if starts_at and ends_at and ends_at <= starts_at:
        raise Unprocessable("ends_at must be after starts_at.", code="invalid_window")
    if max_uses_per_coupon < 1 or max_uses_per_member < 1:
        raise Unprocessable("Usage limits are at least 1.", code="invalid_limit")
    batch = CouponBatch(
        id=new_id("cpb"),
        shop_id=shop_id,
        name=name,
        pattern=pattern,
        kind=CouponKind(kind),
        amount_minor=amount_minor,
        currency=currency,
        currency_free=currency_free,
        percent_bp=percent_bp,
        gift_sku=gift_sku,
        min_spend_minor=min_spend_minor,
        max_uses_per_coupon=max_uses_per_coupon,
        max_uses_per_member=max_uses_per_member,
        stackable=stackable,
        starts_at=starts_at,
        ends_at=ends_at,
        status=CouponBatchStatus.GENERATING if count else CouponBatchStatus.READY,
        codes_total=count,
        codes_generated=0,
        created_at=utc_now(),
    )
    await CouponBatchRepository(session).add(batch)
    if count <= CHUNK:
        await generate_chunk(session, batch)
    else:
        # Picked up once this transaction commits (see liveloop.coupons.tasks).
        session.sync_session.info[GENERATION_STARTED] = True
    return batch


async def generate_chunk(session: AsyncSession, batch: CouponBatch) -> int:
    """Make the batch's next chunk of unbound codes in this transaction; returns how many (0: none to make).

    The conditional update that moves ``codes_generated`` forward is the chunk's claim: a concurrent caller
    that read the same starting point updates nothing and makes nothing.
    """
    start = batch.codes_generated
    size = min(CHUNK, batch.codes_total - start)
    if batch.status != CouponBatchStatus.GENERATING or size <= 0:
        return 0
    batches = CouponBatchRepository(session)
    if not await batches.claim_chunk(batch.id, start, size, finished=start + size >= batch.codes_total):
        return 0
    await _insert_codes(session, batch, [None] * size)
    await batches.refresh_progress(batch)
    return size


async def generate_next_chunk(session: AsyncSession) -> int:
    """One chunk of the oldest batch still generating (skipping one another process is making)."""
    batch = await CouponBatchRepository(session).next_generating()
    if batch is None:
        return 0
    return await generate_chunk(session, batch)


async def _insert_codes(session: AsyncSession, batch: CouponBatch, owners: list[str | None]) -> list[str]:
    """Insert one new unique code per owner (``None``: unbound); returns the new coupons' ids."""
    coupons = CouponRepository(session)
    pending = list(owners)
    made: list[str] = []
    now = utc_now()
    while pending:
        rows: list[CouponRow] = [
            {
                "id": new_id("cpn"),
                "shop_id": batch.shop_id,
                "batch_id": batch.id,
                "code": code_from_pattern(batch.pattern),
                "member_id": owner,
                "uses": 0,
                "max_uses": batch.max_uses_per_coupon,
                "created_at": now,
            }
            for owner in pending
        ]
        # The rows a unique code already had are skipped.
        inserted = await coupons.insert_codes(rows, chunk=CHUNK)
        made.extend(r["id"] for r in rows if r["id"] in inserted)
        # Codes that collided with existing ones were skipped; their owners go round again.
        pending = [r["member_id"] for r in rows if r["id"] not in inserted]
    return made


async def generate(
    session: AsyncSession, batch: CouponBatch, count: int, *, member_ids: list[str] | None = None
) -> list[Coupon]:
    """Insert ``count`` new unique codes now (one per member when ``member_ids`` is given)."""
    made = await _insert_codes(session, batch, list(member_ids) if member_ids else [None] * count)
    return await CouponRepository(session).by_ids(made, chunk=CHUNK)


async def issue_to_member(session: AsyncSession, batch: CouponBatch, member_id: str) -> Coupon:
    return (await generate(session, batch, 1, member_ids=[member_id]))[0]


async def get_batch(session: AsyncSession, shop_id: str, batch_id: str) -> CouponBatch:
    """This shop's batch, or 404 ``coupon_batch_not_found``."""
    return await CouponBatchRepository(session).get_or_raise(shop_id, batch_id)


async def get_coupon(session: AsyncSession, shop_id: str, code: str) -> Coupon:
    """This shop's coupon with this code, or 404 ``coupon_not_found``."""
    return await CouponRepository(session).by_code_or_raise(shop_id, code)


async def bind(session: AsyncSession, shop_id: str, code: str, member_id: str) -> Coupon:
    coupon = await get_coupon(session, shop_id, code)
    bound = await CouponRepository(session).bind(coupon, member_id)
    if not bound and coupon.member_id != member_id:
        raise Conflict("This coupon is bound to another member already.", code="coupon_bound_to_other")
    return coupon


@dataclass(frozen=True)
class Quote:
    coupon: Coupon
    batch: CouponBatch
    discount_minor: int
    gift_sku: str | None


def _reject(code: str, message: str) -> CouponRejected:
    return CouponRejected(message, code=code)


async def validate(
    session: AsyncSession,
    shop_id: str,
    code: str,
    *,
    member_id: str,
    order_total_minor: int,
    currency: str,
    now: datetime | None = None,
) -> Quote:
    """Check every rule without changing anything; the error code says which rule failed."""
    now = now or utc_now()
    coupon = await get_coupon(session, shop_id, code)
    batch = await CouponBatchRepository(session).of_coupon(coupon)
    if batch.status != CouponBatchStatus.READY:
        raise CouponBatchGenerating(
            f"This coupon's batch is still being generated ({batch.codes_generated} of {batch.codes_total} "
            f"codes); poll GET /v1/coupon-batches/{batch.id} and use it once its status is ready."
        )
    if coupon.voided_at is not None:
        raise _reject("coupon_void", "This coupon was voided by the shop.")
    if coupon.member_id is not None and coupon.member_id != member_id:
        raise _reject("coupon_bound_to_other", "This coupon belongs to another member.")
    if batch.starts_at and now < batch.starts_at:
        raise _reject("coupon_not_started", f"This coupon can be used from {batch.starts_at.isoformat()}.")
    if batch.ends_at and now >= batch.ends_at:
        raise _reject("coupon_expired", f"This coupon expired at {batch.ends_at.isoformat()}.")
    if coupon.uses >= coupon.max_uses:
        raise _reject("coupon_used_up", "This coupon has been used as many times as it allows.")
    if await RedemptionRepository(session).member_uses(batch.id, member_id) >= batch.max_uses_per_member:
        raise _reject("member_limit_reached", "This member has used this offer as many times as it allows.")
    if batch.currency is not None and batch.currency != currency:
        raise _reject(
            "currency_mismatch",
            f"This coupon is in {batch.currency}; the order is in {currency}. Only a currency-free percent "
            "coupon applies to orders in any currency.",
        )
    if order_total_minor < batch.min_spend_minor:
        raise _reject("min_spend_not_met", f"The order must reach {batch.min_spend_minor} minor units first.")
    if batch.kind == CouponKind.FIXED:
        discount = min(batch.amount_minor or 0, order_total_minor)
    elif batch.kind == CouponKind.PERCENT:
        discount = percent_of(order_total_minor, batch.percent_bp or 0)
    else:
        discount = 0
    return Quote(coupon, batch, discount, batch.gift_sku)


async def redeem(
    session: AsyncSession,
    shop_id: str,
    code: str,
    *,
    member_id: str,
    order_total_minor: int,
    currency: str,
    idempotency_key: str,
    order_ref: str | None = None,
) -> CouponRedemption:
    """Redeem once per idempotency key; a replay returns the first redemption."""
    redemptions = RedemptionRepository(session)
    prior = await redemptions.by_idempotency_key(shop_id, idempotency_key)
    if prior is not None:
        return prior
    quote = await validate(
        session, shop_id, code, member_id=member_id, order_total_minor=order_total_minor, currency=currency
    )
    if order_ref and not await redemptions.take_order_slot(shop_id, order_ref, stackable=quote.batch.stackable):
        # A concurrent retry of this very redemption may have won the slot: answer what it answered.
        prior = await redemptions.by_idempotency_key(shop_id, idempotency_key)
        if prior is not None:
            return prior
        raise CouponNotStackable(
            "This order already uses a coupon that cannot be combined with this one; roll that redemption "
            "back first, or use a stackable coupon."
        )
    if not await CouponRepository(session).take_use(quote.coupon.id):
        raise _reject("coupon_used_up", "This coupon has been used as many times as it allows.")
    if not await redemptions.count_member_use(quote.batch.id, member_id, limit=quote.batch.max_uses_per_member):
        raise _reject("member_limit_reached", "This member has used this offer as many times as it allows.")
    redemption = CouponRedemption(
        id=new_id("red"),
        shop_id=shop_id,
        coupon_id=quote.coupon.id,
        member_id=member_id,
        idempotency_key=idempotency_key,
        order_ref=order_ref,
        order_total_minor=order_total_minor,
        discount_minor=quote.discount_minor,
        currency=currency,
        status=CouponRedemptionStatus.REDEEMED,
        created_at=utc_now(),
    )
    return await redemptions.add(redemption)


async def rollback(session: AsyncSession, shop_id: str, redemption_id: str) -> CouponRedemption:
    """Give a redemption back (order cancelled). Idempotent: a second rollback changes nothing."""
    redemptions = RedemptionRepository(session)
    redemption = await redemptions.get_or_raise(shop_id, redemption_id)
    if redemption.status == CouponRedemptionStatus.ROLLED_BACK:
        return redemption
    if await redemptions.roll_back(redemption.id):
        coupons = CouponRepository(session)
        coupon = await coupons.by_id(redemption.coupon_id)
        assert coupon is not None
        await coupons.give_use_back(coupon.id)
        await redemptions.uncount_member_use(coupon.batch_id, redemption.member_id)
        if redemption.order_ref:
            await redemptions.free_order_slot(shop_id, redemption.order_ref)
    await redemptions.refresh(redemption)
    return redemption


async def list_coupons(
    session: AsyncSession,
    shop_id: str,
    page: PageRequest,
    *,
    member_id: str | None = None,
    batch_id: str | None = None,
) -> tuple[list[Coupon], str | None]:
    """Coupons, newest first (ids are time-ordered)."""
    return await CouponRepository(session).page(shop_id, page, member_id=member_id, batch_id=batch_id)


async def list_batches(session: AsyncSession, shop_id: str, page: PageRequest) -> tuple[list[CouponBatch], str | None]:
    """Coupon batches, newest first."""
    return await CouponBatchRepository(session).page(shop_id, page)


async def batch_codes(session: AsyncSession, batch: CouponBatch, page: PageRequest) -> tuple[list[Coupon], str | None]:
    """The codes of one batch, in the order they were made (ids are time-ordered; index on batch and id).

    A batch still ``generating`` lists the codes its committed chunks made so far.
    """
    return await CouponRepository(session).page_of_batch(batch.id, page)


async def first_codes(session: AsyncSession, batch_id: str, *, limit: int) -> list[Coupon]:
    """The first ``limit`` codes of a batch, in the order they were made."""
    return await CouponRepository(session).first_of_batch(batch_id, limit=limit)


async def batch_stats(session: AsyncSession, batch_id: str) -> tuple[int, int]:
    """(codes issued, uses) of one batch."""
    return await CouponBatchRepository(session).stats(batch_id)


async def batches_stats(session: AsyncSession, batch_ids: list[str]) -> dict[str, tuple[int, int]]:
    """``batch_stats`` of several batches in one query."""
    if not batch_ids:
        return {}
    return await CouponBatchRepository(session).stats_of(batch_ids)


EXPORT_COLUMNS = ("code", "status", "member_id", "uses", "max_uses", "created_at")
EXPORT_CHUNK = 1000


class CouponState(StrEnum):
    """What is left of a coupon, as the export shows it."""

    AVAILABLE = "available"
    USED_UP = "used_up"  # no uses left
    VOID = "void"  # voided by the shop


class CouponUses(Protocol):
    """A coupon or an exported row of one: what its state is read from."""

    @property
    def uses(self) -> int: ...

    @property
    def max_uses(self) -> int: ...

    @property
    def voided_at(self) -> datetime | None: ...


def coupon_status(coupon: CouponUses) -> CouponState:
    """``void`` (voided by the shop), ``used_up`` (no uses left) or ``available``."""
    if coupon.voided_at is not None:
        return CouponState.VOID
    return CouponState.USED_UP if coupon.uses >= coupon.max_uses else CouponState.AVAILABLE


async def export_codes_csv(
    sessions: async_sessionmaker[AsyncSession], batch_id: str, *, chunk: int = EXPORT_CHUNK
) -> AsyncIterator[bytes]:
    """A batch's codes as CSV, read in keyset chunks of ``chunk`` codes, each in its own short transaction.

    The database is held only while a chunk is read, never for the whole export, so a 100,000-code
    export lets every other request through between its chunks.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield out.getvalue().encode()
    after: str | None = None
    while True:
        async with transaction(sessions) as session:
            rows = await CouponRepository(session).export_chunk(batch_id, after=after, limit=chunk)
        if not rows:
            return
        out.seek(0)
        out.truncate()
        for row in rows:
            writer.writerow(
                [row.code, coupon_status(row), row.member_id or "", row.uses, row.max_uses, row.created_at.isoformat()]
            )
        yield out.getvalue().encode()
        if len(rows) < chunk:
            return
        after = rows[-1].id
