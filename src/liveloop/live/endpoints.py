from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Request, Response
from pydantic import Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit.errors import NotFound
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.openapi import errors
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import Id, PathId, QueryText, RequestModel
from liveloop.live import cohost, interactions, schemas, service, tokens, video
from liveloop.live.aliases import ALIAS_LENGTH, alias, host_device, host_key
from liveloop.live.gateway import Gateway
from liveloop.live.notify import to_room
from liveloop.live.protocol import BusKind
from liveloop.live.repository import ShowRepository
from liveloop.members import devices
from liveloop.members import service as members
from liveloop.models import EventType, Show
from liveloop.orders.service import claim_event
from liveloop.referral import lottery
from liveloop.referral import schemas as referral_schemas
from liveloop.referral.service import on_effective_view
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["live"])
public = APIRouter(prefix="/v1/public", route_class=UnitOfWorkRoute, tags=["public"])


def _out(show: Show, counters: dict[str, int] | None = None) -> schemas.Show:
    out = schemas.Show.model_validate(show)
    out.scheduled_local = service.local_text(show.scheduled_at, show.host_timezone)
    out.counters = counters or {}
    return out


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _ws_url(request: Request, show_id: str) -> str:
    base: str = request.app.state.settings.public_base_url.rstrip("/")
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + f"/v1/live/{show_id}/ws"


@router.post("/draws/{draw_id}/run", response_model=referral_schemas.Draw, tags=["referral"])
async def run_draw(
    draw_id: PathId,
    session: Session,
    show_id: Annotated[str | None, QueryText(64)] = None,
    op: Operator = requires("campaigns:write"),
) -> Any:
    """Run the draw; with ``show_id`` (a live show of this shop) the winners are announced in its room.

    Registered by the live room, which announces the winners; the draw itself is the referral domain's.
    """
    draw = await lottery.get_draw(session, draw_id, op.shop_id)
    show = await service.get_show(session, op.shop_id, show_id) if show_id else None
    view = lottery.draw_view(await lottery.run_draw(session, draw))
    if show is not None:
        # The room is public: winners by ticket and public name only.
        winners = await lottery.public_winners(session, draw)
        to_room(
            session,
            show.id,
            {"k": BusKind.DRAW, "draw_id": draw.id, "winners": winners, "seed": draw.seed, "seed_hash": draw.seed_hash},
        )
    return view


@router.post("/shows", response_model=schemas.Show, status_code=201)
async def create_show(
    body: schemas.ShowCreate, session: Session, op: Operator = requires("live:write")
) -> schemas.Show:
    return _out(await service.create_show(session, op.shop, body))


@router.get("/shows", response_model=Page[schemas.Show])
async def list_shows(
    session: Session,
    page: Pagination,
    status: Literal["scheduled", "live", "ended"] | None = None,
    op: Operator = requires("live:read"),
) -> Page[schemas.Show]:
    """Shows, latest scheduled first."""
    found, cursor = await service.list_shows(session, op.shop_id, page, status)
    return Page[schemas.Show](items=[_out(s) for s in found], next_cursor=cursor)


@router.get("/shows/{show_id}", response_model=schemas.Show)
async def get_show(show_id: PathId, session: Session, op: Operator = requires("live:read")) -> schemas.Show:
    show = await service.get_show(session, op.shop_id, show_id)
    return _out(show, await service.counters(session, show.id))


@router.patch("/shows/{show_id}", response_model=schemas.Show)
async def update_show(
    show_id: PathId, body: schemas.ShowUpdate, session: Session, op: Operator = requires("live:write")
) -> schemas.Show:
    show = await service.get_show(session, op.shop_id, show_id)
    return _out(await service.update_show(session, show, body))


@router.post("/shows/{show_id}/start", response_model=schemas.Show)
async def start_show(show_id: PathId, session: Session, op: Operator = requires("live:write")) -> schemas.Show:
    return _out(await service.start_show(session, await service.get_show(session, op.shop_id, show_id)))


@router.post("/shows/{show_id}/end", response_model=schemas.Show)
async def end_show(
    show_id: PathId, session: Session, body: schemas.ShowEnd | None = None, op: Operator = requires("live:write")
) -> schemas.Show:
    show = await service.get_show(session, op.shop_id, show_id)
    replay = str(body.replay_url) if body and body.replay_url else None
    return _out(await service.end_show(session, show, replay))


