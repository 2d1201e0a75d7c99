"""Every statement about coupons: batches and their codes, redemptions, per-member use counts and the stacking
slot of each order.

Usage limits and stacking are conditional updates (``… WHERE uses < max_uses``) whose row count says whether
they took: see :meth:`CouponRepository.take_use`, :meth:`RedemptionRepository.count_member_use` and
:meth:`RedemptionRepository.take_order_slot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Row, func, select, update

from liveloop.kit.errors import NotFound
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.repository import Repository
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.models import (
    Coupon,
    CouponBatch,
    CouponBatchStatus,
    CouponMemberUsage,
    CouponOrder,
    CouponRedemption,
    CouponRedemptionStatus,
)


class CouponRow(TypedDict):
    """One new code, as inserted."""

    id: str
    shop_id: str
    batch_id: str
    code: str
    member_id: str | None
    uses: int
    max_uses: int
    created_at: datetime


class CouponBatchRepository(Repository[CouponBatch]):
    model = CouponBatch
    not_found = ("coupon_batch_not_found", "No such coupon batch in this shop.")

    async def of_coupon(self, coupon: Coupon) -> CouponBatch:
        batch = await self.session.get(CouponBatch, coupon.batch_id)
        assert batch is not None
        return batch

    async def claim_chunk(self, batch_id: str, start: int, size: int, *, finished: bool) -> bool:
        """Move ``codes_generated`` from ``start`` to ``start + size`` (and to ``ready`` when ``finished``);
        False when another caller moved it first."""
        claimed = await self.changed(
            update(CouponBatch)
            .where(
                CouponBatch.id == batch_id,
                CouponBatch.status == CouponBatchStatus.GENERATING,
                CouponBatch.codes_generated == start,
            )
            .values(
                codes_generated=start + size,
                status=CouponBatchStatus.READY if finished else CouponBatchStatus.GENERATING,
            )
            .execution_options(synchronize_session=False)
        )
        return claimed == 1

    async def next_generating(self) -> CouponBatch | None:
        """The oldest batch still generating, read fresh; on PostgreSQL one no other process is filling."""
        query = (
            select(CouponBatch)
            .where(CouponBatch.status == CouponBatchStatus.GENERATING)
            .order_by(CouponBatch.created_at, CouponBatch.id)
            .limit(1)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(self.locked(query, skip_locked=True))).scalar_one_or_none()

    async def refresh_progress(self, batch: CouponBatch) -> None:
        await self.session.refresh(batch, ["codes_generated", "status"])

    async def page(self, shop_id: str, page: PageRequest) -> tuple[list[CouponBatch], str | None]:
        """The shop's batches, newest first."""
        return await paginate(
            self.session, self.scoped(shop_id), page, [CouponBatch.created_at, CouponBatch.id], descending=True
        )

    async def stats(self, batch_id: str) -> tuple[int, int]:
        """(codes issued, uses) of one batch."""
        issued, used = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(Coupon.uses), 0)).where(Coupon.batch_id == batch_id)
            )
        ).one()
        return int(issued), int(used)

    async def stats_of(self, batch_ids: list[str]) -> dict[str, tuple[int, int]]:
        """:meth:`stats` of several batches in one query (batches without codes are left out)."""
        rows = await self.session.execute(
            select(Coupon.batch_id, func.count(), func.coalesce(func.sum(Coupon.uses), 0))
            .where(Coupon.batch_id.in_(batch_ids))
            .group_by(Coupon.batch_id)
        )
        return {batch_id: (int(issued), int(used)) for batch_id, issued, used in rows.all()}


