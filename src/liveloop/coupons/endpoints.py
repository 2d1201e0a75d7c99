from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from liveloop.coupons import service
from liveloop.coupons.schemas import BatchCreate, BatchCreated, BatchOut, Bind, Check, CouponOut, Quote, RedemptionOut
from liveloop.kit.errors import Unprocessable
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import PathCode, PathId, QueryText
from liveloop.members.service import get_member
from liveloop.models import CouponBatch, CouponBatchStatus
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["coupons"])


def _batch_out(batch: CouponBatch, stats: tuple[int, int]) -> BatchOut:
    """A batch as the API shows it, with how many codes it issued and how often they were redeemed."""
    issued, redeemed = stats
    return BatchOut.model_validate(batch).model_copy(update={"issued": issued, "redeemed": redeemed})


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
) -> BatchCreated:
    """Create a batch. Up to one chunk of codes is made at once (201, status ready); a larger batch answers 202
    with status generating and fills in the background. A batch can be used once it is ready."""
    for member_id in body.member_ids:
        await get_member(session, op.shop_id, member_id)
    batch = await service.create_batch(
        session,
        op.shop_id,
        name=body.name,
        kind=body.kind,
        count=body.count,
        pattern=body.pattern,
        amount_minor=body.amount_minor,
        currency=body.currency,
        currency_free=body.currency_free,
        percent_bp=body.percent_bp,
        gift_sku=body.gift_sku,
        min_spend_minor=body.min_spend_minor,
        max_uses_per_coupon=body.max_uses_per_coupon,
        max_uses_per_member=body.max_uses_per_member,
        stackable=body.stackable,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    if body.member_ids:
        await service.generate(session, batch, len(body.member_ids), member_ids=body.member_ids)
    coupons = await service.first_codes(session, batch.id, limit=service.CHUNK)
    out = _batch_out(batch, await service.batch_stats(session, batch.id))
    if batch.status != CouponBatchStatus.READY:
        response.status_code = 202
    return BatchCreated(**out.model_dump(), coupons=[CouponOut.model_validate(c) for c in coupons])


@router.get("/coupon-batches", response_model=Page[BatchOut])
async def list_batches(session: Session, page: Pagination, op: Operator = requires("coupons:read")) -> Page[BatchOut]:
    """Coupon batches, newest first, with how many codes each has issued and how often they were redeemed."""
    found, cursor = await service.list_batches(session, op.shop_id, page)
    stats = await service.batches_stats(session, [b.id for b in found])
    return Page(items=[_batch_out(b, stats.get(b.id, (0, 0))) for b in found], next_cursor=cursor)


@router.get("/coupon-batches/{batch_id}", response_model=BatchOut)
async def get_batch(batch_id: PathId, session: Session, op: Operator = requires("coupons:read")) -> BatchOut:
    batch = await service.get_batch(session, op.shop_id, batch_id)
    return _batch_out(batch, await service.batch_stats(session, batch.id))


@router.get("/coupon-batches/{batch_id}/codes", response_model=Page[CouponOut])
async def batch_codes(
    batch_id: PathId, session: Session, page: Pagination, op: Operator = requires("coupons:read")
) -> Page[CouponOut]:
    """Every code of a batch, in the order they were generated."""
    batch = await service.get_batch(session, op.shop_id, batch_id)
    items, cursor = await service.batch_codes(session, batch, page)
    return Page(items=[CouponOut.model_validate(c) for c in items], next_cursor=cursor)


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
) -> Page[CouponOut]:
    """Coupons, newest first."""
    items, cursor = await service.list_coupons(session, op.shop_id, page, member_id=member_id, batch_id=batch_id)
    return Page(items=[CouponOut.model_validate(c) for c in items], next_cursor=cursor)


@router.get("/coupons/{code}", response_model=CouponOut)
async def get_coupon(code: PathCode, session: Session, op: Operator = requires("coupons:read")) -> CouponOut:
    return CouponOut.model_validate(await service.get_coupon(session, op.shop_id, code))


@router.post("/coupons/{code}/bind", response_model=CouponOut)
async def bind(code: PathCode, body: Bind, session: Session, op: Operator = requires("coupons:write")) -> CouponOut:
    member = await get_member(session, op.shop_id, body.member_id)
    return CouponOut.model_validate(await service.bind(session, op.shop_id, code, member.id))


@router.post("/coupons/{code}/validate", response_model=Quote)
async def validate(code: PathCode, body: Check, session: Session, op: Operator = requires("coupons:read")) -> Quote:
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
) -> RedemptionOut:
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
    redemption = await service.redeem(
        session,
        op.shop_id,
        code,
        member_id=member.id,
        order_total_minor=body.order_total_minor,
        currency=body.currency,
        idempotency_key=key,
        order_ref=body.order_ref,
    )
    return RedemptionOut.model_validate(redemption)


@router.post("/redemptions/{redemption_id}/rollback", response_model=RedemptionOut)
async def rollback(redemption_id: PathId, session: Session, op: Operator = requires("coupons:write")) -> RedemptionOut:
    return RedemptionOut.model_validate(await service.rollback(session, op.shop_id, redemption_id))
