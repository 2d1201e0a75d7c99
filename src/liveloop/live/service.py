"""Shows: scheduling in the host's time zone, the rhythm plan, pinned products, start and end, moderation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import as_utc, is_valid_zone, utc_now, zone
from liveloop.live import schemas
from liveloop.live.aliases import alias, host_key
from liveloop.live.notify import to_room
from liveloop.markets import service as markets
from liveloop.members import service as members
from liveloop.models import EventType, Member, Shop, Show, ShowCounter, ShowCue, ShowRestriction, ShowViewer
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
        status="scheduled",
        video_provider=data.video.provider,
        hls_url=str(data.video.hls_url) if data.video.hls_url else None,
        pinned=[p.model_dump(mode="json") for p in data.pinned],
        rhythm=[p.model_dump() for p in rhythm],
        moderation=data.moderation.model_dump(),
        created_at=utc_now(),
    )
    session.add(show)
    await session.flush()
    await emit(session, shop.id, EventType.SHOW_SCHEDULED, show_payload(show))
    return show


async def get_show(session: AsyncSession, shop_id: str, show_id: str) -> Show:
    show = (await session.execute(select(Show).where(Show.shop_id == shop_id, Show.id == show_id))).scalar_one_or_none()
    if show is None:
        raise NotFound("No such show in this shop.", code="show_not_found")
    return show


async def list_shows(
    session: AsyncSession, shop_id: str, page: PageRequest, status: str | None = None
) -> tuple[list[Show], str | None]:
    """Shows, latest scheduled first."""
    query = select(Show).where(Show.shop_id == shop_id)
    if status:
        query = query.where(Show.status == status)
    return await paginate(session, query, page, [Show.scheduled_at, Show.id], descending=True)


async def update_show(session: AsyncSession, show: Show, data: schemas.ShowUpdate) -> Show:
    if show.status == "ended" and (data.pinned is not None or data.rhythm is not None or data.scheduled_at):
        raise Conflict("This show has ended; only its title, video and replay can change.", code="show_ended")
    if data.title:
        show.title = data.title
    if data.scheduled_at is not None:
        if show.status != "scheduled":
            raise Conflict("A show that has started cannot be rescheduled.", code="show_started")
        show.scheduled_at = _instant(data.scheduled_at, show.host_timezone)
    if data.pinned is not None:
        show.pinned = [p.model_dump(mode="json") for p in data.pinned]
        to_room(session, show.id, {"k": "pin", "card": "pinned", "products": show.pinned})
    if data.rhythm is not None:
        show.rhythm = [p.model_dump() for p in data.rhythm]
        to_room(session, show.id, {"k": "rhythm", "rhythm": show.rhythm})
    if data.moderation is not None:
        show.moderation = data.moderation.model_dump()
        to_room(session, show.id, {"k": "show", "moderation": True})
    if data.video is not None:
        show.video_provider = data.video.provider
        show.hls_url = str(data.video.hls_url) if data.video.hls_url else None
        to_room(session, show.id, {"k": "video", "provider": show.video_provider, "hls_url": show.hls_url})
    if data.replay_url is not None:
        show.replay_url = str(data.replay_url)
    show.updated_at = utc_now()
    await session.flush()
    return show


async def start_show(session: AsyncSession, show: Show) -> Show:
    if show.status == "live":
        return show  # starting twice changes nothing
    if show.status != "scheduled":
        raise Conflict("An ended show cannot go live again; schedule a new one.", code="show_ended")
    show.status = "live"
    show.started_at = utc_now()
    show.updated_at = show.started_at
    await session.flush()
    await emit(session, show.shop_id, EventType.SHOW_STARTED, show_payload(show))
    to_room(session, show.id, {"k": "show", "status": "live", "started_at": show.started_at.isoformat()})
    return show


async def end_show(session: AsyncSession, show: Show, replay_url: str | None = None) -> Show:
    if show.status == "ended":
        if replay_url:
            show.replay_url = replay_url
        return show
    if show.status != "live":
        raise Conflict("Only a live show can end; start it first or delete it.", code="show_not_live")
    show.status = "ended"
    show.ended_at = utc_now()
    show.updated_at = show.ended_at
    if replay_url:
        show.replay_url = replay_url
    await session.flush()
    await emit(session, show.shop_id, EventType.SHOW_ENDED, show_payload(show))
    to_room(session, show.id, {"k": "show", "status": "ended", "replay_url": show.replay_url})
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
    rows = await session.execute(select(ShowCounter.name, ShowCounter.value).where(ShowCounter.show_id == show_id))
    return {name: int(value) for name, value in rows.all()}


# --- moderation --------------------------------------------------------------------------------------
#
# The host names a viewer by the alias its comments carry (or, for a shop backend that knows its member, by
# member id); the server finds the verified viewer key behind it. Restrictions are stored and enforced on that
# key, so a viewer who copies another's alias gains nothing, and nobody can restrict the host in its own show.


async def viewer_by_alias(session: AsyncSession, show: Show, secret: str, alias_: str) -> str | None:
    """The viewer key of the show's viewer whose alias is ``alias_`` (present now or earlier), or None."""
    found = await session.execute(
        select(ShowViewer.viewer_key).where(ShowViewer.show_id == show.id, ShowViewer.alias == alias_).limit(1)
    )
    key = found.scalar_one_or_none()
    if key is not None:
        return str(key)
    # Viewers written before aliases were stored: fill theirs in (once per show) and look again.
    legacy = (
        await session.execute(
            select(ShowViewer.id, ShowViewer.viewer_key).where(
                ShowViewer.show_id == show.id, ShowViewer.alias.is_(None)
            )
        )
    ).all()
    for row_id, viewer_key in legacy:
        own = alias(secret, show.id, viewer_key)
        await session.execute(table(ShowViewer).update().where(ShowViewer.id == row_id).values(alias=own))
        if own == alias_:
            key = viewer_key
    return str(key) if key is not None else None


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
        raise NotFound(
            "No viewer of this show has this alias; use the `a` of one of the show's comments.",
            code="viewer_not_found",
        )
    if found == host_key(show.id) or (show.host_member_id is not None and found == f"m:{show.host_member_id}"):
        raise Forbidden("This alias is the show's host, who cannot be muted or banned.", code="cannot_restrict_host")
    return found, alias_