@router.post("/shows/{show_id}/viewer-tokens", response_model=schemas.TokenOut, status_code=201)
async def member_token(
    show_id: PathId,
    body: schemas.ViewerTokenIn,
    request: Request,
    session: Session,
    op: Operator = requires("live:write"),
) -> schemas.TokenOut:
    """A token for a signed-in member of the shop (the shop's backend asks for it and hands it to the page).

    ``device_id`` is the browser's ``ll_did`` cookie value as liveloop set it; one this server did not sign
    answers 422 ``invalid_device``."""
    show = await service.get_show(session, op.shop_id, show_id)
    device_id = devices.require(request.app.state.settings.secret_key, body.device_id)
    if body.member_id:
        member = await members.get_member(session, op.shop_id, body.member_id)
    else:
        found = await members.find_by_external_id(session, op.shop_id, body.external_id or "")
        if found is None:
            raise NotFound("No member has this external_id; create the member first.", code="member_not_found")
        member = found
    if device_id and await service.link_device(session, op.shop_id, device_id, member.id):
        await on_effective_view(session, op.shop, member)
    token = tokens.mint(
        request.app.state.settings.secret_key,
        shop_id=op.shop_id,
        show_id=show.id,
        name=body.name or members.public_name(member),  # the room is public: never the real name unasked
        member_id=member.id,
    )
    return schemas.TokenOut(
        token=token,
        viewer_key=tokens.viewer_key(member.id, None),
        expires_in=int(tokens.VIEWER_TTL.total_seconds()),
        ws_url=_ws_url(request, show.id),
    )


class HostTokenIn(RequestModel):
    name: str | None = Field(None, max_length=60)


@router.post("/shows/{show_id}/host-token", response_model=schemas.TokenOut, status_code=201)
async def host_token(
    show_id: PathId,
    request: Request,
    session: Session,
    body: HostTokenIn | None = None,
    op: Operator = requires("live:write"),
) -> schemas.TokenOut:
    """A token for the host console: comments appear as the host's, and the room's counters are visible.

    Every host console of a show shares one identity in it, which no viewer can take and nobody can restrict.
    """
    show = await service.get_show(session, op.shop_id, show_id)
    token = tokens.mint(
        request.app.state.settings.secret_key,
        shop_id=op.shop_id,
        show_id=show.id,
        name=(body.name if body and body.name else show.host_name),
        device_id=host_device(show.id),
        role="host",
        key_id=op.key_id,
    )
    return schemas.TokenOut(
        token=token,
        viewer_key=host_key(show.id),
        expires_in=int(tokens.VIEWER_TTL.total_seconds()),
        ws_url=_ws_url(request, show.id),
    )


AliasText = Annotated[
    str,
    Field(
        min_length=ALIAS_LENGTH,
        max_length=ALIAS_LENGTH,
        pattern="^[A-Za-z0-9_-]+$",
        description="The viewer's alias in this show: the `a` of its comments",
    ),
]


class RestrictionIn(RequestModel):
    alias: AliasText | None = None
    member_id: Id | None = Field(None, description="A member of the shop, for a backend that knows its member")
    kind: str = Field(pattern="^(mute|ban)$")
    minutes: int | None = Field(None, ge=1, le=60 * 24 * 30, description="Forever when absent")
    reason: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> RestrictionIn:
        if (self.alias is None) == (self.member_id is None):
            raise ValueError("give alias or member_id (one of them)")
        return self


async def _target(
    request: Request, session: Session, show: Show, *, alias_: str | None = None, member_id: str | None = None
) -> tuple[str, str]:
    secret = request.app.state.settings.secret_key
    connected = _gateway(request).connected_key(show.id, alias_) if alias_ is not None else None
    return await service.restriction_target(
        session, show, secret, alias_=alias_, member_id=member_id, connected=connected
    )


@router.post("/shows/{show_id}/restrictions", status_code=201, response_model=schemas.Restriction)
async def restrict(
    show_id: PathId, body: RestrictionIn, request: Request, session: Session, op: Operator = requires("live:write")
) -> schemas.Restriction:
    """Mute or ban a viewer, named by its alias (or a member by id). It holds across reconnects."""
    show = await service.get_show(session, op.shop_id, show_id)
    key, alias_ = await _target(request, session, show, alias_=body.alias, member_id=body.member_id)
    row = await service.restrict(session, show, key, body.kind, body.minutes, body.reason, alias_=alias_)
    return schemas.Restriction(alias=alias_, kind=row.kind, until=row.until)


