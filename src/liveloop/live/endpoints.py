from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from liveloop.kit.errors import NotFound, Unprocessable
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.live import schemas, service, tokens
from liveloop.live.gateway import Gateway
from liveloop.members import service as members
from liveloop.models import Show, ShowViewer
from liveloop.referral.clicks import DEVICE_COOKIE
from liveloop.referral.service import on_effective_view
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["live"])
public = APIRouter(prefix="/v1/public", route_class=UnitOfWorkRoute, tags=["public"])
sockets = APIRouter()


def _out(show: Show, counters: dict[str, int] | None = None) -> schemas.Show:
    out = schemas.Show.model_validate(show)
    out.scheduled_local = service.local_text(show.scheduled_at, show.host_timezone)
    out.counters = counters or {}
    return out


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _ws_url(request: Request, show_id: str) -> str:
    base = request.app.state.settings.public_base_url.rstrip("/")
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + f"/v1/live/{show_id}/ws"


@router.post("/shows", response_model=schemas.Show, status_code=201)
async def create_show(body: schemas.ShowCreate, session: Session, op: Operator = requires("live:write")) -> Any:
    return _out(await service.create_show(session, op.shop, body))


@router.get("/shows", response_model=list[schemas.Show])
async def list_shows(session: Session, status: str | None = None, op: Operator = requires("live:read")) -> Any:
    return [_out(s) for s in await service.list_shows(session, op.shop_id, status)]


@router.get("/shows/{show_id}", response_model=schemas.Show)
async def get_show(show_id: str, session: Session, op: Operator = requires("live:read")) -> Any:
    show = await service.get_show(session, op.shop_id, show_id)
    return _out(show, await service.counters(session, show.id))


@router.patch("/shows/{show_id}", response_model=schemas.Show)
async def update_show(
    show_id: str, body: schemas.ShowUpdate, session: Session, op: Operator = requires("live:write")
) -> Any:
    show = await service.get_show(session, op.shop_id, show_id)
    return _out(await service.update_show(session, show, body))


@router.post("/shows/{show_id}/start", response_model=schemas.Show)
async def start_show(show_id: str, session: Session, op: Operator = requires("live:write")) -> Any:
    return _out(await service.start_show(session, await service.get_show(session, op.shop_id, show_id)))


@router.post("/shows/{show_id}/end", response_model=schemas.Show)
async def end_show(
    show_id: str, session: Session, body: schemas.ShowEnd | None = None, op: Operator = requires("live:write")
) -> Any:
    show = await service.get_show(session, op.shop_id, show_id)
    replay = str(body.replay_url) if body and body.replay_url else None
    return _out(await service.end_show(session, show, replay))


@router.post("/shows/{show_id}/viewer-tokens", response_model=schemas.TokenOut, status_code=201)
async def member_token(
    show_id: str,
    body: schemas.ViewerTokenIn,
    request: Request,
    session: Session,
    op: Operator = requires("live:write"),
) -> Any:
    """A token for a signed-in member of the shop (the shop's backend asks for it and hands it to the page)."""
    show = await service.get_show(session, op.shop_id, show_id)
    if body.member_id:
        member = await members.get_member(session, op.shop_id, body.member_id)
    else:
        found = await members.find_by_external_id(session, op.shop_id, body.external_id or "")
        if found is None:
            raise NotFound("No member has this external_id; create the member first.", code="member_not_found")
        member = found
    if body.device_id and await service.link_device(session, op.shop_id, body.device_id, member.id):
        await on_effective_view(session, op.shop, member)
    token = tokens.mint(
        request.app.state.settings.secret_key,
        shop_id=op.shop_id,
        show_id=show.id,
        name=body.name or member.name or "Member",
        member_id=member.id,
    )
    return schemas.TokenOut(
        token=token,
        viewer_key=tokens.viewer_key(member.id, None),
        expires_in=int(tokens.VIEWER_TTL.total_seconds()),
        ws_url=_ws_url(request, show.id),
    )


class HostTokenIn(BaseModel):
    name: str | None = Field(None, max_length=60)


