"""Members: one record per customer of a shop, with devices and consent history."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.errors import Conflict, NotFound, Unprocessable
from liveloop.kit.ids import new_id, short_code
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import is_valid_zone, utc_now
from liveloop.markets import service as markets
from liveloop.members.normalize import canonical_email, normalize_email, normalize_phone
from liveloop.members.schemas import ConsentIn
from liveloop.models import Consent, Member, MemberDevice, Shop

_PHONE_REGION = {"sea": "SG", "na": "US", "eu": "DE", "me": "AE"}


async def get_member(session: AsyncSession, shop_id: str, member_id: str) -> Member:
    member = (
        await session.execute(select(Member).where(Member.shop_id == shop_id, Member.id == member_id))
    ).scalar_one_or_none()
    if member is None:
        raise NotFound("No such member in this shop.", code="member_not_found")
    return member


_BY_EXTERNAL_ID = select(Member).where(
    Member.shop_id == bindparam("shop_id"), Member.external_id == bindparam("external_id")
)


async def find_by_external_id(session: AsyncSession, shop_id: str, external_id: str) -> Member | None:
    return (
        await session.execute(_BY_EXTERNAL_ID, {"shop_id": shop_id, "external_id": external_id})
    ).scalar_one_or_none()


async def find_by_code(session: AsyncSession, shop_id: str, code: str) -> Member | None:
    return (
        await session.execute(select(Member).where(Member.shop_id == shop_id, Member.referral_code == code.upper()))
    ).scalar_one_or_none()


async def create_member(
    session: AsyncSession,
    shop: Shop,
    *,
    external_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    display_name: str | None = None,
    locale: str = "en",
    timezone: str | None = None,
    market: str | None = None,
    device_id: str | None = None,
    ip_hash: str | None = None,
    consents: list[ConsentIn] | None = None,
    first_paid_order_at: object = None,
) -> Member:
    market_row = await markets.market_named_in_body(session, shop.id, market or shop.default_market)
    tz = timezone or market_row.timezone
    if not is_valid_zone(tz):
        raise Unprocessable(f"{tz!r} is not an IANA time zone, e.g. 'Asia/Jakarta'.", code="invalid_timezone")
    if external_id is not None and await find_by_external_id(session, shop.id, external_id):
        raise Conflict(
            f"A member with external_id {external_id!r} exists already; update it with PATCH instead.",
            code="member_exists",
        )
    email_n = normalize_email(email) if email else None
    phone_n = normalize_phone(phone, _PHONE_REGION.get(market_row.code)) if phone else None
    for _ in range(8):
        member = Member(
            id=new_id("mem"),
            shop_id=shop.id,
            external_id=external_id,
            email=email_n,
            email_canonical=canonical_email(email_n) if email_n else None,
            phone_e164=phone_n,
            name=name,
            display_name=display_name,
            locale=locale,
            timezone=tz,
            market=market_row.code,
            referral_code=short_code(7),
            signup_ip_hash=ip_hash,
            first_paid_order_at=first_paid_order_at,
            created_at=utc_now(),
        )
        try:
            async with session.begin_nested():
                session.add(member)
                await session.flush()
            break
        except IntegrityError:
            # A referral-code collision (1 in ~2e10) or a concurrent create with the same external id.
            if external_id is not None and await find_by_external_id(session, shop.id, external_id):
                raise Conflict(
                    f"A member with external_id {external_id!r} exists already.", code="member_exists"
                ) from None
    else:  # pragma: no cover - would need eight code collisions in a row
        raise Conflict("Could not allocate a referral code; retry.", code="retry")
    if device_id:
        await add_device(session, shop.id, member.id, device_id)
    for consent in consents or []:
        await record_consent(session, shop.id, member.id, consent)
    return member


async def update_member(session: AsyncSession, shop: Shop, member: Member, **changes: str | None) -> Member:
    if changes.get("market"):
        member.market = (await markets.market_named_in_body(session, shop.id, str(changes["market"]))).code
    if changes.get("timezone"):
        if not is_valid_zone(str(changes["timezone"])):
            raise Unprocessable("timezone must be an IANA zone such as 'Europe/Paris'.", code="invalid_timezone")
        member.timezone = str(changes["timezone"])
    if changes.get("email"):
        member.email = normalize_email(str(changes["email"]))
        member.email_canonical = canonical_email(member.email)
    if changes.get("phone"):
        member.phone_e164 = normalize_phone(str(changes["phone"]), _PHONE_REGION.get(member.market))
    for field in ("name", "display_name", "locale"):
        if changes.get(field) is not None:
            setattr(member, field, changes[field])
    if changes.get("device_id"):
        await add_device(session, shop.id, member.id, str(changes["device_id"]))
    await session.flush()
    return member


MASK = "\u2022\u2022\u2022"  # "•••"


def public_name(member: Member) -> str:
    """What public pages show for a member: the display name it chose, else its name's initial and a mask
    (``A•••``), else "Guest"; never the name itself, an id or a contact detail."""
    if member.erased_at is None and member.display_name:
        return member.display_name
    initial = (member.name or "").strip()[:1] if member.erased_at is None else ""
    return f"{initial.upper()}{MASK}" if initial.isalnum() else "Guest"


async def public_names(session: AsyncSession, shop_id: str, member_ids: list[str]) -> dict[str, str]:
    """:func:`public_name` of each of these members of the shop, by id (missing members: "Guest")."""
    names = {member_id: "Guest" for member_id in member_ids}
    if member_ids:
        found = await session.execute(select(Member).where(Member.shop_id == shop_id, Member.id.in_(set(member_ids))))
        for member in found.scalars():
            names[member.id] = public_name(member)
    return names


async def add_device(session: AsyncSession, shop_id: str, member_id: str, device_id: str) -> None:
    await session.execute(
        insert_ignoring_conflicts(
            session,
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


async def device_ids(session: AsyncSession, member_id: str) -> list[str]:
    return list(
        (await session.execute(select(MemberDevice.device_id).where(MemberDevice.member_id == member_id))).scalars()
    )


async def record_consent(session: AsyncSession, shop_id: str, member_id: str, consent: ConsentIn) -> Consent:
    row = Consent(
        id=new_id("cns"),
        shop_id=shop_id,
        member_id=member_id,
        channel=consent.channel,
        purpose=consent.purpose,
        granted=consent.granted,
        recorded_at=consent.recorded_at or utc_now(),
        source=consent.source,
        text_version=consent.text_version,
        created_at=utc_now(),
    )
    session.add(row)
    await session.flush()
    return row


async def consents_in_force(session: AsyncSession, shop_id: str, member_id: str) -> list[Consent]:
    rows = list(
        (
            await session.execute(
                select(Consent)
                .where(Consent.shop_id == shop_id, Consent.member_id == member_id)
                .order_by(Consent.recorded_at, Consent.created_at)
            )
        ).scalars()
    )
    latest: dict[tuple[str, str], Consent] = {}
    for row in rows:
        latest[(row.channel, row.purpose)] = row
    return list(latest.values())


async def consent_history(session: AsyncSession, shop_id: str, member_id: str) -> list[Consent]:
    return list(
        (
            await session.execute(
                select(Consent)
                .where(Consent.shop_id == shop_id, Consent.member_id == member_id)
                .order_by(Consent.recorded_at, Consent.created_at)
            )
        ).scalars()
    )


async def list_members(session: AsyncSession, shop_id: str, page: PageRequest) -> tuple[list[Member], str | None]:
    """Members in the order they joined (ids are time-ordered)."""
    return await paginate(session, select(Member).where(Member.shop_id == shop_id), page, [Member.id])