async def _lift(request: Request, session: AsyncSession, op: Operator, show_id: str, kind: str, **target: str) -> None:
    """Lift a restriction of the viewer named by ``alias_`` or ``member_id`` (the same rules as restricting)."""
    kind = service.restriction_kind(kind)  # a wrong kind is refused before anything is looked up
    show = await service.get_show(session, op.shop_id, show_id)
    key, alias_ = await _target(request, session, show, **target)
    await service.lift(session, show, key, kind, alias_=alias_)


@router.delete("/shows/{show_id}/restrictions/{kind}/{alias}", status_code=204)
async def lift(
    show_id: PathId,
    kind: Annotated[str, Path(max_length=8, description="mute or ban")],
    alias: Annotated[str, Path(max_length=40, description="The viewer's alias in this show")],
    request: Request,
    session: Session,
    op: Operator = requires("live:write"),
) -> Response:
    await _lift(request, session, op, show_id, kind, alias_=alias)
    return Response(status_code=204)


@router.delete("/shows/{show_id}/restrictions/{kind}/members/{member_id}", status_code=204)
async def lift_for_member(
    show_id: PathId,
    kind: Annotated[str, Path(max_length=8, description="mute or ban")],
    member_id: PathId,
    request: Request,
    session: Session,
    op: Operator = requires("live:write"),
) -> Response:
    await _lift(request, session, op, show_id, kind, member_id=member_id)
    return Response(status_code=204)


@router.get("/shows/{show_id}/live-stats")
async def live_stats(
    show_id: PathId, request: Request, session: Session, op: Operator = requires("live:read")
) -> schemas.LiveStats:
    """Counters for the host console: viewers now, unique and effective viewers, likes, comments, shares."""
    show = await service.get_show(session, op.shop_id, show_id)
    room = _gateway(request).rooms.get(show.id)
    unique, effective = await ShowRepository(session).viewer_counts(show.id)
    return schemas.LiveStats(
        status=show.status,
        viewers_now=room.viewers if room else 0,
        unique_viewers=unique,
        effective_viewers=effective,
        counters=await service.counters(session, show.id),
    )


@public.post("/shows/{show_id}/join", response_model=schemas.TokenOut)
async def join(
    show_id: PathId, request: Request, response: Response, session: Session, body: schemas.JoinIn | None = None
) -> schemas.TokenOut:
    """An anonymous viewer's token, tied to this browser's device (the ``ll_did`` cookie).

    The device is the one this server issued to the browser (by an invite link or an earlier join); a browser
    without one, or with a value this server did not sign, is given a fresh one in the ``ll_did`` cookie."""
    show = await ShowRepository(session).public_or_raise(show_id)
    secret = request.app.state.settings.secret_key
    device, cookie = devices.identify(secret, request.headers.get("cookie", ""))
    devices.set_cookie(response, cookie, request.scope)
    name = (body.name if body and body.name else None) or devices.guest_name(secret, device)
    token = tokens.mint(secret, shop_id=show.shop_id, show_id=show.id, name=name, device_id=device)
    return schemas.TokenOut(
        token=token,
        viewer_key=tokens.viewer_key(None, device),
        expires_in=int(tokens.VIEWER_TTL.total_seconds()),
        ws_url=_ws_url(request, show.id),
    )


# --- interactions ------------------------------------------------------------------------------------------


@router.post("/shows/{show_id}/interactions", response_model=schemas.Interaction, status_code=201)
async def launch_interaction(
    show_id: PathId,
    body: Annotated[schemas.InteractionCreate, Body()],
    session: Session,
    op: Operator = requires("live:write"),
) -> schemas.Interaction:
    """Launch a mechanic: its card appears in the room at once and it settles when its window closes."""
    show = await service.get_show(session, op.shop_id, show_id)
    return schemas.Interaction.model_validate(await interactions.launch(session, show, body))


@router.get("/shows/{show_id}/interactions", response_model=Page[schemas.Interaction])
async def list_interactions(
    show_id: PathId, session: Session, page: Pagination, op: Operator = requires("live:read")
) -> Page[schemas.Interaction]:
    """The show's mechanics, the latest launched first."""
    show = await service.get_show(session, op.shop_id, show_id)
    items, cursor = await interactions.list_for_show(session, show.id, page)
    return Page[schemas.Interaction](items=[schemas.Interaction.model_validate(i) for i in items], next_cursor=cursor)


@router.post("/interactions/{interaction_id}/settle", response_model=schemas.Interaction)
async def settle_interaction(
    interaction_id: PathId, session: Session, op: Operator = requires("live:write")
) -> schemas.Interaction:
    """Close it now and hand out what it promised (settling twice changes nothing)."""
    settled = await interactions.settle(session, await interactions.get(session, op.shop_id, interaction_id))
    return schemas.Interaction.model_validate(settled)


