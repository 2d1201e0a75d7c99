"""Members (list, read, update) and their consents."""

from __future__ import annotations

from fastapi import APIRouter, Request

from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import PathId
from liveloop.members import devices, schemas, service
from liveloop.models import ApiKeyScope
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1/members", route_class=UnitOfWorkRoute, tags=["members"])


@router.get("", response_model=Page[schemas.Member])
async def list_members(
    session: Session, page: Pagination, op: Operator = requires(ApiKeyScope.MEMBERS_READ)
) -> Page[schemas.Member]:
    """Members in the order they joined."""
    items, cursor = await service.list_members(session, op.shop_id, page)
    return Page[schemas.Member](items=[schemas.Member.model_validate(m) for m in items], next_cursor=cursor)


@router.get("/{member_id}", response_model=schemas.Member)
async def get_member(
    member_id: PathId, session: Session, op: Operator = requires(ApiKeyScope.MEMBERS_READ)
) -> schemas.Member:
    return schemas.Member.model_validate(await service.get_member(session, op.shop_id, member_id))


@router.patch("/{member_id}", response_model=schemas.Member)
async def update_member(
    member_id: PathId,
    body: schemas.MemberUpdate,
    request: Request,
    session: Session,
    op: Operator = requires(ApiKeyScope.MEMBERS_WRITE),
) -> schemas.Member:
    device_id = devices.require(request.app.state.settings.secret_key, body.device_id)
    member = await service.get_member(session, op.shop_id, member_id)
    return schemas.Member.model_validate(
        await service.update_member(session, op.shop, member, body, device_id=device_id)
    )


@router.post("/{member_id}/consents", response_model=schemas.Consent, status_code=201)
async def add_consent(
    member_id: PathId, body: schemas.ConsentIn, session: Session, op: Operator = requires(ApiKeyScope.MEMBERS_WRITE)
) -> schemas.Consent:
    member = await service.get_member(session, op.shop_id, member_id)
    return schemas.Consent.model_validate(await service.record_consent(session, op.shop_id, member.id, body))


@router.get("/{member_id}/consents", response_model=schemas.Consents)
async def consents(
    member_id: PathId, session: Session, op: Operator = requires(ApiKeyScope.MEMBERS_READ)
) -> schemas.Consents:
    """The consents in force (the newest per channel and purpose) and the whole history, oldest first."""
    member = await service.get_member(session, op.shop_id, member_id)
    history = await service.consent_history(session, op.shop_id, member.id)
    return schemas.Consents(
        in_force=[schemas.Consent.model_validate(c) for c in service.in_force(history)],
        history=[schemas.Consent.model_validate(c) for c in history],
    )
