"""HTTP plumbing shared by every domain: the unit-of-work route, secrets shown once and error bodies."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from liveloop.kit.errors import LiveloopError
from liveloop.kit.logs import request_id
from liveloop.kit.schemas import printable

log = logging.getLogger("liveloop.http")

IDEMPOTENCY_HEADER = "Idempotency-Key"


class ShownOnceMarker:
    """Annotated metadata of a response field that holds a secret shown once (see :data:`ShownOnce`)."""

    def __repr__(self) -> str:
        return "ShownOnce"


SHOWN_ONCE = ShownOnceMarker()
ShownOnce = Annotated[str, SHOWN_ONCE]
"""The type of a response field holding a secret shown once: an API key, a signing secret, a token.

The idempotency record of a request whose response model has such a field keeps the response without it,
and a replay of that request answers 409 ``secret_shown_once`` instead of the secret (see
:func:`liveloop.shops.idempotency.claim`). Declare secrets with it and the rule follows; nothing else to do.
"""


def shown_once_fields(model: Any) -> tuple[str, ...]:
    """The top-level fields of a response model declared :data:`ShownOnce` (by their names in JSON)."""
    fields = getattr(model, "model_fields", None)
    if not fields:
        return ()
    return tuple(
        (info.serialization_alias or info.alias or name)
        for name, info in fields.items()
        if any(isinstance(m, ShownOnceMarker) for m in info.metadata)
    )


def route_secrets(route: Any) -> tuple[str, ...]:
    """The :data:`ShownOnce` fields of a route's response model (looked up once per route)."""
    found: tuple[str, ...] | None = getattr(route, "_shown_once", None)
    if found is None:
        found = shown_once_fields(getattr(route, "response_model", None))
        with contextlib.suppress(AttributeError):
            route._shown_once = found
    return found


class ErrorDetail(BaseModel):
    code: str = Field(
        description="Stable and machine-readable, e.g. `member_not_found`; branch on it. Every code, with what it "
        "means and how to fix the request, is listed at /docs/errors."
    )
    message: str = Field(description="What was wrong and how to fix it, for the developer reading it.")
    details: dict[str, Any] | None = Field(None, description="More about the error, e.g. the fields at fault.")


class ErrorBody(BaseModel):
    """Every error answered by the API has this shape."""

    error: ErrorDetail


JSON_MEDIA_TYPES = ("application/json",)


def is_json_content_type(value: str | None) -> bool:
    """``application/json`` or ``application/<something>+json``, with or without parameters (charset)."""
    if not value:
        return False
    media = value.split(";", 1)[0].strip().lower()
    return media in JSON_MEDIA_TYPES or (media.startswith("application/") and media.endswith("+json"))


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


class UnitOfWorkRoute(APIRoute):
    """Runs each request in one database transaction.

    The session is opened before dependencies run and committed after the endpoint's response has been
    built but before it is sent, so a client never sees success for a write that did not commit. Any
    exception or any 4xx/5xx response rolls everything back.

    A route whose endpoint takes a JSON body model answers 415 ``unsupported_media_type`` to a request
    that sends a body with another Content-Type (or none), before anything runs. Routes that read the raw
    body themselves (signed webhooks) declare no body model and are not affected.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        takes_json = self.body_field is not None

        async def handler(request: Request) -> Response:
            if takes_json and _has_body(request) and not is_json_content_type(request.headers.get("content-type")):
                return error_response(
                    415,
                    "unsupported_media_type",
                    "This endpoint takes a JSON body: send it with `Content-Type: application/json`.",
                    received=request.headers.get("content-type") or None,
                )
            async with request.app.state.sessions() as session:
                request.state.session = session
                try:
                    response = await original(request)
                    if response.status_code >= 400:
                        await session.rollback()
                        return response
                    for hook in getattr(request.state, "before_commit", ()):
                        await hook(session, response)
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


BeforeCommit = Callable[[AsyncSession, Response], Awaitable[None]]


def before_commit(request: Request, hook: BeforeCommit) -> None:
    """Run ``hook`` with the request's session and its successful response, just before the commit."""
    hooks: list[BeforeCommit] | None = getattr(request.state, "before_commit", None)
    if hooks is None:
        hooks = request.state.before_commit = []
    hooks.append(hook)


class IdempotentReplay(Exception):
    """Answer with a stored response (the first answer to a request repeated with its Idempotency-Key)."""

    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self.body = body


def error_response(
    status_code: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **details: Any
) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=status_code, headers=headers)


_HTTP_ERRORS = {
    400: (
        "bad_request",
        "The request could not be read as sent; send the body as UTF-8 JSON with `Content-Type: application/json`.",
    ),
    404: ("not_found", "Nothing is at this URL. Check the path against the API reference at /docs."),
    405: ("method_not_allowed", "This URL does not take this method. The API reference at /docs lists its methods."),
}


_OPERATIONS = ("get", "put", "post", "delete", "patch")
_PARAM = re.compile(r"\{[^}/]+\}")


def _method_table(app: Any) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path pattern, methods) of every documented path, from the app's OpenAPI document (built once)."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(app.state, "method_table", None)
    if table is None:
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            parts = _PARAM.split(template)
            pattern = re.compile("^" + "[^/]+".join(re.escape(part) for part in parts) + "$")
            methods = {name.upper() for name in operations if name in _OPERATIONS}
            if "GET" in methods:
                methods.add("HEAD")  # answered with every GET
            table.append((pattern, frozenset(methods)))
        app.state.method_table = table
    return table


def allowed_methods(request: Request) -> list[str]:
    """Every method the API takes at this request's path, for a 405's ``Allow`` (the router names one route's)."""
    path = request.url.path
    return sorted({m for pattern, methods in _method_table(request.app) if pattern.match(path) for m in methods})


def install_error_handlers(app: Any) -> None:
    @app.exception_handler(LiveloopError)
    async def _domain(_request: Request, exc: LiveloopError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The framework's own errors (no route, wrong method, a body it could not read) in the usual shape.
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeError | ValueError):
            # A JSON body that cannot be decoded (not UTF-8) is as malformed as one with a syntax error: 422.
            return error_response(
                422,
                "invalid_request",
                "The request is not valid: body: it is not JSON text in UTF-8. Send the body as UTF-8 encoded JSON.",
                problems=[{"field": "body", "problem": "not JSON text in UTF-8"}],
            )
        code, message = _HTTP_ERRORS.get(
            exc.status_code, ("bad_request" if exc.status_code < 500 else "internal_error", "")
        )
        headers = exc.headers
        if exc.status_code == 405 and (methods := allowed_methods(request)):
            headers = {name: value for name, value in (headers or {}).items() if name.lower() != "allow"}
            headers["Allow"] = ", ".join(methods)
        return error_response(exc.status_code, code, message or str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, _exc: Exception) -> JSONResponse:
        # A bug, never bad input. The server logs the traceback (without SQL parameters) under this request id.
        rid = request_id.get() or "-"
        return error_response(
            500,
            "internal_error",
            f"The server failed to answer this request; it has been logged. Retry later, and quote the request id "
            f"{rid} if you report it.",
            request_id=rid,
        )

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
