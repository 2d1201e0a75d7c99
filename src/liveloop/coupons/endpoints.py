from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from liveloop.coupons import service
from liveloop.kit.errors import Unprocessable
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.money import Currency
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import (
    Id,
    Money,
    PathCode,
    PathId,
    PositiveCount,
    PositiveMoney,
    QueryText,
    RequestModel,
    Timestamp,
)
from liveloop.members.service import get_member
from liveloop.models import CouponBatchStatus
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["coupons"])


class BatchCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["fixed", "percent", "gift"]
    count: int = Field(
        0,
        ge=0,
        le=service.MAX_BATCH,
        description=f"Unbound codes to generate: up to {service.CHUNK} at once, more in the background",
    )
    member_ids: list[Id] = Field(
        default_factory=list, max_length=1000, description="Also one code bound to each of these members"
    )
    pattern: str = Field(
        "####-####",
        min_length=4,
        max_length=64,
        description="'#' is a random character; at least four of them",
        # Checked by the service (422 pattern_too_small), also against the count.
        json_schema_extra={"pattern": "^([^#]*#){4}"},
    )
    amount_minor: PositiveMoney | None = None
    currency: Currency | None = Field(
        None, description="Required, except for a percent coupon marked currency_free; orders must be in it"
    )
    currency_free: bool = Field(False, description="Percent coupons only: valid on orders in any currency")
    percent_bp: int | None = Field(None, gt=0, le=10_000)
    gift_sku: str | None = Field(None, max_length=100)
    min_spend_minor: Money = 0
    max_uses_per_coupon: PositiveCount = 1
    max_uses_per_member: PositiveCount = 1
    stackable: bool = False
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None


class BatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    kind: str
    pattern: str
    amount_minor: int | None
    currency: str | None
    currency_free: bool
    percent_bp: int | None
    gift_sku: str | None
    min_spend_minor: int
    max_uses_per_coupon: int
    max_uses_per_member: int
    stackable: bool
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime
    status: str = Field(description="generating (codes are being made; not usable yet) or ready")
    codes_total: int = Field(description="Unbound codes asked for at creation")
    codes_generated: int = Field(description="How many of them exist so far")
    issued: int = 0
    redeemed: int = 0


class CouponOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    batch_id: str
    code: str
    member_id: str | None
    uses: int
    max_uses: int
    voided_at: datetime | None


class BatchCreated(BatchOut):
    coupons: list[CouponOut]


class Bind(RequestModel):
    member_id: Id


class Check(RequestModel):
    member_id: Id
    order_total_minor: Money
    currency: Currency
    order_ref: str | None = Field(None, max_length=255)


class Quote(BaseModel):
    code: str
    valid: bool = True
    discount_minor: int
    currency: str
    gift_sku: str | None


class RedemptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    coupon_id: str
    member_id: str
    order_ref: str | None
    order_total_minor: int
    discount_minor: int
    currency: str | None
    status: str
    created_at: datetime
    rolled_back_at: datetime | None


@router.post(
    "/coupon-batches",
    response_model=BatchCreated,
    status_code=201,
    responses={
        202: {
            "model": BatchCreated,
            "description": "Accepted: more codes than one chunk are being generated in the background. "
            "Poll GET /v1/coupon-batches/{id} until status is ready (codes_generated of codes_total).",
        }
    },
)
async def create_batch(
    body: BatchCreate, response: Response, session: Session, op: Operator = requires("coupons:write")
) -> Any:
    """Create a batch. Up to one chunk of codes is made at once (201, status ready); a larger batch answers 202
    with status generating and fills in the background. A batch can be used once it is ready."""
    for member_id in body.member_ids:
        await get_member(session, op.shop_id, member_id)
    data = body.model_dump(exclude={"member_ids", "count"})
    batch = await service.create_batch(session, op.shop_id, count=body.count, **data)
    if body.member_ids:
        await service.generate(session, batch, len(body.member_ids), member_ids=body.member_ids)
    coupons = await service.first_codes(session, batch.id, limit=service.CHUNK)
    issued, used = await service.batch_stats(session, batch.id)
    if batch.status != CouponBatchStatus.READY:
        response.status_code = 202
    return {
        **BatchOut.model_validate(batch).model_dump(),
        "issued": issued,
        "redeemed": used,
        "coupons": [CouponOut.model_validate(c) for c in coupons],
    }


