from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from liveloop.events.service import emit
from liveloop.kit.errors import NotFound
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import PathId, QueryText, RequestModel
from liveloop.kit.signing import keyed_hash
from liveloop.kit.time import utc_now, week_start_utc
from liveloop.members import devices
from liveloop.members import schemas as member_schemas
from liveloop.members import service as member_service
from liveloop.members.service import get_member
from liveloop.models import Campaign, EventType, Shop, VipGroup
from liveloop.models.referral import ShareChannel
from liveloop.referral import groups, links, lottery, schemas, service
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["referral"])
public = APIRouter(route_class=UnitOfWorkRoute, tags=["public"])
# Under the member's path: the sign-up (attributed to whoever invited the member) and the member's referral side.
members = APIRouter(prefix="/v1/members", route_class=UnitOfWorkRoute, tags=["members"])

# Leaderboards stay top-N lists.
LeaderboardLimit = Annotated[int, Query(ge=1, le=200, description="How many top rows (at most 200)")]


async def _campaign_out(session: Session, campaign: Campaign) -> schemas.Campaign:
    out = schemas.Campaign.model_validate(campaign)
    out.budgets = [
        schemas.Budget(unit=b.unit, limit=b.limit_amount, spent=b.spent)
        for b in await service.budgets(session, campaign.id)
    ]
    return out


@router.post("/campaigns", response_model=schemas.Campaign, status_code=201)
async def create_campaign(
    body: schemas.CampaignCreate, session: Session, op: Operator = requires("campaigns:write")
) -> schemas.Campaign:
    return await _campaign_out(session, await service.create_campaign(session, op.shop_id, body))


@router.get("/campaigns", response_model=Page[schemas.Campaign])
async def list_campaigns(
    session: Session, page: Pagination, op: Operator = requires("campaigns:read")
) -> Page[schemas.Campaign]:
    """Campaigns, newest first."""
    found, cursor = await service.list_campaigns(session, op.shop_id, page)
    return Page(items=[await _campaign_out(session, c) for c in found], next_cursor=cursor)


@router.get("/campaigns/{campaign_id}", response_model=schemas.Campaign)
async def get_campaign(
    campaign_id: PathId, session: Session, op: Operator = requires("campaigns:read")
) -> schemas.Campaign:
    return await _campaign_out(session, await service.get_campaign(session, op.shop_id, campaign_id))


@router.patch("/campaigns/{campaign_id}", response_model=schemas.Campaign)
async def update_campaign(
    campaign_id: PathId, body: schemas.CampaignUpdate, session: Session, op: Operator = requires("campaigns:write")
) -> schemas.Campaign:
    campaign = await service.get_campaign(session, op.shop_id, campaign_id)
    return await _campaign_out(session, await service.update_campaign(session, campaign, body))


@router.get("/campaigns/{campaign_id}/leaderboard", response_model=list[schemas.LeaderboardRow])
async def campaign_leaderboard(
    campaign_id: PathId,
    session: Session,
    limit: LeaderboardLimit = 20,
    period: Literal["all", "week"] = "all",
    op: Operator = requires("campaigns:read"),
) -> list[schemas.LeaderboardRow]:
    """The top inviters by converted invites, of all time or of this week (in the shop's time zone)."""
    campaign = await service.get_campaign(session, op.shop_id, campaign_id)
    since = week_start_utc(utc_now(), op.shop.reporting_timezone) if period == "week" else None
    return [
        schemas.LeaderboardRow(**row)
        for row in await service.leaderboard(session, campaign.id, limit=limit, since=since)
    ]


@router.get("/referrals", response_model=Page[schemas.Referral])
async def list_referrals(
    session: Session,
    page: Pagination,
    campaign_id: Annotated[str | None, QueryText(64)] = None,
    member_id: Annotated[str | None, QueryText(64, "Referrals where this member is the inviter or the invitee")] = None,
    status: Annotated[str | None, QueryText(16)] = None,
    op: Operator = requires("campaigns:read"),
) -> Page[schemas.Referral]:
    """Referrals, newest first."""
    items, cursor = await service.list_referrals(
        session, op.shop_id, page, campaign_id=campaign_id, inviter_id=member_id, status=status
    )
    return Page(items=[schemas.Referral.model_validate(r) for r in items], next_cursor=cursor)


