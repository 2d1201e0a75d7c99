from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response

from liveloop.kit.errors import NotFound
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.time import utc_now, week_start_utc
from liveloop.live.notify import to_room
from liveloop.live.service import get_show
from liveloop.members.service import get_member
from liveloop.models import Shop
from liveloop.referral import groups, links, lottery, schemas, service
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["referral"])
public = APIRouter(route_class=UnitOfWorkRoute, tags=["public"])


async def _campaign_out(session: Session, campaign: Any) -> schemas.Campaign:
    out = schemas.Campaign.model_validate(campaign)
    out.budgets = [
        schemas.Budget(unit=b.unit, limit=b.limit_amount, spent=b.spent)
        for b in await service.budgets(session, campaign.id)
    ]
    return out


@router.post("/campaigns", response_model=schemas.Campaign, status_code=201)
async def create_campaign(
    body: schemas.CampaignCreate, session: Session, op: Operator = requires("campaigns:write")
) -> Any:
    return await _campaign_out(session, await service.create_campaign(session, op.shop_id, body))


@router.get("/campaigns", response_model=list[schemas.Campaign])
async def list_campaigns(session: Session, op: Operator = requires("campaigns:read")) -> Any:
    return [await _campaign_out(session, c) for c in await service.list_campaigns(session, op.shop_id)]


@router.get("/campaigns/{campaign_id}", response_model=schemas.Campaign)
async def get_campaign(campaign_id: str, session: Session, op: Operator = requires("campaigns:read")) -> Any:
    return await _campaign_out(session, await service.get_campaign(session, op.shop_id, campaign_id))


@router.patch("/campaigns/{campaign_id}", response_model=schemas.Campaign)
async def update_campaign(
    campaign_id: str, body: schemas.CampaignUpdate, session: Session, op: Operator = requires("campaigns:write")
) -> Any:
    campaign = await service.get_campaign(session, op.shop_id, campaign_id)
    return await _campaign_out(session, await service.update_campaign(session, campaign, body))


@router.get("/campaigns/{campaign_id}/leaderboard", response_model=list[schemas.LeaderboardRow])
async def campaign_leaderboard(
    campaign_id: str, session: Session, limit: int = 20, period: str = "all", op: Operator = requires("campaigns:read")
) -> Any:
    campaign = await service.get_campaign(session, op.shop_id, campaign_id)
    since = week_start_utc(utc_now(), op.shop.reporting_timezone) if period == "week" else None
    return await service.leaderboard(session, campaign.id, limit=min(limit, 200), since=since)


@router.get("/referrals", response_model=list[schemas.Referral])
async def list_referrals(
    session: Session,
    campaign_id: str | None = None,
    member_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
    op: Operator = requires("campaigns:read"),
) -> Any:
    return await service.list_referrals(
        session, op.shop_id, campaign_id=campaign_id, inviter_id=member_id, status=status, limit=min(limit, 1000)
    )


@router.get("/reviews", response_model=list[schemas.Review])
async def list_reviews(
    session: Session, status: str | None = "pending", op: Operator = requires("campaigns:read")
) -> Any:
    return await service.list_reviews(session, op.shop_id, status if status != "all" else None)


@router.post("/reviews/{review_id}/approve", response_model=schemas.Review)
async def approve(
    review_id: str, body: schemas.ReviewDecision, session: Session, op: Operator = requires("reviews:write")
) -> Any:
    return await service.decide_review(session, op.shop, review_id, approve=True, note=body.note, decided_by=op.key_id)


@router.post("/reviews/{review_id}/reject", response_model=schemas.Review)
async def reject(
    review_id: str, body: schemas.ReviewDecision, session: Session, op: Operator = requires("reviews:write")
) -> Any:
    return await service.decide_review(session, op.shop, review_id, approve=False, note=body.note, decided_by=op.key_id)


@router.post("/campaigns/{campaign_id}/draws", response_model=schemas.Draw, status_code=201)
async def create_draw(
    campaign_id: str, body: schemas.DrawCreate, session: Session, op: Operator = requires("campaigns:write")
) -> Any:
    campaign = await service.get_campaign(session, op.shop_id, campaign_id)
    draw = await lottery.create_draw(session, campaign, prize_count=body.prize_count, prize=body.prize.model_dump())
    return lottery.public_view(draw)


