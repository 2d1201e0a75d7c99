from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import Field

from liveloop.events.service import emit
from liveloop.kit.errors import NotFound
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import PathId, QueryText, RequestModel
from liveloop.kit.signing import keyed_hash
from liveloop.ledger import service as ledger
from liveloop.members import devices, schemas, service
from liveloop.referral import groups, links, lottery
from liveloop.referral import service as referral
from liveloop.referral.schemas import InviteLinks, Reward
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1/members", route_class=UnitOfWorkRoute, tags=["members"])


@router.post("", response_model=schemas.MemberCreated, status_code=201)
async def create_member(
    body: schemas.MemberCreate, request: Request, session: Session, op: Operator = requires("members:write")
) -> Any:
    secret = request.app.state.settings.secret_key
    device_id = devices.require(secret, body.device_id)
    ip_hash = keyed_hash(secret, body.ip) if body.ip else None
    member = await service.create_member(
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
        ref = body.referral or schemas.ReferralIn()
        found = await referral.attribute_signup(
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
    await emit(session, op.shop_id, "member.created", {"member_id": member.id, "external_id": member.external_id})
    out = schemas.MemberCreated.model_validate(member)
    if found is not None:
        out.referral = {
            "id": found.id,
            "inviter_id": found.inviter_id,
            "status": found.status,
            "reason_codes": found.reason_codes,
        }
    return out


@router.get("", response_model=Page[schemas.Member])
async def list_members(session: Session, page: Pagination, op: Operator = requires("members:read")) -> Any:
    """Members in the order they joined."""
    items, cursor = await service.list_members(session, op.shop_id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/{member_id}", response_model=schemas.Member)
async def get_member(member_id: PathId, session: Session, op: Operator = requires("members:read")) -> Any:
    return await service.get_member(session, op.shop_id, member_id)


@router.patch("/{member_id}", response_model=schemas.Member)
async def update_member(
    member_id: PathId,
    body: schemas.MemberUpdate,
    request: Request,
    session: Session,
    op: Operator = requires("members:write"),
) -> Any:
    changes = body.model_dump(exclude_none=True)
    if body.device_id is not None:
        changes["device_id"] = devices.require(request.app.state.settings.secret_key, body.device_id)
    member = await service.get_member(session, op.shop_id, member_id)
    return await service.update_member(session, op.shop, member, **changes)


@router.post("/{member_id}/consents", response_model=schemas.Consent, status_code=201)
async def add_consent(
    member_id: PathId, body: schemas.ConsentIn, session: Session, op: Operator = requires("members:write")
) -> Any:
    member = await service.get_member(session, op.shop_id, member_id)
    return await service.record_consent(session, op.shop_id, member.id, body)


@router.get("/{member_id}/consents")
async def consents(member_id: PathId, session: Session, op: Operator = requires("members:read")) -> Any:
    member = await service.get_member(session, op.shop_id, member_id)
    return {
        "in_force": [
            schemas.Consent.model_validate(c) for c in await service.consents_in_force(session, op.shop_id, member.id)
        ],
        "history": [
            schemas.Consent.model_validate(c) for c in await service.consent_history(session, op.shop_id, member.id)
        ],
    }


class EffectiveView(RequestModel):
    show_id: str = Field(min_length=1, max_length=64)


@router.post("/{member_id}/effective-views", response_model=list[Reward])
async def effective_view(
    member_id: PathId, body: EffectiveView, session: Session, op: Operator = requires("members:write")
) -> Any:
    """Report that the member watched a show for at least 10 s (converts first-view campaigns)."""
    member = await service.get_member(session, op.shop_id, member_id)
    return await referral.on_effective_view(session, op.shop, member)


@router.get("/{member_id}/rewards", response_model=Page[Reward])
async def rewards(
    member_id: PathId, session: Session, page: Pagination, op: Operator = requires("members:read")
) -> Any:
    """The member's rewards, newest first."""
    member = await service.get_member(session, op.shop_id, member_id)
    items, cursor = await referral.member_rewards(session, op.shop_id, member.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/{member_id}/balances")
async def balances(member_id: PathId, session: Session, op: Operator = requires("members:read")) -> Any:
    member = await service.get_member(session, op.shop_id, member_id)
    lots = await ledger.live_lots(session, op.shop_id, member.id)
    return {
        "member_id": member.id,
        "balances": [b.__dict__ for b in await ledger.balances(session, op.shop_id, member.id)],
        "point_lots": [{"id": lot.id, "remaining": lot.remaining, "expires_at": lot.expires_at} for lot in lots],
    }


@router.get("/{member_id}/ledger", response_model=Page[schemas.LedgerLine])
async def ledger_entries(
    member_id: PathId, session: Session, page: Pagination, op: Operator = requires("members:read")
) -> Any:
    """The member's ledger entries, newest first."""
    member = await service.get_member(session, op.shop_id, member_id)
    rows, cursor = await ledger.member_entries(session, op.shop_id, member.id, page)
    items = [
        {
            "entry_id": e.id,
            "transaction_id": t.id,
            "kind": t.kind,
            "asset": a.asset,
            "bucket": a.bucket,
            "amount": e.amount,
            "memo": t.memo,
            "reverses": t.reverses_id,
            "created_at": t.created_at,
        }
        for e, t, a in rows
    ]
    return {"items": items, "next_cursor": cursor}


@router.get("/{member_id}/tickets", response_model=Page[schemas.Ticket])
async def tickets(
    member_id: PathId, session: Session, page: Pagination, op: Operator = requires("members:read")
) -> Any:
    """The member's lottery-relay draw tickets, in the order they were earned."""
    member = await service.get_member(session, op.shop_id, member_id)
    rows, cursor = await lottery.member_tickets(session, member.id, page)
    items = [
        {
            "id": t.id,
            "campaign_id": t.campaign_id,
            "order_id": t.order_id,
            "status": t.status,
            "draw_id": t.draw_id,
            "created_at": t.created_at,
        }
        for t in rows
    ]
    return {"items": items, "next_cursor": cursor}


@router.get("/{member_id}/groups", response_model=Page[schemas.GroupMembership])
async def member_groups(
    member_id: PathId, session: Session, page: Pagination, op: Operator = requires("members:read")
) -> Any:
    """The VIP groups the member belongs to, with this week's progress."""
    member = await service.get_member(session, op.shop_id, member_id)
    found, cursor = await groups.groups_of_member(session, op.shop_id, member.id, page)
    items = [{"id": g.id, "name": g.name, **await groups.status(session, op.shop, g)} for g in found]
    return {"items": items, "next_cursor": cursor}


@router.get("/{member_id}/invite-links", response_model=InviteLinks)
async def invite_links(
    member_id: PathId,
    request: Request,
    session: Session,
    show_id: Annotated[str | None, QueryText(64)] = None,
    host_id: Annotated[str | None, QueryText(64)] = None,
    locale: Annotated[str | None, QueryText(16)] = None,
    op: Operator = requires("members:read"),
) -> Any:
    member = await service.get_member(session, op.shop_id, member_id)
    settings = request.app.state.settings
    base = settings.public_base_url
    lang = links.pick_locale(locale or member.locale)
    # Signed public addresses: they work in an <img> or an email without an API key, and name no member.
    target = links.QrTarget(op.shop.slug, member.referral_code, show_id, host_id)
    qr_png, qr_svg = links.qr_urls(base, settings.secret_key, target)
    return {
        "member_id": member.id,
        "code": member.referral_code,
        "locale": lang,
        "links": links.share_targets(
            base, op.shop.slug, op.shop.name, member.referral_code, lang, show_id=show_id, host_id=host_id
        ),
        "qr_png": qr_png,
        "qr_svg": qr_svg,
    }


@router.get(
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
    member = await service.get_member(session, op.shop_id, member_id)
    url = links.invite_url(
        request.app.state.settings.public_base_url, op.shop.slug, member.referral_code, channel="qr", show_id=show_id
    )
    return Response(
        links.qr(url, kind),
        media_type="image/png" if kind == "png" else "image/svg+xml",
        headers={"Cache-Control": "private, max-age=3600"},
    )
