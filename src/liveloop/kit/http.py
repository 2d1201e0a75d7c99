"""HTTP plumbing shared by every domain: the unit-of-work route, idempotency and error bodies."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.errors import Conflict, LiveloopError, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.schemas import printable
from liveloop.kit.signing import sha256_hex

log = logging.getLogger("liveloop.http")

IDEMPOTENCY_HEADER = "Idempotency-Key"


class UnitOfWorkRoute(APIRoute):
    """Runs each request in one database transaction.

    The session is opened before dependencies run and committed after the endpoint's response has been
    built but before it is sent, so a client never sees success for a write that did not commit. Any
    exception or any 4xx/5xx response rolls everything back.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            async with request.app.state.sessions() as session:
                request.state.session = session
                try:
                    response = await original(request)
                    if response.status_code >= 400:
                        await session.rollback()
                        return response
                    guard: IdempotencyGuard | None = getattr(request.state, "idempotency", None)
                    if guard is not None:
                        await guard.save(session, response)
                    await session.commit()
                    return response
                except BaseException:
                    await session.rollback()
                    raise

        return handler


def get_session(request: Request) -> AsyncSession:
    session: AsyncSession = request.state.session
    return session


Session = Annotated[AsyncSession, Depends(get_session)]


class IdempotentReplay(Exception):
    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self.body = body


@dataclass
class IdempotencyGuard:
    record_id: str

    async def save(self, session: AsyncSession, response: Response) -> None:
        from liveloop.models import IdempotencyRecord

        record = await session.get(IdempotencyRecord, self.record_id)
        assert record is not None
        record.status_code = response.status_code
        body = bytes(response.body) if hasattr(response, "body") else b"null"
        record.response_body = {"json": orjson.loads(body) if body else None}
        await session.flush()


async def claim_idempotency_key(request: Request, session: AsyncSession, shop_id: str) -> None:
    """Reserve the request's ``Idempotency-Key`` (if any) in this transaction, or replay its first answer.

    The reservation is a row under a unique constraint on (shop, scope, key): a concurrent request with the
    same key waits on that row and, once the first commits, replays its stored response.
    """
    from liveloop.models import IdempotencyRecord

    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return
    if not 1 <= len(key) <= 255:
        raise Unprocessable(
            "Idempotency-Key must be 1 to 255 characters; use a UUID per logical operation.",
            code="invalid_idempotency_key",
        )
    scope = f"{request.method} {request.url.path}"
    request_hash = sha256_hex(scope.encode() + b"\n" + await request.body())

    async def existing() -> IdempotencyRecord | None:
        return (
            await session.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.shop_id == shop_id,
                    IdempotencyRecord.scope == scope,
                    IdempotencyRecord.key == key,
                )
            )
        ).scalar_one_or_none()

    def replay(record: IdempotencyRecord) -> IdempotentReplay:
        if record.request_hash != request_hash:
            return IdempotentReplay(
                422,
                {
                    "error": {
                        "code": "idempotency_key_reused",
                        "message": "This Idempotency-Key was already used with a different request body. "
                        "Use a new key for a different operation.",
                    }
                },
            )
        return IdempotentReplay(record.status_code, record.response_body.get("json"))

    found = await existing()
    if found is not None:
        raise replay(found)
    record = IdempotencyRecord(
        id=new_id("idem"),
        shop_id=shop_id,
        scope=scope,
        key=key,
        request_hash=request_hash,
        status_code=0,
        response_body={},
    )
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        found = await existing()
        if found is None or found.status_code == 0:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry in a moment.",
                code="idempotency_key_in_use",
            ) from None
        raise replay(found) from None
    request.state.idempotency = IdempotencyGuard(record.id)


def error_response(status_code: int, code: str, message: str, **details: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=status_code)


def install_error_handlers(app: Any) -> None:
    @app.exception_handler(LiveloopError)
    async def _domain(_request: Request, exc: LiveloopError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status_code)

    @app.exception_handler(IdempotentReplay)
    async def _replay(_request: Request, exc: IdempotentReplay) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status_code, headers={"Idempotent-Replayed": "true"})

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            # Field names can be dict keys the client sent: keep lone surrogates out of the JSON answer.
            loc = printable(".".join(str(p) for p in err.get("loc", ()) if p != "body"))
            problems.append({"field": loc, "problem": printable(str(err.get("msg", "invalid")))})
        first = problems[0] if problems else {"field": "body", "problem": "invalid"}
        return error_response(
            422,
            "invalid_request",
            f"The request is not valid: {first['field'] or 'body'}: {first['problem']}. "
            "Fix the listed fields and send it again.",
            problems=problems,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: IntegrityError) -> JSONResponse:
        # Never log the driver's message: it can quote row values (emails, codes) from the conflicting key.
        constraint = getattr(exc.orig, "constraint_name", None) or getattr(
            getattr(exc.orig, "__cause__", None), "constraint_name", None
        )
        log.warning("integrity error answered with 409 (%s, constraint %s)", type(exc.orig).__name__, constraint)
        return error_response(
            409,
            "conflict",
            "The change conflicts with the current state (a concurrent request or a duplicate). "
            "Read the resource again and retry.",
        )

    @app.exception_handler(DBAPIError)
    async def _data(_request: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 ("data exception": too long, out of range, a character the encoding cannot hold)
        # and SQLite's DataError mean the database refused a value of the request: a 422, never a 500.
        # Request models bound their fields so that this is a last line; the driver's message is not echoed.
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        if not (isinstance(exc, DataError) or sqlstate.startswith("22")):
            raise exc
        log.warning("data error answered with 422 (%s, sqlstate %s)", type(exc.orig).__name__, sqlstate or "-")
        return error_response(
            422,
            "value_not_storable",
            "A value in the request does not fit where it is stored (too long, or out of range). "
            "Shorten or correct it and send the request again.",
        )