@router.post("/draws/{draw_id}/run", response_model=schemas.Draw)
async def run_draw(
    draw_id: str, session: Session, show_id: str | None = None, op: Operator = requires("campaigns:write")
) -> Any:
    """Run the draw; with ``show_id`` (a live show of this shop) the winners are announced in its room."""
    draw = await lottery.get_draw(session, draw_id, op.shop_id)
    show = await get_show(session, op.shop_id, show_id) if show_id else None
    view = lottery.public_view(await lottery.run_draw(session, draw))
    if show is not None:
        to_room(
            session,
            show.id,
            {"k": "draw", "draw_id": draw.id, "winners": draw.winners, "seed": draw.seed, "seed_hash": draw.seed_hash},
        )
    return view


@public.get("/v1/public/draws/{draw_id}", tags=["public"])
async def public_draw(draw_id: str, session: Session) -> Any:
    """Anyone may see a draw: the seed's hash before it runs; the seed, tickets and winners after."""
    return lottery.public_view(await lottery.get_draw(session, draw_id))


@public.post("/v1/public/draws/verify", response_model=schemas.DrawVerifyOut, tags=["public"])
async def verify_draw(body: schemas.DrawVerifyIn) -> Any:
    """Recompute a draw from its revealed seed and ticket list.

    At most 100,000 tickets and 10,000 winners per request (larger draws verify offline with the published
    algorithm); the work is O(n log n) in the tickets."""
    recomputed = lottery.pick_winners(body.seed, body.draw_id, body.ticket_ids, body.prize_count)
    return {
        "seed_matches_hash": secrets.compare_digest(lottery.seed_hash(body.seed), body.seed_hash.lower()),
        "winners_match": recomputed == body.winners,
        "recomputed_winners": recomputed,
    }


@public.get(
    "/v1/public/qr/{token}.{kind}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
    tags=["public"],
)
async def public_qr(token: str, kind: str, request: Request) -> Response:
    """An invite link's QR code for an `<img>` or an email, without an API key.

    Take the address from `qr_png` / `qr_svg` of `GET /v1/members/{id}/invite-links`: it is signed with the
    server's secret key and holds only what the invite link itself shows (shop, code, show, host)."""
    if kind not in ("png", "svg"):
        raise NotFound("QR codes come as .png or .svg.", code="unknown_format")
    settings = request.app.state.settings
    target = links.read_qr_token(settings.secret_key, token)
    if target is None:
        raise NotFound(
            "This QR address is not valid (altered, or signed with another key); take a fresh one from "
            "GET /v1/members/{id}/invite-links.",
            code="invalid_qr_link",
        )
    url = links.invite_url(
        settings.public_base_url,
        target.shop_slug,
        target.code,
        channel="qr",
        show_id=target.show_id,
        host_id=target.host_id,
    )
    return Response(
        links.qr(url, kind),
        media_type="image/png" if kind == "png" else "image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def _group_out(session: Session, request: Request, shop: Shop, group: Any) -> dict[str, Any]:
    base = request.app.state.settings.public_base_url
    return {
        "id": group.id,
        "campaign_id": group.campaign_id,
        "name": group.name,
        "code": group.code,
        "owner_id": group.owner_id,
        "extra_offer": group.extra_offer,
        "weekly_target": group.weekly_target,
        "link": links.invite_url(base, shop.slug, group.code, channel="copy"),
        **await groups.status(session, shop, group),
    }


@router.post("/groups", response_model=schemas.Group, status_code=201)
async def create_group(
    body: schemas.GroupCreate, request: Request, session: Session, op: Operator = requires("campaigns:write")
) -> Any:
    await service.get_campaign(session, op.shop_id, body.campaign_id)
    owner = await get_member(session, op.shop_id, body.owner_id)
    group = await groups.create_group(
        session,
        op.shop_id,
        campaign_id=body.campaign_id,
        name=body.name,
        owner_id=owner.id,
        extra_offer=body.extra_offer.model_dump(),
        weekly_target=body.weekly_target,
        base_perk_level=body.base_perk_level,
    )
    return await _group_out(session, request, op.shop, group)


@router.get("/groups/{group_id}", response_model=schemas.Group)
async def get_group(
    group_id: str, request: Request, session: Session, op: Operator = requires("campaigns:read")
) -> Any:
    return await _group_out(session, request, op.shop, await groups.get_group(session, op.shop_id, group_id))


@router.get("/groups/{group_id}/leaderboard", response_model=list[schemas.LeaderboardRow])
async def group_leaderboard(
    group_id: str, session: Session, limit: int = 20, op: Operator = requires("campaigns:read")
) -> Any:
    group = await groups.get_group(session, op.shop_id, group_id)
    ids = await groups.member_ids(session, group.id)
    return await service.leaderboard(session, group.campaign_id, limit=min(limit, 200), inviter_ids=ids)
