"""The co-host queue: viewers ask to join the host on video; the host approves or declines.

A request belongs to the verified viewer key of the token that asked; approving it lets that viewer's own
token publish video (``approved``), and the room hears of it only by the viewer's alias and name.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.errors import Conflict, NotFound
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.time import utc_now
from liveloop.live.aliases import alias
from liveloop.live.notify import to_room
from liveloop.live.tokens import ViewerClaims
from liveloop.models import CohostRequest


async def ask(session: AsyncSession, shop_id: str, show_id: str, claims: ViewerClaims) -> CohostRequest:
    """Join the queue (asking again while waiting changes nothing; after a decline, it asks anew)."""
    existing = (
        await session.execute(
            select(CohostRequest).where(CohostRequest.show_id == show_id, CohostRequest.viewer_key == claims.key)
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.status in ("declined", "left"):
            existing.status = "waiting"
            existing.decided_at = None
            await session.flush()
            to_room(session, show_id, {"k": "cohost_queue", "change": "asked", "name": existing.name})
        return existing
    request = CohostRequest(
        id=new_id("coh"),
        shop_id=shop_id,
        show_id=show_id,
        viewer_key=claims.key,
        member_id=claims.member_id,
        name=claims.name or "Guest",
        status="waiting",
        created_at=utc_now(),
    )
    session.add(request)
    await session.flush()
    to_room(session, show_id, {"k": "cohost_queue", "change": "asked", "name": request.name})
    return request


async def queue(session: AsyncSession, show_id: str, page: PageRequest) -> tuple[list[CohostRequest], str | None]:
    """Requests to join the host, in the order they were made."""
    query = select(CohostRequest).where(CohostRequest.show_id == show_id)
    return await paginate(session, query, page, [CohostRequest.created_at, CohostRequest.id])


async def decide(session: AsyncSession, show_id: str, request_id: str, *, approve: bool, secret: str) -> CohostRequest:
    request = (
        await session.execute(
            select(CohostRequest).where(CohostRequest.show_id == show_id, CohostRequest.id == request_id)
        )
    ).scalar_one_or_none()
    if request is None:
        raise NotFound("No such co-host request in this show.", code="cohost_request_not_found")
    status = "approved" if approve else "declined"
    if request.status == status:
        return request
    if request.status not in ("waiting", "approved"):
        raise Conflict(f"This request was {request.status}.", code="cohost_request_closed")
    request.status = status
    request.decided_at = utc_now()
    await session.flush()
    change = {
        "k": "cohost_queue",
        "change": status,
        "name": request.name,
        "a": alias(secret, show_id, request.viewer_key),
    }
    to_room(session, show_id, change)
    return request


async def approved(session: AsyncSession, show_id: str, viewer_key: str) -> CohostRequest | None:
    return (
        await session.execute(
            select(CohostRequest).where(
                CohostRequest.show_id == show_id,
                CohostRequest.viewer_key == viewer_key,
                CohostRequest.status == "approved",
            )
        )
    ).scalar_one_or_none()
