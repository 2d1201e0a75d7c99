"""Shows: scheduling in the host's time zone, the rhythm plan, pinned products, start and end, moderation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import as_utc, is_valid_zone, utc_now, zone
from liveloop.live import schemas
from liveloop.live.aliases import alias, host_key
from liveloop.live.notify import to_room
from liveloop.live.protocol import BusKind
from liveloop.live.repository import RestrictionRepository, ShowRepository, ViewerRepository
from liveloop.markets import service as markets
from liveloop.members import service as members
from liveloop.models import CuePhase, EventType, RestrictionKind, Shop, Show, ShowRestriction, ShowStatus, VideoProvider
from liveloop.referral.service import on_effective_view


def _instant(value: datetime, tz: str) -> datetime:
    """An aware datetime as it is; a naive one read as wall-clock time in ``tz``."""
    if value.tzinfo is None:
        return as_utc(value.replace(tzinfo=zone(tz)))
    return as_utc(value)


def local_text(value: datetime, tz: str) -> str:
    return as_utc(value).astimezone(zone(tz)).isoformat(timespec="minutes")


async def create_show(session: AsyncSession, shop: Shop, data: schemas.ShowCreate) -> Show:
    code = data.market or shop.default_market
    market = await markets.market_named_in_body(session, shop.id, code)
    tz = data.host_timezone or market.timezone
    if not is_valid_zone(tz):
        raise Unprocessable("host_timezone must be an IANA zone such as 'Asia/Bangkok'.", code="invalid_timezone")
    if data.host_member_id is not None:
        try:
            await members.get_member(session, shop.id, data.host_member_id)
        except NotFound as exc:
            raise Unprocessable("host_member_id: no such member in this shop.", code="unknown_member") from exc
    rhythm = data.rhythm if data.rhythm is not None else schemas.default_rhythm(data.planned_minutes)
    show = Show(
        id=new_id("shw"),
        shop_id=shop.id,
        title=data.title,
        market=market.code,
        language=data.language or (market.locales[0] if market.locales else "en"),
        host_name=data.host_name,
        host_member_id=data.host_member_id,
        host_timezone=tz,
        scheduled_at=_instant(data.scheduled_at, tz),
        status=ShowStatus.SCHEDULED,
        video_provider=VideoProvider(data.video.provider),
        hls_url=str(data.video.hls_url) if data.video.hls_url else None,
        pinned=[p.model_dump(mode="json") for p in data.pinned],
        rhythm=[p.model_dump() for p in rhythm],
        moderation=data.moderation.model_dump(),
        created_at=utc_now(),
    )
    await ShowRepository(session).add(show)
    await emit(session, shop.id, EventType.SHOW_SCHEDULED, show_payload(show))
    return show


async def get_show(session: AsyncSession, shop_id: str, show_id: str) -> Show:
    return await ShowRepository(session).get_or_raise(shop_id, show_id)


async def list_shows(
    session: AsyncSession, shop_id: str, page: PageRequest, status: str | None = None
) -> tuple[list[Show], str | None]:
    """Shows, latest scheduled first."""
    return await ShowRepository(session).page_of(shop_id, page, status)


async def update_show(session: AsyncSession, show: Show, data: schemas.ShowUpdate) -> Show:
    if show.status == ShowStatus.ENDED and (data.pinned is not None or data.rhythm is not None or data.scheduled_at):
        raise Conflict("This show has ended; only its title, video and replay can change.", code="show_ended")
    if data.title:
        show.title = data.title
    if data.scheduled_at is not None:
        if show.status != ShowStatus.SCHEDULED:
            raise Conflict("A show that has started cannot be rescheduled.", code="show_started")
        show.scheduled_at = _instant(data.scheduled_at, show.host_timezone)
    if data.pinned is not None:
        show.pinned = [p.model_dump(mode="json") for p in data.pinned]
        to_room(session, show.id, {"k": BusKind.PIN, "card": "pinned", "products": show.pinned})
    if data.rhythm is not None:
        show.rhythm = [p.model_dump() for p in data.rhythm]
        to_room(session, show.id, {"k": BusKind.RHYTHM, "rhythm": show.rhythm})
    if data.moderation is not None:
        show.moderation = data.moderation.model_dump()
        to_room(session, show.id, {"k": BusKind.SHOW, "moderation": True})
    if data.video is not None:
        show.video_provider = VideoProvider(data.video.provider)
        show.hls_url = str(data.video.hls_url) if data.video.hls_url else None
        to_room(session, show.id, {"k": BusKind.VIDEO, "provider": show.video_provider, "hls_url": show.hls_url})
    if data.replay_url is not None:
        show.replay_url = str(data.replay_url)
    show.updated_at = utc_now()
    await session.flush()
    return show


async def start_show(session: AsyncSession, show: Show) -> Show:
    if show.status == ShowStatus.LIVE:
        return show  # starting twice changes nothing
    if show.status != ShowStatus.SCHEDULED:
        raise Conflict("An ended show cannot go live again; schedule a new one.", code="show_ended")
    show.status = ShowStatus.LIVE
    show.started_at = utc_now()
    show.updated_at = show.started_at
    await session.flush()
    await emit(session, show.shop_id, EventType.SHOW_STARTED, show_payload(show))
    to_room(session, show.id, {"k": BusKind.SHOW, "status": ShowStatus.LIVE, "started_at": show.started_at.isoformat()})
    return show


async def end_show(session: AsyncSession, show: Show, replay_url: str | None = None) -> Show:
    if show.status == ShowStatus.ENDED:
        if replay_url:
            show.replay_url = replay_url
        return show
    if show.status != ShowStatus.LIVE:
        raise Conflict("Only a live show can end; start it first or delete it.", code="show_not_live")
    show.status = ShowStatus.ENDED
    show.ended_at = utc_now()
    show.updated_at = show.ended_at
    if replay_url:
        show.replay_url = replay_url
    await session.flush()
    await emit(session, show.shop_id, EventType.SHOW_ENDED, show_payload(show))
    to_room(session, show.id, {"k": BusKind.SHOW, "status": ShowStatus.ENDED, "replay_url": show.replay_url})
    return show


def show_payload(show: Show) -> dict[str, Any]:
    return {
        "show_id": show.id,
        "title": show.title,
        "market": show.market,
        "status": show.status,
        "scheduled_at": show.scheduled_at.isoformat(),
        "started_at": show.started_at.isoformat() if show.started_at else None,
        "ended_at": show.ended_at.isoformat() if show.ended_at else None,
        "replay_url": show.replay_url,
    }


async def counters(session: AsyncSession, show_id: str) -> dict[str, int]:
    return await ShowRepository(session).counters(show_id)


# --- moderation --------------------------------------------------------------------------------------
#
# The host names a viewer by the alias its comments carry (or, for a shop backend that knows its member, by
# member id); the server finds the verified viewer key behind it. Restrictions are stored and enforced on that
# key, so a viewer who copies another's alias gains nothing, and nobody can restrict the host in its own show.


async def viewer_by_alias(session: AsyncSession, show: Show, secret: str, alias_: str) -> str | None:
    """The viewer key of the show's viewer whose alias is ``alias_`` (present now or earlier), or None."""
    viewers = ViewerRepository(session)
    key = await viewers.key_by_alias(show.id, alias_)
    if key is not None:
        return key
    # Viewers written before aliases were stored: fill theirs in (once per show) and look again.
    for row_id, viewer_key in await viewers.without_alias(show.id):
        own = alias(secret, show.id, viewer_key)
        await viewers.set_alias(row_id, own)
        if own == alias_:
            key = viewer_key
    return key