@router.get("/reviews", response_model=Page[schemas.Review])
async def list_reviews(
    session: Session,
    page: Pagination,
    status: Annotated[str, QueryText(16, 'pending (the default), approved, rejected, or "all"')] = "pending",
    op: Operator = requires("campaigns:read"),
) -> Page[schemas.Review]:
    """Referrals held for fraud review, oldest first."""
    items, cursor = await service.list_reviews(session, op.shop_id, page, status if status != "all" else None)
    return Page(items=[schemas.Review.model_validate(r) for r in items], next_cursor=cursor)


@router.post("/reviews/{review_id}/approve", response_model=schemas.Review)
async def approve(
    review_id: PathId, body: schemas.ReviewDecision, session: Session, op: Operator = requires("reviews:write")
) -> schemas.Review:
    review = await service.decide_review(
        session, op.shop, review_id, approve=True, note=body.note, decided_by=op.key_id
    )
    return schemas.Review.model_validate(review)


@router.post("/reviews/{review_id}/reject", response_model=schemas.Review)
async def reject(
    review_id: PathId, body: schemas.ReviewDecision, session: Session, op: Operator = requires("reviews:write")
) -> schemas.Review:
    review = await service.decide_review(
        session, op.shop, review_id, approve=False, note=body.note, decided_by=op.key_id
    )
    return schemas.Review.model_validate(review)


@router.post("/campaigns/{campaign_id}/draws", response_model=schemas.Draw, status_code=201)
async def create_draw(
    campaign_id: PathId, body: schemas.DrawCreate, session: Session, op: Operator = requires("campaigns:write")
) -> schemas.Draw:
    campaign = await service.get_campaign(session, op.shop_id, campaign_id)
    draw = await lottery.create_draw(session, campaign, prize_count=body.prize_count, prize=body.prize.data())
    return schemas.Draw.model_validate(lottery.draw_view(draw))


@public.get("/v1/public/draws/{draw_id}", response_model=schemas.PublicDraw, tags=["public"])
async def public_draw(draw_id: PathId, session: Session) -> schemas.PublicDraw:
    """Anyone may see a draw: the seed's hash before it runs; the seed, tickets and winners after.

    Winners are shown by ticket and by the name each member chose to show (`display_name`), else a masked
    form of it (`A•••`); never a member id, a reward id or a real name."""
    return schemas.PublicDraw.model_validate(
        await lottery.public_view(session, await lottery.get_draw(session, draw_id))
    )


@public.post("/v1/public/draws/verify", response_model=schemas.DrawVerifyOut, tags=["public"])
async def verify_draw(body: schemas.DrawVerifyIn) -> schemas.DrawVerifyOut:
    """Recompute a draw from its revealed seed and ticket list.

    At most 25,000 tickets and 10,000 winners per request (larger draws verify offline with the published
    algorithm); the work is O(n log n) in the tickets."""
    recomputed = lottery.pick_winners(body.seed, body.draw_id, body.ticket_ids, body.prize_count)
    return schemas.DrawVerifyOut(
        seed_matches_hash=secrets.compare_digest(
            lottery.seed_hash(body.seed).encode(), body.seed_hash.lower().encode()
        ),
        winners_match=recomputed == body.winners,
        recomputed_winners=recomputed,
    )