@router.get("/coupon-batches", response_model=Page[BatchOut])
async def list_batches(session: Session, page: Pagination, op: Operator = requires("coupons:read")) -> Any:
    """Coupon batches, newest first, with how many codes each has issued and how often they were redeemed."""
    found, cursor = await service.list_batches(session, op.shop_id, page)
    stats = await service.batches_stats(session, [b.id for b in found])
    items = [
        {
            **BatchOut.model_validate(b).model_dump(),
            "issued": stats.get(b.id, (0, 0))[0],
            "redeemed": stats.get(b.id, (0, 0))[1],
        }
        for b in found
    ]
    return {"items": items, "next_cursor": cursor}


@router.get("/coupon-batches/{batch_id}", response_model=BatchOut)
async def get_batch(batch_id: PathId, session: Session, op: Operator = requires("coupons:read")) -> Any:
    batch = await service.get_batch(session, op.shop_id, batch_id)
    issued, used = await service.batch_stats(session, batch.id)
    return {**BatchOut.model_validate(batch).model_dump(), "issued": issued, "redeemed": used}


@router.get("/coupon-batches/{batch_id}/codes", response_model=Page[CouponOut])
async def batch_codes(
    batch_id: PathId, session: Session, page: Pagination, op: Operator = requires("coupons:read")
) -> Any:
    """Every code of a batch, in the order they were generated."""
    batch = await service.get_batch(session, op.shop_id, batch_id)
    items, cursor = await service.batch_codes(session, batch, page)
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/coupon-batches/{batch_id}/codes.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "CSV with a header row: " + ",".join(service.EXPORT_COLUMNS) + ". status is "
            "available, used_up or void; member_id is empty for unbound codes; created_at is UTC ISO 8601.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def export_codes(
    batch_id: PathId, request: Request, session: Session, op: Operator = requires("coupons:read")
) -> StreamingResponse:
    """All codes of a batch as a CSV download, streamed in chunks (the database is not held for the whole export)."""
    batch = await service.get_batch(session, op.shop_id, batch_id)
    return StreamingResponse(
        service.export_codes_csv(request.app.state.sessions, batch.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{batch.id}-codes.csv"', "Cache-Control": "no-store"},
    )


@router.get("/coupons", response_model=Page[CouponOut])
async def list_coupons(
    session: Session,
    page: Pagination,
    member_id: Annotated[str | None, QueryText(64)] = None,
    batch_id: Annotated[str | None, QueryText(64)] = None,
    op: Operator = requires("coupons:read"),
) -> Any:
    """Coupons, newest first."""
    items, cursor = await service.list_coupons(session, op.shop_id, page, member_id=member_id, batch_id=batch_id)
    return {"items": items, "next_cursor": cursor}


@router.get("/coupons/{code}", response_model=CouponOut)
async def get_coupon(code: PathCode, session: Session, op: Operator = requires("coupons:read")) -> Any:
    return await service.get_coupon(session, op.shop_id, code)


@router.post("/coupons/{code}/bind", response_model=CouponOut)
async def bind(code: PathCode, body: Bind, session: Session, op: Operator = requires("coupons:write")) -> Any:
    member = await get_member(session, op.shop_id, body.member_id)
    return await service.bind(session, op.shop_id, code, member.id)


@router.post("/coupons/{code}/validate", response_model=Quote)
async def validate(code: PathCode, body: Check, session: Session, op: Operator = requires("coupons:read")) -> Any:
    member = await get_member(session, op.shop_id, body.member_id)
    quote = await service.validate(
        session, op.shop_id, code, member_id=member.id, order_total_minor=body.order_total_minor, currency=body.currency
    )
    return Quote(
        code=quote.coupon.code, discount_minor=quote.discount_minor, currency=body.currency, gift_sku=quote.gift_sku
    )


@router.post("/coupons/{code}/redeem", response_model=RedemptionOut, status_code=201)
async def redeem(
    code: PathCode, body: Check, request: Request, session: Session, op: Operator = requires("coupons:write")
) -> Any:
    """Redeem a coupon once. Send an `Idempotency-Key` (or an `order_ref`): retries return the first redemption."""
    key = request.headers.get("Idempotency-Key") or (
        f"order:{body.order_ref}:{code.upper()}" if body.order_ref else None
    )
    if key is None:
        raise Unprocessable(
            "Send an Idempotency-Key header or an order_ref so that retries cannot redeem twice.",
            code="idempotency_key_required",
        )
    member = await get_member(session, op.shop_id, body.member_id)
    return await service.redeem(
        session,
        op.shop_id,
        code,
        member_id=member.id,
        order_total_minor=body.order_total_minor,
        currency=body.currency,
        idempotency_key=key,
        order_ref=body.order_ref,
    )


@router.post("/redemptions/{redemption_id}/rollback", response_model=RedemptionOut)
async def rollback(redemption_id: PathId, session: Session, op: Operator = requires("coupons:write")) -> Any:
    return await service.rollback(session, op.shop_id, redemption_id)