def _restriction(show_id: str, viewer_key: str, kind: str) -> Any:
    return select(ShowRestriction).where(
        ShowRestriction.show_id == show_id, ShowRestriction.viewer_key == viewer_key, ShowRestriction.kind == kind
    )


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
    if kind not in ("mute", "ban"):
        raise Unprocessable("kind is mute or ban.", code="invalid_restriction")
    until = utc_now() + timedelta(minutes=minutes) if minutes else None
    existing = (await session.execute(_restriction(show.id, viewer_key, kind))).scalar_one_or_none()
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
        session.add(existing)
    else:
        existing.until = until
        existing.reason = reason[:200]
    await session.flush()
    to_room(session, show.id, {"k": "restrict", "a": alias_, "kind": kind})
    return existing


async def lift(session: AsyncSession, show: Show, viewer_key: str, kind: str, *, alias_: str) -> None:
    row = (await session.execute(_restriction(show.id, viewer_key, kind))).scalar_one_or_none()
    if row is not None:
        await session.delete(row)
        await session.flush()
    to_room(session, show.id, {"k": "restrict", "a": alias_, "kind": kind, "lifted": True})


async def restrictions(session: AsyncSession, show_id: str) -> dict[str, set[str]]:
    """Viewer keys muted and banned right now."""
    now = utc_now()
    out: dict[str, set[str]] = {"mute": set(), "ban": set()}
    rows = await session.execute(
        select(ShowRestriction.viewer_key, ShowRestriction.kind, ShowRestriction.until).where(
            ShowRestriction.show_id == show_id
        )
    )
    for key, kind, until in rows.all():
        if until is None or until > now:
            out[kind].add(key)
    return out


# --- viewers -------------------------------------------------------------------------------------------


async def link_device(session: AsyncSession, shop_id: str, device_id: str, member_id: str) -> bool:
    """A device that watched anonymously turns out to be this member: its views become the member's.

    Returns whether any of those views was effective (which can convert the member's referral).
    """
    await session.execute(
        table(ShowViewer)
        .update()
        .where(ShowViewer.shop_id == shop_id, ShowViewer.device_id == device_id, ShowViewer.member_id.is_(None))
        .values(member_id=member_id)
    )
    effective = await session.execute(
        select(ShowViewer.id)
        .where(
            ShowViewer.shop_id == shop_id,
            ShowViewer.device_id == device_id,
            ShowViewer.member_id == member_id,
            ShowViewer.effective_at.is_not(None),
        )
        .limit(1)
    )
    return effective.first() is not None


async def due_cues(session: AsyncSession, now: datetime) -> int:
    """Announce each live show's coming high points ahead of time, then fire them, each exactly once."""
    done = 0
    for show in await live_shows(session):
        if show.started_at is None:
            continue
        for index, point in enumerate(show.rhythm):
            at = show.started_at + timedelta(minutes=int(point["at_minute"]))
            announce_at = at - timedelta(seconds=int(point.get("announce_before_seconds", 120)))
            base = {"k": "cue", "point": index, "kind": point["kind"], "title": point["title"], "at": at.isoformat()}
            if announce_at <= now < at and await claim_cue(session, show.id, index, "announce"):
                to_room(session, show.id, {**base, "phase": "announce", "in_seconds": int((at - now).total_seconds())})
                done += 1
            if at <= now < at + timedelta(minutes=5) and await claim_cue(session, show.id, index, "fire"):
                to_room(session, show.id, {**base, "phase": "fire"})
                await emit(session, show.shop_id, EventType.SHOW_HIGH_POINT, {"show_id": show.id, **point})
                done += 1
    return done


async def claim_cue(session: AsyncSession, show_id: str, point: int, phase: str) -> bool:
    """True for the one caller that records this rhythm point's phase first."""
    result = await session.execute(
        insert_ignoring_conflicts(
            session, table(ShowCue), {"show_id": show_id, "point": point, "phase": phase, "done_at": utc_now()}
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def live_shows(session: AsyncSession) -> list[Show]:
    return list((await session.execute(select(Show).where(Show.status == "live"))).scalars())


async def apply_effective_view(session: AsyncSession, shop_id: str, member_id: str) -> None:
    """A member's view became effective: a referral that converts on the first view converts now."""
    shop = await session.get(Shop, shop_id)
    member = await session.get(Member, member_id)
    if shop is not None and member is not None and member.shop_id == shop.id:
        await on_effective_view(session, shop, member)