async def restriction_target(
    session: AsyncSession,
    show: Show,
    secret: str,
    *,
    alias_: str | None = None,
    member_id: str | None = None,
    connected: str | None = None,
) -> tuple[str, str]:
    """(viewer key, alias) of the viewer the host names; refuses the host itself and unknown viewers.

    ``connected`` is the key of a viewer with this alias connected to this process (not written out yet).
    """
    if member_id is not None:
        if show.host_member_id is not None and member_id == show.host_member_id:
            raise Forbidden(
                "This member hosts the show and cannot be muted or banned in it.", code="cannot_restrict_host"
            )
        member = await members.get_member(session, show.shop_id, member_id)
        member_key = f"m:{member.id}"
        return member_key, alias(secret, show.id, member_key)
    if alias_ is None:
        raise Unprocessable("Name the viewer by alias (or member_id).", code="invalid_restriction")
    if alias_ == alias(secret, show.id, host_key(show.id)):
        raise Forbidden("This alias is the show's host, who cannot be muted or banned.", code="cannot_restrict_host")
    found = connected or await viewer_by_alias(session, show, secret, alias_)
    if found is None:
        raise ViewerRepository(session).missing()
    if found == host_key(show.id) or (show.host_member_id is not None and found == f"m:{show.host_member_id}"):
        raise Forbidden("This alias is the show's host, who cannot be muted or banned.", code="cannot_restrict_host")
    return found, alias_


