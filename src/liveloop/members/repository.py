"""Every statement about members, their devices and their consents."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select

from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.repository import Repository
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.models import Consent, Member, MemberDevice

_BY_EXTERNAL_ID = select(Member).where(
    Member.shop_id == bindparam("shop_id"), Member.external_id == bindparam("external_id")
)


class MemberRepository(Repository[Member]):
    model = Member
    not_found = ("member_not_found", "No such member in this shop.")

    async def by_external_id(self, shop_id: str, external_id: str) -> Member | None:
        """The shop's member with this ``external_id`` (a prepared statement: orders look members up by it)."""
        return (
            await self.session.execute(_BY_EXTERNAL_ID, {"shop_id": shop_id, "external_id": external_id})
        ).scalar_one_or_none()

    async def by_referral_code(self, shop_id: str, code: str) -> Member | None:
        return await self.one_or_none(self.scoped(shop_id).where(Member.referral_code == code))

    async def all_with_ids(self, shop_id: str, member_ids: Iterable[str]) -> list[Member]:
        """Those of the shop's members whose ids are given (in no particular order)."""
        return await self.all(self.scoped(shop_id).where(Member.id.in_(set(member_ids))))

    async def page_of(self, shop_id: str, page: PageRequest) -> tuple[list[Member], str | None]:
        """A page of the shop's members, in the order they joined (ids are time-ordered)."""
        return await self.paginate(self.scoped(shop_id), page, [Member.id])


class MemberDeviceRepository(Repository[MemberDevice]):
    model = MemberDevice

    async def link(self, shop_id: str, member_id: str, device_id: str) -> None:
        """Record that the member used this device (nothing when it is known already)."""
        await self.session.execute(
            insert_ignoring_conflicts(
                self.session,
                table(MemberDevice),
                {
                    "id": new_id("dev"),
                    "shop_id": shop_id,
                    "member_id": member_id,
                    "device_id": device_id,
                    "created_at": utc_now(),
                },
            )
        )

    async def device_ids(self, member_id: str) -> list[str]:
        query = select(MemberDevice.device_id).where(MemberDevice.member_id == member_id)
        return list((await self.session.execute(query)).scalars())


class ConsentRepository(Repository[Consent]):
    model = Consent

    async def history(self, shop_id: str, member_id: str) -> list[Consent]:
        """The member's consent records, oldest first (by when they were given, then written)."""
        return await self.all(
            self.scoped(shop_id).where(Consent.member_id == member_id).order_by(Consent.recorded_at, Consent.created_at)
        )
