"""Scheduled jobs the worker runs on every pass. Each is idempotent and works in small batches."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.coupons.tasks import coupon_batches
from liveloop.kit.time import utc_now
from liveloop.ledger.service import expire_due_lots
from liveloop.live.interactions import publish_scoreboards, settle_due
from liveloop.live.service import due_cues
from liveloop.referral.service import release_due_rewards


async def expire_points(session: AsyncSession) -> int:
    return await expire_due_lots(session)


async def release_rewards(session: AsyncSession) -> int:
    return await release_due_rewards(session)


async def show_cues(session: AsyncSession) -> int:
    return await due_cues(session, utc_now())


async def settle_interactions(session: AsyncSession) -> int:
    return await settle_due(session, utc_now())


async def pk_scoreboards(session: AsyncSession) -> int:
    return await publish_scoreboards(session)


JOBS = [
    ("expire_points", expire_points),
    ("release_rewards", release_rewards),
    ("show_cues", show_cues),
    ("settle_interactions", settle_interactions),
    ("pk_scoreboards", pk_scoreboards),
    ("coupon_batches", coupon_batches),
]