@router.post("/shows/{show_id}/host-token", response_model=schemas.TokenOut, status_code=201)
async def host_token(
    show_id: str,
    request: Request,
    session: Session,
    body: HostTokenIn | None = None,
    op: Operator = requires("live:write"),
) -> Any:
    """A token for the host console: comments appear as the host's, and the room's counters are visible."""
    show = await service.get_show(session, op.shop_id, show_id)
    token = tokens.mint(
        request.app.state.settings.secret_key,
        shop_id=op.shop_id,
        show_id=show.id,
        name=(body.name if body and body.name else show.host_name),
        device_id=f"host-{op.key_id}",
        role="host",
    )
    return schemas.TokenOut(
        token=token,
        viewer_key=f"d:host-{op.key_id}",
        expires_in=int(tokens.VIEWER_TTL.total_seconds()),
        ws_url=_ws_url(request, show.id),
    )


class RestrictionIn(BaseModel):
    viewer_key: str = Field(min_length=3, max_length=80, description="As shown in comments (vk)")
    kind: str = Field(pattern="^(mute|ban)$")
    minutes: int | None = Field(None, ge=1, le=60 * 24 * 30, description="Forever when absent")
    reason: str = Field("", max_length=200)


@router.post("/shows/{show_id}/restrictions", status_code=201)
async def restrict(
    show_id: str, body: RestrictionIn, session: Session, op: Operator = requires("live:write")
) -> dict[str, Any]:
    show = await service.get_show(session, op.shop_id, show_id)
    row = await service.restrict(session, show, body.viewer_key, body.kind, body.minutes, body.reason)
    return {"viewer_key": row.viewer_key, "kind": row.kind, "until": row.until}


@router.delete("/shows/{show_id}/restrictions/{kind}/{viewer_key}", status_code=204)
async def lift(
    show_id: str, kind: str, viewer_key: str, session: Session, op: Operator = requires("live:write")
) -> Response:
    if kind not in ("mute", "ban"):
        raise Unprocessable("kind is mute or ban.", code="invalid_restriction")
    await service.lift(session, await service.get_show(session, op.shop_id, show_id), viewer_key, kind)
    return Response(status_code=204)


@router.get("/shows/{show_id}/live-stats")
async def live_stats(show_id: str, request: Request, session: Session, op: Operator = requires("live:read")) -> Any:
    """Counters for the host console: viewers now, unique and effective viewers, likes, comments, shares."""
    show = await service.get_show(session, op.shop_id, show_id)
    room = _gateway(request).rooms.get(show.id)
    viewers = (
        await session.execute(
            select(func.count(ShowViewer.id), func.count(ShowViewer.effective_at)).where(ShowViewer.show_id == show.id)
        )
    ).one()
    return {
        "status": show.status,
        "viewers_now": room.viewers if room else 0,
        "unique_viewers": viewers[0],
        "effective_viewers": viewers[1],
        "counters": await service.counters(session, show.id),
    }


@public.post("/shows/{show_id}/join", response_model=schemas.TokenOut)
async def join(
    show_id: str, request: Request, response: Response, session: Session, body: schemas.JoinIn | None = None
) -> Any:
    """An anonymous viewer's token, tied to this browser's device id (the invite-link cookie when present)."""
    show = (await session.execute(select(Show).where(Show.id == show_id))).scalar_one_or_none()
    if show is None:
        raise NotFound("No such show.", code="show_not_found")
    device = request.cookies.get(DEVICE_COOKIE) or secrets.token_urlsafe(16)
    if len(device) > 80:
        device = secrets.token_urlsafe(16)
    response.set_cookie(DEVICE_COOKIE, device, max_age=31536000, httponly=True, samesite="lax")
    name = (body.name if body and body.name else None) or f"Guest {device[:4]}"
    token = tokens.mint(
        request.app.state.settings.secret_key, shop_id=show.shop_id, show_id=show.id, name=name, device_id=device
    )
    return schemas.TokenOut(
        token=token,
        viewer_key=tokens.viewer_key(None, device),
        expires_in=int(tokens.VIEWER_TTL.total_seconds()),
        ws_url=_ws_url(request, show.id),
    )


@sockets.websocket("/v1/live/{show_id}/ws")
async def room_socket(websocket: WebSocket, show_id: str) -> None:
    gateway: Gateway = websocket.app.state.gateway
    await gateway.serve(websocket, show_id)
