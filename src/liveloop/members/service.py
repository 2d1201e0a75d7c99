"""Members: one record per customer of a shop, with devices and consent history."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.errors import Conflict, Unprocessable
from liveloop.kit.ids import new_id, short_code
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import is_valid_zone, utc_now
from liveloop.markets import service as markets
from liveloop.members.normalize import canonical_email, normalize_email, normalize_phone
from liveloop.members.repository import ConsentRepository, MemberDeviceRepository, MemberRepository
from liveloop.members.schemas import ConsentIn, MemberUpdate
from liveloop.models import Consent, ConsentChannel, Member, Shop

_PHONE_REGION = {"sea": "SG", "na": "US", "eu": "DE", "me": "AE"}


async def get_member(session: AsyncSession, shop_id: str, member_id: str) -> Member:
    """The shop's member with this id, or 404 ``member_not_found`` (another shop's member too)."""
    return await MemberRepository(session).get_or_raise(shop_id, member_id)


async def find_by_external_id(session: AsyncSession, shop_id: str, external_id: str) -> Member | None:
    return await MemberRepository(session).by_external_id(shop_id, external_id)


async def find_by_code(session: AsyncSession, shop_id: str, code: str) -> Member | None:
    """The member whose referral code this is (codes are upper case; a typed one may not be)."""
    return await MemberRepository(session).by_referral_code(shop_id, code.upper())


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
                await MemberRepository(session).add(member)
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


async def update_member(
    session: AsyncSession, shop: Shop, member: Member, changes: MemberUpdate, *, device_id: str | None = None
) -> Member:
    """Apply what ``changes`` gives (a field left out or null stays); ``device_id`` is a verified bare device id
    (see :func:`liveloop.members.devices.require`), not the field's signed value."""
    if changes.market:
        member.market = (await markets.market_named_in_body(session, shop.id, changes.market)).code
    if changes.timezone:
        if not is_valid_zone(changes.timezone):
            raise Unprocessable("timezone must be an IANA zone such as 'Europe/Paris'.", code="invalid_timezone")
        member.timezone = changes.timezone
    if changes.email:
        member.email = normalize_email(changes.email)
        member.email_canonical = canonical_email(member.email)
    if changes.phone:
        member.phone_e164 = normalize_phone(changes.phone, _PHONE_REGION.get(member.market))
    if changes.name is not None:
        member.name = changes.name
    if changes.display_name is not None:
        member.display_name = changes.display_name
    if changes.locale is not None:
        member.locale = changes.locale
    if device_id:
        await add_device(session, shop.id, member.id, device_id)
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
        for member in await MemberRepository(session).all_with_ids(shop_id, member_ids):
            names[member.id] = public_name(member)
    return names


async def add_device(session: AsyncSession, shop_id: str, member_id: str, device_id: str) -> None:
    await MemberDeviceRepository(session).link(shop_id, member_id, device_id)


async def device_ids(session: AsyncSession, member_id: str) -> list[str]:
    return await MemberDeviceRepository(session).device_ids(member_id)


async def record_consent(session: AsyncSession, shop_id: str, member_id: str, consent: ConsentIn) -> Consent:
    row = Consent(
        id=new_id("cns"),
        shop_id=shop_id,
        member_id=member_id,
        channel=ConsentChannel(consent.channel),
        purpose=consent.purpose,
        granted=consent.granted,
        recorded_at=consent.recorded_at or utc_now(),
        source=consent.source,
        text_version=consent.text_version,
        created_at=utc_now(),
    )
    return await ConsentRepository(session).add(row)


def in_force(history: list[Consent]) -> list[Consent]:
    """Of a consent history (oldest first), the newest record per channel and purpose: what is in force."""
    latest: dict[tuple[ConsentChannel, str], Consent] = {}
    for row in history:
        latest[(row.channel, row.purpose)] = row
    return list(latest.values())


async def consents_in_force(session: AsyncSession, shop_id: str, member_id: str) -> list[Consent]:
    return in_force(await consent_history(session, shop_id, member_id))


async def consent_history(session: AsyncSession, shop_id: str, member_id: str) -> list[Consent]:
    """Every consent record of the member, oldest first."""
    return await ConsentRepository(session).history(shop_id, member_id)


async def list_members(session: AsyncSession, shop_id: str, page: PageRequest) -> tuple[list[Member], str | None]:
    """Members in the order they joined (ids are time-ordered)."""
    return await MemberRepository(session).page_of(shop_id, page)
