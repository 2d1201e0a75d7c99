"""The co-host queue: viewers ask to join the host on video; the host approves or declines.

A request belongs to the verified viewer key of the token that asked; approving it lets that viewer's own
token publish video (``approved``), and the room hears of it only by the viewer's alias and name.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.errors import Conflict
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import utc_now
from liveloop.live.aliases import alias
from liveloop.live.notify import to_room
from liveloop.live.protocol import BusKind
from liveloop.live.repository import CohostRepository
from liveloop.live.tokens import ViewerClaims
from liveloop.models import CohostRequest, CohostStatus


async def ask(session: AsyncSession, shop_id: str, show_id: str, claims: ViewerClaims) -> CohostRequest:
    """Join the queue (asking again while waiting changes nothing; after a decline, it asks anew)."""
    requests = CohostRepository(session)
    existing = await requests.of_viewer(show_id, claims.key)
    if existing is not None:
        if existing.status in (CohostStatus.DECLINED, CohostStatus.LEFT):
            existing.status = CohostStatus.WAITING
            existing.decided_at = None
            await session.flush()
            to_room(session, show_id, {"k": BusKind.COHOST_QUEUE, "change": "asked", "name": existing.name})
        return existing
    request = CohostRequest(
        id=new_id("coh"),
        shop_id=shop_id,
        show_id=show_id,
        viewer_key=claims.key,
        member_id=claims.member_id,
        name=claims.name or "Guest",
        status=CohostStatus.WAITING,
        created_at=utc_now(),
    )
    await requests.add(request)
    to_room(session, show_id, {"k": BusKind.COHOST_QUEUE, "change": "asked", "name": request.name})
    return request


async def queue(session: AsyncSession, show_id: str, page: PageRequest) -> tuple[list[CohostRequest], str | None]:
    """Requests to join the host, in the order they were made."""
    return await CohostRepository(session).page_of_show(show_id, page)


async def decide(session: AsyncSession, show_id: str, request_id: str, *, approve: bool, secret: str) -> CohostRequest:
    request = await CohostRepository(session).in_show_or_raise(show_id, request_id)
    status = CohostStatus.APPROVED if approve else CohostStatus.DECLINED
    if request.status == status:
        return request
    if request.status not in (CohostStatus.WAITING, CohostStatus.APPROVED):
        raise Conflict(f"This request was {request.status}.", code="cohost_request_closed")
    request.status = status
    request.decided_at = utc_now()
    await session.flush()
    change = {
        "k": BusKind.COHOST_QUEUE,
        "change": status,
        "name": request.name,
        "a": alias(secret, show_id, request.viewer_key),
    }
    to_room(session, show_id, change)
    return request


async def approved(session: AsyncSession, show_id: str, viewer_key: str) -> CohostRequest | None:
    return await CohostRepository(session).approved(show_id, viewer_key)