@public.get(
    "/v1/public/qr/{token}.{kind}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
    tags=["public"],
)
async def public_qr(
    token: Annotated[str, Path(min_length=3, max_length=600, description="From qr_png / qr_svg of the invite links")],
    kind: Annotated[str, Path(max_length=3, json_schema_extra={"enum": ["png", "svg"]})],
    request: Request,
) -> Response:
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
        channel=ShareChannel.QR,
        show_id=target.show_id,
        host_id=target.host_id,
    )
    return Response(
        links.qr(url, kind),
        media_type="image/png" if kind == "png" else "image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def _group_out(session: Session, request: Request, shop: Shop, group: VipGroup) -> schemas.Group:
    base = request.app.state.settings.public_base_url
    return schemas.Group(
        id=group.id,
        campaign_id=group.campaign_id,
        name=group.name,
        code=group.code,
        owner_id=group.owner_id,
        extra_offer=dict(group.extra_offer),
        weekly_target=group.weekly_target,
        link=links.invite_url(base, shop.slug, group.code, channel=ShareChannel.COPY),
        **await groups.status(session, shop, group),
    )


@router.post("/groups", response_model=schemas.Group, status_code=201)
async def create_group(
    body: schemas.GroupCreate, request: Request, session: Session, op: Operator = requires("campaigns:write")
) -> schemas.Group:
    await service.get_campaign(session, op.shop_id, body.campaign_id)
    owner = await get_member(session, op.shop_id, body.owner_id)
    group = await groups.create_group(
        session,
        op.shop_id,
        campaign_id=body.campaign_id,
        name=body.name,
        owner_id=owner.id,
        extra_offer=body.extra_offer.data(),
        weekly_target=body.weekly_target,
        base_perk_level=body.base_perk_level,
    )
    return await _group_out(session, request, op.shop, group)


@router.get("/groups/{group_id}", response_model=schemas.Group)
async def get_group(
    group_id: PathId, request: Request, session: Session, op: Operator = requires("campaigns:read")
) -> schemas.Group:
    return await _group_out(session, request, op.shop, await groups.get_group(session, op.shop_id, group_id))


@router.get("/groups/{group_id}/leaderboard", response_model=list[schemas.LeaderboardRow])
async def group_leaderboard(
    group_id: PathId, session: Session, limit: LeaderboardLimit = 20, op: Operator = requires("campaigns:read")
) -> list[schemas.LeaderboardRow]:
    group = await groups.get_group(session, op.shop_id, group_id)
    ids = await groups.member_ids(session, group.id)
    rows = await service.leaderboard(session, group.campaign_id, limit=limit, inviter_ids=ids)
    return [schemas.LeaderboardRow(**row) for row in rows]


@members.post("", response_model=member_schemas.MemberCreated, status_code=201)
async def create_member(
    body: member_schemas.MemberCreate, request: Request, session: Session, op: Operator = requires("members:write")
) -> member_schemas.MemberCreated:
    secret = request.app.state.settings.secret_key
    device_id = devices.require(secret, body.device_id)
    ip_hash = keyed_hash(secret, body.ip) if body.ip else None
    member = await member_service.create_member(
        session,
        op.shop,
        external_id=body.external_id,
        email=body.email,
        phone=body.phone,
        name=body.name,
        display_name=body.display_name,
        locale=body.locale,
        timezone=body.timezone,
        market=body.market,
        device_id=device_id,
        ip_hash=ip_hash,
        consents=body.consents,
    )
    found = None
    if body.referral is not None or device_id:
        ref = body.referral or member_schemas.ReferralIn()
        found = await service.attribute_signup(
            session,
            op.shop,
            member,
            click_id=ref.click_id,
            code=ref.code,
            channel=ref.channel,
            show_id=ref.show_id,
            host_id=ref.host_id,
            device_id=device_id,
            ip_hash=ip_hash,
            existing_customer=body.existing_customer,
        )
    await emit(
        session, op.shop_id, EventType.MEMBER_CREATED, {"member_id": member.id, "external_id": member.external_id}
    )
    out = member_schemas.MemberCreated.model_validate(member)
    if found is not None:
        out.referral = {
            "id": found.id,
            "inviter_id": found.inviter_id,
            "status": found.status,
            "reason_codes": found.reason_codes,
        }
    return out


class EffectiveView(RequestModel):
    show_id: str = Field(min_length=1, max_length=64)


@members.post("/{member_id}/effective-views", response_model=list[schemas.Reward])
async def effective_view(
    member_id: PathId, body: EffectiveView, session: Session, op: Operator = requires("members:write")
) -> list[schemas.Reward]:
    """Report that the member watched a show for at least 10 s (converts first-view campaigns)."""
    member = await get_member(session, op.shop_id, member_id)
    return [schemas.Reward.model_validate(r) for r in await service.on_effective_view(session, op.shop, member)]


@members.get("/{member_id}/rewards", response_model=Page[schemas.Reward])
async def rewards(
    member_id: PathId, session: Session, page: Pagination, op: Operator = requires("members:read")
) -> Page[schemas.Reward]:
    """The member's rewards, newest first."""
    member = await get_member(session, op.shop_id, member_id)
    items, cursor = await service.member_rewards(session, op.shop_id, member.id, page)
    return Page(items=[schemas.Reward.model_validate(r) for r in items], next_cursor=cursor)


@members.get("/{member_id}/tickets", response_model=Page[schemas.Ticket])
async def tickets(
    member_id: PathId, session: Session, page: Pagination, op: Operator = requires("members:read")
) -> Page[schemas.Ticket]:
    """The member's lottery-relay draw tickets, in the order they were earned."""
    member = await get_member(session, op.shop_id, member_id)
    rows, cursor = await lottery.member_tickets(session, member.id, page)
    return Page(items=[schemas.Ticket.model_validate(t) for t in rows], next_cursor=cursor)


@members.get("/{member_id}/groups", response_model=Page[schemas.GroupMembership])
async def member_groups(
    member_id: PathId, session: Session, page: Pagination, op: Operator = requires("members:read")
) -> Page[schemas.GroupMembership]:
    """The VIP groups the member belongs to, with this week's progress."""
    member = await get_member(session, op.shop_id, member_id)
    found, cursor = await groups.groups_of_member(session, op.shop_id, member.id, page)
    items = [schemas.GroupMembership(id=g.id, name=g.name, **await groups.status(session, op.shop, g)) for g in found]
    return Page(items=items, next_cursor=cursor)


@members.get("/{member_id}/invite-links", response_model=schemas.InviteLinks)
async def invite_links(
    member_id: PathId,
    request: Request,
    session: Session,
    show_id: Annotated[str | None, QueryText(64)] = None,
    host_id: Annotated[str | None, QueryText(64)] = None,
    locale: Annotated[str | None, QueryText(16)] = None,
    op: Operator = requires("members:read"),
) -> schemas.InviteLinks:
    member = await get_member(session, op.shop_id, member_id)
    settings = request.app.state.settings
    base = settings.public_base_url
    lang = links.pick_locale(locale or member.locale)
    # Signed public addresses: they work in an <img> or an email without an API key, and name no member.
    target = links.QrTarget(op.shop.slug, member.referral_code, show_id, host_id)
    qr_png, qr_svg = links.qr_urls(base, settings.secret_key, target)
    targets = links.share_targets(
        base, op.shop.slug, op.shop.name, member.referral_code, lang, show_id=show_id, host_id=host_id
    )
    return schemas.InviteLinks(
        member_id=member.id,
        code=member.referral_code,
        locale=lang,
        links=[schemas.ShareTarget(**t) for t in targets],
        qr_png=qr_png,
        qr_svg=qr_svg,
    )


@members.get(
    "/{member_id}/invite-links/qr.{kind}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
async def invite_qr(
    member_id: PathId,
    kind: Annotated[str, Path(max_length=8, description="png or svg")],
    request: Request,
    session: Session,
    show_id: Annotated[str | None, QueryText(64)] = None,
    op: Operator = requires("members:read"),
) -> Response:
    if kind not in ("png", "svg"):
        raise NotFound("QR codes come as .png or .svg.", code="unknown_format")
    member = await get_member(session, op.shop_id, member_id)
    url = links.invite_url(
        request.app.state.settings.public_base_url,
        op.shop.slug,
        member.referral_code,
        channel=ShareChannel.QR,
        show_id=show_id,
    )
    return Response(
        links.qr(url, kind),
        media_type="image/png" if kind == "png" else "image/svg+xml",
        headers={"Cache-Control": "private, max-age=3600"},
    )
