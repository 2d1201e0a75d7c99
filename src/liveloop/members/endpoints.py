from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import PathId
from liveloop.members import devices, schemas, service
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1/members", route_class=UnitOfWorkRoute, tags=["members"])


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
