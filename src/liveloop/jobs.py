"""Scheduled jobs the worker runs on every pass. Each is idempotent and works in small batches."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.ledger.service import expire_due_lots
from liveloop.referral.service import release_due_rewards


async def expire_points(session: AsyncSession) -> int:
    return await expire_due_lots(session)


async def release_rewards(session: AsyncSession) -> int:
    return await release_due_rewards(session)


JOBS = [("expire_points", expire_points), ("release_rewards", release_rewards)]
