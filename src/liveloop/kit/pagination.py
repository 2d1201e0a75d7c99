"""Cursor pagination for every list endpoint.

A page is ``{"items": [...], "next_cursor": "…" | null}``. Ask for the next one with ``?cursor=<next_cursor>``
(and the same filters); the last page has ``next_cursor: null``. ``limit`` is the page size: ``DEFAULT_LIMIT``
unless given, at most ``MAX_LIMIT``.

Pages are keyset pages: a list is ordered by a sort key that ends with the row's unique id, and the cursor
holds the last row's key, so a page costs one indexed range read however deep it is, and rows added while a
client pages through neither repeat nor shift what comes next. The cursor is opaque and tamper-evident:
base64url of the key, signed (HMAC-SHA256) with the server's secret together with the list it came from,
so an edited cursor, or one from another list, answers 422 ``invalid_cursor`` instead of a wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Select, TypeDecorator, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from liveloop.kit.errors import Unprocessable

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR = 512

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; null on the last page"
    )


class InvalidCursor(Unprocessable):
    code = "invalid_cursor"


def _bad_cursor() -> InvalidCursor:
    return InvalidCursor(
        "This cursor was not issued by this list, or was changed. Ask for the first page without a cursor "
        "and follow each page's next_cursor."
    )


@dataclass(frozen=True)
class PageRequest:
    """What the client asked for: the page size, where to resume, and the key that signs cursors."""

    limit: int
    cursor: str | None
    scope: str
    secret: str

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret.encode(), self.scope.encode() + b"\n" + payload, hashlib.sha256).digest()[:16]

    def encode(self, key: Sequence[Any]) -> str:
        payload = orjson.dumps([v.isoformat() if isinstance(v, datetime) else v for v in key])
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, types: Sequence[type]) -> list[Any] | None:
        """The sort key the cursor resumes after (None on the first page); 422 when it was not ours."""
        if self.cursor is None:
            return None
        payload_text, _, mac_text = self.cursor.partition(".")
        try:
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except ValueError:
            raise _bad_cursor() from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise _bad_cursor()
        try:
            values = orjson.loads(payload)
            if not isinstance(values, list) or len(values) != len(types):
                raise ValueError
            return [_typed(value, kind) for value, kind in zip(values, types, strict=True)]
        except (ValueError, TypeError, orjson.JSONDecodeError):
            raise _bad_cursor() from None


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError
        return datetime.fromisoformat(value)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError
    if kind is str and not isinstance(value, str):
        raise ValueError
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError("not base64url") from None


def page_request(
    request: Request,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Page size: {DEFAULT_LIMIT} by default, at most {MAX_LIMIT}")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=MAX_CURSOR, description="The previous page's next_cursor")
    ] = None,
) -> PageRequest:
    # A cursor fits the very list it came from (this path, so this member's ledger, not another's).
    scope = f"{request.method} {request.url.path}"
    return PageRequest(limit=limit, cursor=cursor, scope=scope, secret=request.app.state.settings.secret_key)


Pagination = Annotated[PageRequest, Depends(page_request)]


def _key_type(column: InstrumentedAttribute[Any]) -> type:
    kind = column.type
    if isinstance(kind, TypeDecorator):  # e.g. UTC date-times: the type they store decides
        kind = kind.impl
    python_type: type = kind.python_type
    return python_type


async def paginate(
    session: AsyncSession,
    query: Select[*tuple[Any, ...]],
    page: PageRequest,
    key: Sequence[InstrumentedAttribute[Any]],
    *,
    descending: bool = False,
    row_key: Callable[[Any], Sequence[Any]] | None = None,
) -> tuple[list[Any], str | None]:
    """One page of ``query`` ordered by ``key`` (whose last column is unique), and the next page's cursor.

    Rows are ORM objects when the query selects one entity, row tuples otherwise (then ``row_key`` tells
    how to read the sort key from a row).
    """
    after = page.decode([_key_type(c) for c in key])
    if after is not None:
        query = query.where(_beyond(key, after, descending))
    query = query.order_by(*(c.desc() if descending else c.asc() for c in key)).limit(page.limit + 1)
    result = await session.execute(query)
    rows: list[Any] = list(result.scalars()) if len(query.column_descriptions) == 1 else list(result.all())
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    values = row_key(last) if row_key is not None else [getattr(last, c.key) for c in key]
    return rows, page.encode(values)


def _beyond(key: Sequence[InstrumentedAttribute[Any]], after: Sequence[Any], descending: bool) -> Any:
    """Rows strictly after ``after`` in the key order: (a > x) or (a = x and b > y) …, portable SQL."""
    clauses = []
    for i, column in enumerate(key):
        equal = [key[j] == after[j] for j in range(i)]
        step = column < after[i] if descending else column > after[i]
        clauses.append(and_(*equal, step))
    return or_(*clauses)