async def restrict(
    session: AsyncSession,
    show: Show,
    viewer_key: str,
    kind: str,
    minutes: int | None,
    reason: str,
    *,
    alias_: str,
) -> ShowRestriction:
    """Mute or ban the viewer with this (verified) key; the room hears of it by the viewer's alias."""
    kind = restriction_kind(kind)
    until = utc_now() + timedelta(minutes=minutes) if minutes else None
    restrictions = RestrictionRepository(session)
    existing = await restrictions.find(show.id, viewer_key, kind)
    if existing is None:
        existing = ShowRestriction(
            id=new_id("rst"),
            shop_id=show.shop_id,
            show_id=show.id,
            viewer_key=viewer_key,
            kind=kind,
            until=until,
            reason=reason[:200],
            created_at=utc_now(),
        )
        await restrictions.add(existing)
    else:
        existing.until = until
        existing.reason = reason[:200]
        await session.flush()
    to_room(session, show.id, {"k": BusKind.RESTRICT, "a": alias_, "kind": kind})
    return existing


def restriction_kind(kind: str) -> RestrictionKind:
    """``mute`` or ``ban``; anything else is refused (``invalid_restriction``) before anything is looked up."""
    if kind not in (RestrictionKind.MUTE, RestrictionKind.BAN):
        raise Unprocessable("kind is mute or ban.", code="invalid_restriction")
    return RestrictionKind(kind)


async def lift(session: AsyncSession, show: Show, viewer_key: str, kind: str, *, alias_: str) -> None:
    restrictions = RestrictionRepository(session)
    row = await restrictions.find(show.id, viewer_key, kind)
    if row is not None:
        await restrictions.delete(row)
    to_room(session, show.id, {"k": BusKind.RESTRICT, "a": alias_, "kind": kind, "lifted": True})


async def restrictions(session: AsyncSession, show_id: str) -> dict[str, set[str]]:
    """Viewer keys muted and banned right now."""
    now = utc_now()
    out: dict[str, set[str]] = {RestrictionKind.MUTE: set(), RestrictionKind.BAN: set()}
    for key, kind, until in await RestrictionRepository(session).of_show(show_id):
        if until is None or until > now:
            out[kind].add(key)
    return out


# --- viewers -------------------------------------------------------------------------------------------


async def link_device(session: AsyncSession, shop_id: str, device_id: str, member_id: str) -> bool:
    """A device that watched anonymously turns out to be this member: its views become the member's.

    Returns whether any of those views was effective (which can convert the member's referral).
    """
    return await ViewerRepository(session).link_device(shop_id, device_id, member_id)


async def due_cues(session: AsyncSession, now: datetime) -> int:
    """Announce each live show's coming high points ahead of time, then fire them, each exactly once."""
    done = 0
    for show in await live_shows(session):
        if show.started_at is None:
            continue
        for index, point in enumerate(show.rhythm):
            at = show.started_at + timedelta(minutes=int(point["at_minute"]))
            announce_at = at - timedelta(seconds=int(point.get("announce_before_seconds", 120)))
            base = {
                "k": BusKind.CUE,
                "point": index,
                "kind": point["kind"],
                "title": point["title"],
                "at": at.isoformat(),
            }
            if announce_at <= now < at and await claim_cue(session, show.id, index, CuePhase.ANNOUNCE):
                to_room(
                    session,
                    show.id,
                    {**base, "phase": CuePhase.ANNOUNCE, "in_seconds": int((at - now).total_seconds())},
                )
                done += 1
            if at <= now < at + timedelta(minutes=5) and await claim_cue(session, show.id, index, CuePhase.FIRE):
                to_room(session, show.id, {**base, "phase": CuePhase.FIRE})
                await emit(session, show.shop_id, EventType.SHOW_HIGH_POINT, {"show_id": show.id, **point})
                done += 1
    return done


async def claim_cue(session: AsyncSession, show_id: str, point: int, phase: CuePhase) -> bool:
    """True for the one caller that records this rhythm point's phase first."""
    return await ShowRepository(session).claim_cue(show_id, point, phase)


async def live_shows(session: AsyncSession) -> list[Show]:
    return await ShowRepository(session).live()


async def apply_effective_view(session: AsyncSession, shop_id: str, member_id: str) -> None:
    """A member's view became effective: a referral that converts on the first view converts now."""
    shop, member = await ShowRepository(session).shop_and_member(shop_id, member_id)
    if shop is not None and member is not None and member.shop_id == shop.id:
        await on_effective_view(session, shop, member)
