"""The invite-link hot path: resolve the code from a short-lived cache, record the click by group commit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveloop.kit.batching import GroupCommitWriter, TTLCache
from liveloop.kit.ids import new_id
from liveloop.kit.time import utc_now
from liveloop.models import InviteClick, Member, Shop, VipGroup

CHANNELS = frozenset(
    {"whatsapp", "facebook", "instagram", "tiktok", "x", "telegram", "line", "email", "copy", "qr", "live"}
)


@dataclass(frozen=True)
class Target:
    shop_id: str
    landing_url: str
    inviter_id: str
    group_id: str | None


class ClickRecorder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, ttl_seconds: float = 30.0) -> None:
        self.sessions = sessions
        self.writer = GroupCommitWriter(sessions, InviteClick.__table__)
        self.targets: TTLCache[tuple[str, str], Target | bool] = TTLCache(ttl_seconds)

    async def resolve(self, shop_slug: str, code: str) -> Target | None:
        """The inviter (or VIP group) behind a code; unknown codes are remembered briefly too."""
        key = (shop_slug, code)
        hit = self.targets.get(key)
        if hit is None:
            hit = await self._load(shop_slug, code) or False
            self.targets.put(key, hit)
        return hit or None

    async def _load(self, shop_slug: str, code: str) -> Target | None:
        async with self.sessions() as session:
            shop = (
                await session.execute(select(Shop.id, Shop.landing_url).where(Shop.slug == shop_slug))
            ).one_or_none()
            if shop is None:
                return None
            inviter = (
                await session.execute(select(Member.id).where(Member.shop_id == shop.id, Member.referral_code == code))
            ).scalar_one_or_none()
            if inviter is not None:
                return Target(shop.id, shop.landing_url, inviter, None)
            group = (
                await session.execute(
                    select(VipGroup.id, VipGroup.owner_id).where(VipGroup.shop_id == shop.id, VipGroup.code == code)
                )
            ).one_or_none()
            if group is not None:
                return Target(shop.id, shop.landing_url, group.owner_id, group.id)
            return None

    async def record(
        self,
        target: Target,
        *,
        channel: str,
        show_id: str | None,
        host_id: str | None,
        device_id: str | None,
        ip_hash: str | None,
        user_agent: str | None,
    ) -> str:
        click_id = new_id("clk")
        await self.writer.write(
            {
                "id": click_id,
                "shop_id": target.shop_id,
                "inviter_id": target.inviter_id,
                "group_id": target.group_id,
                "channel": channel if channel in CHANNELS else "other",
                "show_id": (show_id or "")[:64] or None,
                "host_id": (host_id or "")[:64] or None,
                "device_id": device_id,
                "ip_hash": ip_hash,
                "user_agent": (user_agent or "")[:400] or None,
                "created_at": utc_now(),
            }
        )
        return click_id

    async def close(self) -> None:
        await self.writer.close()