@public.get("/interactions/{interaction_id}", response_model=schemas.InteractionCard, response_model_exclude_unset=True)
async def public_interaction(interaction_id: PathId, session: Session) -> schemas.InteractionCard:
    """Anyone may check a settled lottery: the seed's hash before, the seed, entries and winners after."""
    found = await interactions.get_public(session, interaction_id)
    # Results name viewers by alias and room name only; what the card leaves out is left out of the answer.
    return schemas.InteractionCard.model_validate(interactions.public_card(found))


# --- co-hosts and video ----------------------------------------------------------------------------------


@router.get("/shows/{show_id}/cohosts", response_model=Page[schemas.CohostRequest])
async def cohost_queue(
    show_id: PathId, request: Request, session: Session, page: Pagination, op: Operator = requires("live:read")
) -> Page[schemas.CohostRequest]:
    """Viewers asking to join the host on video, in the order they asked (by alias and name, as in the room)."""
    show = await service.get_show(session, op.shop_id, show_id)
    found, cursor = await cohost.queue(session, show.id, page)
    secret = request.app.state.settings.secret_key
    return Page[schemas.CohostRequest](
        items=[
            schemas.CohostRequest(id=r.id, alias=alias(secret, show.id, r.viewer_key), name=r.name, status=r.status)
            for r in found
        ],
        next_cursor=cursor,
    )


@router.post("/shows/{show_id}/cohosts/{request_id}/{decision}")
async def decide_cohost(
    show_id: PathId,
    request_id: PathId,
    decision: Annotated[str, Path(max_length=16, description="approve or decline")],
    http_request: Request,
    session: Session,
    op: Operator = requires("live:write"),
) -> schemas.CohostDecision:
    """Approving grants video publishing to the viewer who asked, and only to the token that viewer holds."""
    if decision not in ("approve", "decline"):
        raise NotFound("Use /approve or /decline.", code="not_found")
    show = await service.get_show(session, op.shop_id, show_id)
    secret = http_request.app.state.settings.secret_key
    request = await cohost.decide(session, show.id, request_id, approve=decision == "approve", secret=secret)
    return schemas.CohostDecision(id=request.id, status=request.status)


def _viewer(request: Request, show_id: str) -> tokens.ViewerClaims:
    return tokens.from_authorization(
        request.app.state.settings.secret_key, request.headers.get("authorization", ""), show_id=show_id
    )


@public.post("/shows/{show_id}/video-token", responses=errors(401))
async def video_token(show_id: PathId, request: Request, session: Session) -> schemas.VideoToken:
    """The provider token for this viewer: hosts and approved co-hosts may publish, everyone else watches.

    Publishing is decided by the verified identity of the token sent (an approved request of that very viewer);
    in the provider's room the viewer appears by its alias, as in the live room.
    """
    claims = _viewer(request, show_id)
    await _gateway(request).check_key(claims)
    provider = video.require(request.app.state.settings)
    publish = claims.is_host or await cohost.approved(session, show_id, claims.key) is not None
    identity = alias(request.app.state.settings.secret_key, show_id, claims.key)
    return schemas.VideoToken(
        provider="livekit",
        url=provider.url,
        room=video.room_name(show_id),
        token=provider.token(video.room_name(show_id), identity, claims.name, publish=publish),
        can_publish=publish,
    )


@public.post("/webhooks/livekit", status_code=204, responses=errors(401))
async def livekit_webhook(request: Request, session: Session) -> Response:
    """LiveKit's signed webhooks (room started/finished, participants, egress). Each event is applied once."""
    provider = video.require(request.app.state.settings)
    event = provider.receive_webhook(await request.body(), request.headers.get("authorization"))
    room = (event.get("room") or {}).get("name", "")
    show_id = room.removeprefix("liveloop-") if room.startswith("liveloop-") else None
    show = await ShowRepository(session).by_id(show_id) if show_id else None
    if show is None:
        return Response(status_code=204)  # a room that is not one of our shows: acknowledged, ignored
    if await claim_event(session, show.shop_id, "livekit", str(event.get("id") or ""), str(event.get("event"))):
        await emit(
            session,
            show.shop_id,
            EventType.SHOW_VIDEO_EVENT,
            {
                "show_id": show.id,
                "event": event.get("event"),
                "participant": (event.get("participant") or {}).get("identity"),
            },
        )
    return Response(status_code=204)
