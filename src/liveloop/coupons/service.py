"""Coupons: bulk generation, binding, validation, redemption and rollback.

Usage limits are enforced by atomic conditional updates (``uses = uses + 1 WHERE uses < max_uses``) with
a CHECK constraint underneath, never by read-then-write, so racing redemptions cannot oversell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveloop.kit.db import transaction
from liveloop.kit.errors import Conflict, NotFound, Unprocessable
from liveloop.kit.ids import code_from_pattern, new_id, pattern_space
from liveloop.kit.money import is_currency, percent_of
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.models import Coupon, CouponBatch, CouponMemberUsage, CouponRedemption

MAX_BATCH = 100_000


class CouponRejected(Unprocessable):
    code = "coupon_rejected"


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
    percent_bp: int | None = None,
    gift_sku: str | None = None,
    min_spend_minor: int = 0,
    max_uses_per_coupon: int = 1,
    max_uses_per_member: int = 1,
    stackable: bool = False,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    member_ids: list[str] | None = None,
) -> tuple[CouponBatch, list[Coupon]]:
    if kind == "fixed" and (not amount_minor or amount_minor <= 0 or not currency or not is_currency(currency)):
        raise Unprocessable("A fixed coupon needs a positive amount_minor and an ISO currency.", code="invalid_coupon")
    if kind == "percent" and not (percent_bp and 0 < percent_bp <= 10_000):
        raise Unprocessable(
            "A percent coupon needs percent_bp between 1 and 10000 (10000 = 100 %).", code="invalid_coupon"
        )
    if kind == "gift" and not gift_sku:
        raise Unprocessable("A gift coupon needs a gift_sku.", code="invalid_coupon")
    if kind not in ("fixed", "percent", "gift"):
        raise Unprocessable("kind is one of fixed, percent, gift.", code="invalid_coupon")
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
        kind=kind,
        amount_minor=amount_minor,
        currency=currency,
        percent_bp=percent_bp,
        gift_sku=gift_sku,
        min_spend_minor=min_spend_minor,
        max_uses_per_coupon=max_uses_per_coupon,
        max_uses_per_member=max_uses_per_member,
        stackable=stackable,
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=utc_now(),
    )
    session.add(batch)
    await session.flush()
    coupons = await generate(session, batch, count, member_ids=member_ids)
    return batch, coupons


async def generate(
    session: AsyncSession, batch: CouponBatch, count: int, *, member_ids: list[str] | None = None
) -> list[Coupon]:
    """Insert ``count`` new unique codes (one per member when ``member_ids`` is given)."""
    pending: list[str | None] = list(member_ids) if member_ids else [None] * count
    made: list[str] = []
    now = utc_now()
    while pending:
        rows: list[dict[str, Any]] = [
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
        for start in range(0, len(rows), 1000):
            await session.execute(insert_ignoring_conflicts(session, table(Coupon), rows[start : start + 1000]))
        inserted: set[str] = set()
        for start in range(0, len(rows), 1000):
            inserted |= set(
                (
                    await session.execute(
                        select(Coupon.id).where(Coupon.id.in_([r["id"] for r in rows[start : start + 1000]]))
                    )
                ).scalars()
            )
        made.extend(r["id"] for r in rows if r["id"] in inserted)
        # Codes that collided with existing ones were skipped; their owners go round again.
        pending = [r["member_id"] for r in rows if r["id"] not in inserted]
    if not made:
        return []
    coupons: list[Coupon] = []
    for start in range(0, len(made), 1000):
        coupons.extend(
            (await session.execute(select(Coupon).where(Coupon.id.in_(made[start : start + 1000])))).scalars()
        )
    return coupons


async def issue_to_member(session: AsyncSession, batch: CouponBatch, member_id: str) -> Coupon:
    return (await generate(session, batch, 1, member_ids=[member_id]))[0]


async def get_batch(session: AsyncSession, shop_id: str, batch_id: str) -> CouponBatch:
    batch = (
        await session.execute(select(CouponBatch).where(CouponBatch.shop_id == shop_id, CouponBatch.id == batch_id))
    ).scalar_one_or_none()
    if batch is None:
        raise NotFound("No such coupon batch in this shop.", code="coupon_batch_not_found")
    return batch


async def get_coupon(session: AsyncSession, shop_id: str, code: str) -> Coupon:
    coupon = (
        await session.execute(select(Coupon).where(Coupon.shop_id == shop_id, Coupon.code == code.strip().upper()))
    ).scalar_one_or_none()
    if coupon is None:
        raise NotFound(f"No coupon {code!r} in this shop; check the code for typos.", code="coupon_not_found")
    return coupon


async def bind(session: AsyncSession, shop_id: str, code: str, member_id: str) -> Coupon:
    coupon = await get_coupon(session, shop_id, code)
    result = await session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.member_id.is_(None))
        .values(member_id=member_id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(coupon)
    if result.rowcount != 1 and coupon.member_id != member_id:  # type: ignore[attr-defined]
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
    batch = await session.get(CouponBatch, coupon.batch_id)
    assert batch is not None
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
    used = (
        await session.execute(
            select(CouponMemberUsage.uses).where(
                CouponMemberUsage.batch_id == batch.id, CouponMemberUsage.member_id == member_id
            )
        )
    ).scalar_one_or_none() or 0
    if used >= batch.max_uses_per_member:
        raise _reject("member_limit_reached", "This member has used this offer as many times as it allows.")
    if batch.kind == "fixed" and batch.currency != currency:
        raise _reject("currency_mismatch", f"This coupon is in {batch.currency}; the order is in {currency}.")
    if order_total_minor < batch.min_spend_minor:
        raise _reject("min_spend_not_met", f"The order must reach {batch.min_spend_minor} minor units first.")
    if batch.kind == "fixed":
        discount = min(batch.amount_minor or 0, order_total_minor)
    elif batch.kind == "percent":
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
    prior = (
        await session.execute(
            select(CouponRedemption).where(
                CouponRedemption.shop_id == shop_id, CouponRedemption.idempotency_key == idempotency_key
            )
        )
    ).scalar_one_or_none()
    if prior is not None:
        return prior
    quote = await validate(
        session, shop_id, code, member_id=member_id, order_total_minor=order_total_minor, currency=currency
    )
    if order_ref:
        others = list(
            (
                await session.execute(
                    select(CouponBatch.stackable)
                    .join(Coupon, Coupon.batch_id == CouponBatch.id)
                    .join(CouponRedemption, CouponRedemption.coupon_id == Coupon.id)
                    .where(
                        CouponRedemption.shop_id == shop_id,
                        CouponRedemption.order_ref == order_ref,
                        CouponRedemption.status == "redeemed",
                    )
                )
            ).scalars()
        )
        if others and (not quote.batch.stackable or not all(others)):
            raise _reject("coupon_not_stackable", "This order already uses a coupon that cannot be combined.")
    taken = await session.execute(
        update(Coupon)
        .where(Coupon.id == quote.coupon.id, Coupon.uses < Coupon.max_uses, Coupon.voided_at.is_(None))
        .values(uses=Coupon.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise _reject("coupon_used_up", "This coupon has been used as many times as it allows.")
    await session.execute(
        insert_ignoring_conflicts(
            session,
            table(CouponMemberUsage),
            {
                "id": new_id("cmu"),
                "batch_id": quote.batch.id,
                "member_id": member_id,
                "uses": 0,
            },
        )
    )
    counted = await session.execute(
        update(CouponMemberUsage)
        .where(
            CouponMemberUsage.batch_id == quote.batch.id,
            CouponMemberUsage.member_id == member_id,
            CouponMemberUsage.uses < quote.batch.max_uses_per_member,
        )
        .values(uses=CouponMemberUsage.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
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
        status="redeemed",
        created_at=utc_now(),
    )
    session.add(redemption)
    await session.flush()
    return redemption


async def rollback(session: AsyncSession, shop_id: str, redemption_id: str) -> CouponRedemption:
    """Give a redemption back (order cancelled). Idempotent: a second rollback changes nothing."""
    redemption = (
        await session.execute(
            select(CouponRedemption).where(CouponRedemption.shop_id == shop_id, CouponRedemption.id == redemption_id)
        )
    ).scalar_one_or_none()
    if redemption is None:
        raise NotFound("No such redemption in this shop.", code="redemption_not_found")
    if redemption.status == "rolled_back":
        return redemption
    done = await session.execute(
        update(CouponRedemption)
        .where(CouponRedemption.id == redemption.id, CouponRedemption.status == "redeemed")
        .values(status="rolled_back", rolled_back_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    if done.rowcount == 1:  # type: ignore[attr-defined]
        coupon = await session.get(Coupon, redemption.coupon_id)
        assert coupon is not None
        await session.execute(
            update(Coupon)
            .where(Coupon.id == coupon.id)
            .values(uses=Coupon.uses - 1)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(CouponMemberUsage)
            .where(CouponMemberUsage.batch_id == coupon.batch_id, CouponMemberUsage.member_id == redemption.member_id)
            .values(uses=CouponMemberUsage.uses - 1)
            .execution_options(synchronize_session=False)
        )
    await session.refresh(redemption)
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
    query = select(Coupon).where(Coupon.shop_id == shop_id)
    if member_id:
        query = query.where(Coupon.member_id == member_id)
    if batch_id:
        query = query.where(Coupon.batch_id == batch_id)
    return await paginate(session, query, page, [Coupon.id], descending=True)


async def list_batches(session: AsyncSession, shop_id: str, page: PageRequest) -> tuple[list[CouponBatch], str | None]:
    """Coupon batches, newest first."""
    query = select(CouponBatch).where(CouponBatch.shop_id == shop_id)
    return await paginate(session, query, page, [CouponBatch.created_at, CouponBatch.id], descending=True)


async def batch_codes(session: AsyncSession, batch: CouponBatch, page: PageRequest) -> tuple[list[Coupon], str | None]:
    """The codes of one batch, in the order they were made (ids are time-ordered; index on batch and id)."""
    query = select(Coupon).where(Coupon.batch_id == batch.id)
    return await paginate(session, query, page, [Coupon.id])


async def batch_stats(session: AsyncSession, batch_id: str) -> tuple[int, int]:
    issued, used = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Coupon.uses), 0)).where(Coupon.batch_id == batch_id)
        )
    ).one()
    return int(issued), int(used)


async def batches_stats(session: AsyncSession, batch_ids: list[str]) -> dict[str, tuple[int, int]]:
    """``batch_stats`` of several batches in one query."""
    if not batch_ids:
        return {}
    rows = await session.execute(
        select(Coupon.batch_id, func.count(), func.coalesce(func.sum(Coupon.uses), 0))
        .where(Coupon.batch_id.in_(batch_ids))
        .group_by(Coupon.batch_id)
    )
    return {batch_id: (int(issued), int(used)) for batch_id, issued, used in rows.all()}


EXPORT_COLUMNS = ("code", "status", "member_id", "uses", "max_uses", "created_at")
EXPORT_CHUNK = 1000


def coupon_status(coupon: Coupon | Any) -> str:
    """``void`` (voided by the shop), ``used_up`` (no uses left) or ``available``."""
    if coupon.voided_at is not None:
        return "void"
    return "used_up" if coupon.uses >= coupon.max_uses else "available"


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
        query = (
            select(Coupon.id, Coupon.code, Coupon.member_id, Coupon.uses, Coupon.max_uses, Coupon.voided_at)
            .add_columns(Coupon.created_at)
            .where(Coupon.batch_id == batch_id)
            .order_by(Coupon.id)
            .limit(chunk)
        )
        if after is not None:
            query = query.where(Coupon.id > after)
        async with transaction(sessions) as session:
            rows = (await session.execute(query)).all()
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