class CouponRepository(Repository[Coupon]):
    model = Coupon
    not_found = ("coupon_not_found", "No such coupon in this shop.")

    async def by_code_or_raise(self, shop_id: str, code: str) -> Coupon:
        """The shop's coupon with this code (as typed, in any case), or 404 naming the code."""
        coupon = await self.one_or_none(self.scoped(shop_id).where(Coupon.code == code.strip().upper()))
        if coupon is None:
            raise NotFound(f"No coupon {code!r} in this shop; check the code for typos.", code=self.not_found[0])
        return coupon

    async def insert_codes(self, rows: list[CouponRow], *, chunk: int) -> set[str]:
        """Insert the rows ``chunk`` at a time; returns the ids that went in (a row whose code exists is skipped).

        One statement, compiled once, for every chunk; RETURNING names the rows inserted.
        """
        insert = insert_ignoring_conflicts(self.session, table(Coupon)).returning(table(Coupon).c.id)
        inserted: set[str] = set()
        for start in range(0, len(rows), chunk):
            inserted |= set((await self.session.execute(insert, rows[start : start + chunk])).scalars())
        return inserted

    async def by_ids(self, ids: list[str], *, chunk: int) -> list[Coupon]:
        """Coupons by id, read ``chunk`` ids per query."""
        coupons: list[Coupon] = []
        for start in range(0, len(ids), chunk):
            query = select(Coupon).where(Coupon.id.in_(ids[start : start + chunk]))
            coupons.extend((await self.session.execute(query)).scalars())
        return coupons

    async def bind(self, coupon: Coupon, member_id: str) -> bool:
        """Bind an unbound coupon to a member (the coupon is read again); False when it was bound already."""
        bound = await self.changed(
            update(Coupon)
            .where(Coupon.id == coupon.id, Coupon.member_id.is_(None))
            .values(member_id=member_id)
            .execution_options(synchronize_session=False)
        )
        await self.session.refresh(coupon)
        return bound == 1

    async def take_use(self, coupon_id: str) -> bool:
        """Count one more use of a coupon not voided; False when it has no use left."""
        taken = await self.changed(
            update(Coupon)
            .where(Coupon.id == coupon_id, Coupon.uses < Coupon.max_uses, Coupon.voided_at.is_(None))
            .values(uses=Coupon.uses + 1)
            .execution_options(synchronize_session=False)
        )
        return taken == 1

    async def give_use_back(self, coupon_id: str) -> None:
        await self.session.execute(
            update(Coupon)
            .where(Coupon.id == coupon_id)
            .values(uses=Coupon.uses - 1)
            .execution_options(synchronize_session=False)
        )

    async def by_id(self, coupon_id: str) -> Coupon | None:
        return await self.session.get(Coupon, coupon_id)

    async def page(
        self, shop_id: str, page: PageRequest, *, member_id: str | None, batch_id: str | None
    ) -> tuple[list[Coupon], str | None]:
        """The shop's coupons, newest first (ids are time-ordered)."""
        query = self.scoped(shop_id)
        if member_id:
            query = query.where(Coupon.member_id == member_id)
        if batch_id:
            query = query.where(Coupon.batch_id == batch_id)
        return await paginate(self.session, query, page, [Coupon.id], descending=True)

    async def page_of_batch(self, batch_id: str, page: PageRequest) -> tuple[list[Coupon], str | None]:
        """A batch's codes in the order they were made (index on batch and id)."""
        return await paginate(self.session, select(Coupon).where(Coupon.batch_id == batch_id), page, [Coupon.id])

    async def first_of_batch(self, batch_id: str, *, limit: int) -> list[Coupon]:
        query = select(Coupon).where(Coupon.batch_id == batch_id).order_by(Coupon.id).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def export_chunk(self, batch_id: str, *, after: str | None, limit: int) -> Sequence[Row[Any]]:
        """Up to ``limit`` codes of a batch after the code with id ``after``, with what the export shows of them."""
        query = (
            select(Coupon.id, Coupon.code, Coupon.member_id, Coupon.uses, Coupon.max_uses, Coupon.voided_at)
            .add_columns(Coupon.created_at)
            .where(Coupon.batch_id == batch_id)
            .order_by(Coupon.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(Coupon.id > after)
        return (await self.session.execute(query)).all()


class RedemptionRepository(Repository[CouponRedemption]):
    """Redemptions, and what each one counts: the member's uses of the batch and the order's coupons."""

    model = CouponRedemption
    not_found = ("redemption_not_found", "No such redemption in this shop.")

    async def by_idempotency_key(self, shop_id: str, idempotency_key: str) -> CouponRedemption | None:
        return await self.one_or_none(self.scoped(shop_id).where(CouponRedemption.idempotency_key == idempotency_key))

    async def roll_back(self, redemption_id: str) -> bool:
        """Mark a redemption rolled back; False when it was not (or no longer) redeemed."""
        done = await self.changed(
            update(CouponRedemption)
            .where(CouponRedemption.id == redemption_id, CouponRedemption.status == CouponRedemptionStatus.REDEEMED)
            .values(status=CouponRedemptionStatus.ROLLED_BACK, rolled_back_at=utc_now())
            .execution_options(synchronize_session=False)
        )
        return done == 1

    async def refresh(self, redemption: CouponRedemption) -> None:
        await self.session.refresh(redemption)

    # -- per-member uses of a batch ------------------------------------------------------------------------------
    async def member_uses(self, batch_id: str, member_id: str) -> int:
        used = (
            await self.session.execute(
                select(CouponMemberUsage.uses).where(
                    CouponMemberUsage.batch_id == batch_id, CouponMemberUsage.member_id == member_id
                )
            )
        ).scalar_one_or_none()
        return used or 0

    async def count_member_use(self, batch_id: str, member_id: str, *, limit: int) -> bool:
        """Count one more use of the batch by the member; False when they reached ``limit`` already."""
        await self.session.execute(
            insert_ignoring_conflicts(
                self.session,
                table(CouponMemberUsage),
                {"id": new_id("cmu"), "batch_id": batch_id, "member_id": member_id, "uses": 0},
            )
        )
        counted = await self.changed(
            update(CouponMemberUsage)
            .where(
                CouponMemberUsage.batch_id == batch_id,
                CouponMemberUsage.member_id == member_id,
                CouponMemberUsage.uses < limit,
            )
            .values(uses=CouponMemberUsage.uses + 1)
            .execution_options(synchronize_session=False)
        )
        return counted == 1

    async def uncount_member_use(self, batch_id: str, member_id: str) -> None:
        await self.session.execute(
            update(CouponMemberUsage)
            .where(CouponMemberUsage.batch_id == batch_id, CouponMemberUsage.member_id == member_id)
            .values(uses=CouponMemberUsage.uses - 1)
            .execution_options(synchronize_session=False)
        )

    # -- the coupons of one order --------------------------------------------------------------------------------
    async def take_order_slot(self, shop_id: str, order_ref: str, *, stackable: bool) -> bool:
        """Count one more coupon on the order, if the stacking rules let it join; False when they do not.

        A non-stackable coupon joins only an order with no coupon yet, a stackable one any order without a
        non-stackable coupon. Racing redemptions of one order queue on its row (PostgreSQL re-checks the
        condition once the one ahead commits; SQLite runs one writer at a time), so only one of them wins.
        """
        await self.session.execute(
            insert_ignoring_conflicts(
                self.session,
                table(CouponOrder),
                {
                    "id": new_id("cpo"),
                    "shop_id": shop_id,
                    "order_ref": order_ref,
                    "redeemed": 0,
                    "non_stackable": False,
                    "created_at": utc_now(),
                },
            )
        )
        where = [CouponOrder.shop_id == shop_id, CouponOrder.order_ref == order_ref]
        if stackable:
            where.append(CouponOrder.non_stackable.is_(False))
        else:
            where.append(CouponOrder.redeemed == 0)
        taken = await self.changed(
            update(CouponOrder)
            .where(*where)
            .values(redeemed=CouponOrder.redeemed + 1, non_stackable=not stackable)
            .execution_options(synchronize_session=False)
        )
        return taken == 1

    async def free_order_slot(self, shop_id: str, order_ref: str) -> None:
        await self.session.execute(
            update(CouponOrder)
            .where(CouponOrder.shop_id == shop_id, CouponOrder.order_ref == order_ref)
            .values(redeemed=CouponOrder.redeemed - 1, non_stackable=False)
            .execution_options(synchronize_session=False)
        )
