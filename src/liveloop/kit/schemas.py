"""The base of every request model: strict types, bounded sizes and text the databases can store.

A JSON body reaches a model as already-parsed Python values (FastAPI validates the decoded dict), so the
rules are written for that mode:

- **Strict types.** A string is not an integer, ``"yes"`` is not a boolean, ``1.0`` is not an integer.
  Date-times are the exception JSON forces: they arrive as strings, so ``Timestamp`` accepts an ISO 8601
  string (or a ``datetime`` from Python code) and nothing else; never a bare number.
- **Unknown fields are refused** (422): a misspelt field is an error the client sees, not a silently
  ignored setting.
- **Clean text.** Every string, at any depth (dict keys included), is refused when it holds a NUL
  character (PostgreSQL cannot store one) or a lone UTF-16 surrogate (no database or JSON encoder can).
- **Bounded.** Every string has a maximum length (``MAX_TEXT`` unless the field says less), every list
  and dict a maximum size, every integer a range that fits the column it is stored in.

Query and path parameters get the same treatment from ``clean_parameters`` (a NUL in a URL answers 422)
and from the ``PathId`` / ``QueryText`` types.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Path, Query, Request
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    UrlConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from liveloop.kit.errors import Unprocessable

# Strings with no explicit bound of their own.
MAX_TEXT = 2_000
# Ids of our rows are ~30 characters ("mem_" + 26); 64 leaves room and refuses anything absurd.
MAX_ID = 64
# Money in minor units: 10^12 is USD 10 billion, VND 40 million dollars' worth: beyond any one order or
# grant, and a sum of millions of them still fits a BIGINT.
MAX_MINOR = 10**12
# Points and ticket amounts of one movement (BIGINT columns).
MAX_POINTS = 10**12
# Counts stored in INTEGER columns (usage limits, targets, thresholds): far below 2^31.
MAX_COUNT = 1_000_000
# A free-form JSON object: this many keys per object, this deep, this many values in all.
MAX_JSON_KEYS = 50
MAX_JSON_DEPTH = 5
MAX_JSON_NODES = 1_000
INT64 = 2**63 - 1
MAX_URL = 1000

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_DATETIME = TypeAdapter(datetime)


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which text cannot hold"
    # Both checks run in C over the whole string (a scan character by character would hold the event loop
    # for milliseconds on a body near the size limit): ASCII has no surrogates, and UTF-8 cannot encode one.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone UTF-16 surrogate, which is not a character; send valid Unicode"
    return None


def printable(text: str) -> str:
    """``text`` with lone surrogates spelt out, so that it can be encoded as UTF-8 JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_text(value: Any) -> None:
    """Walk a raw input value (strings, lists, dicts with their keys) and refuse text that cannot be stored."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise ValueError(f"{where}: the text {problem}" if where else f"the text {problem}")
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and text_problem(key):
                    raise ValueError(f"a key {text_problem(key)}")
                stack.append((child, printable(name)[:200]))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))


class RequestModel(BaseModel):
    """Base of every request body (and of the models nested in one)."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        allow_inf_nan=False,
        str_max_length=MAX_TEXT,
    )

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        _check_text(value)
        return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        try:
            return _DATETIME.validate_json(orjson.dumps(value))
        except (ValidationError, orjson.JSONEncodeError):
            pass
    raise ValueError("must be an ISO 8601 date-time string such as 2026-11-22T10:00:00Z")


# A date-time: an ISO 8601 string in JSON (offset optional where the field says what a missing one means).
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]

# The shape of our ids (kit.ids.new_id): a short prefix, "_" and 26 base32 characters. Documented for clients
# and generators; not enforced, since an id of another shape names nothing and answers 404 like any unknown id.
ID_PATTERN = "^[a-z]{1,8}_[0-9a-z]{26}$"
_ID_SCHEMA = {"pattern": ID_PATTERN}

# A reference to one of our rows.
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID, json_schema_extra=_ID_SCHEMA)]
ExternalId = Annotated[str, Field(min_length=1, max_length=255)]
Money = Annotated[int, Field(ge=0, le=MAX_MINOR, description="Integer minor units: 2599 = USD 25.99")]
PositiveMoney = Annotated[int, Field(gt=0, le=MAX_MINOR, description="Integer minor units: 2599 = USD 25.99")]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
PositiveCount = Annotated[int, Field(ge=1, le=MAX_COUNT)]


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    nodes = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_JSON_NODES:
            raise ValueError(f"holds more than {MAX_JSON_NODES} values; send less")
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"is nested more than {MAX_JSON_DEPTH} levels deep")
            if len(item) > MAX_JSON_KEYS:
                raise ValueError(f"has an object or list of more than {MAX_JSON_KEYS} entries")
            children = item.values() if isinstance(item, dict) else item
            for key in item if isinstance(item, dict) else ():
                if len(key) > 100:
                    raise ValueError("has a key longer than 100 characters")
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            if len(item) > MAX_TEXT:
                raise ValueError(f"has a string longer than {MAX_TEXT} characters")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > INT64:
                raise ValueError("has an integer outside the 64-bit range")
        elif not isinstance(item, float):
            raise ValueError("holds a value that is not JSON")
    return value


# A free-form JSON object, bounded in keys, depth and total size.
JSONObject = Annotated[
    dict[str, Any],
    Field(
        max_length=MAX_JSON_KEYS,
        description=f"A JSON object: at most {MAX_JSON_KEYS} keys per object, {MAX_JSON_DEPTH} levels deep",
    ),
    AfterValidator(_bounded_json),
]


def _fits_url_column(url: HttpUrl) -> HttpUrl:
    # Normalization can lengthen a URL (a trailing slash, punycode for a non-ASCII host): check what is stored.
    if len(str(url)) > MAX_URL:
        raise ValueError(f"must be at most {MAX_URL} characters")
    return url


# What an http(s) URL starts with, in any letter case (as the server checks it).
HTTP_URL_PATTERN = "^[hH][tT][tT][pP][sS]?://"

# An http(s) URL that fits the 1000-character URL columns.
WebUrl = Annotated[
    HttpUrl,
    UrlConstraints(max_length=MAX_URL),
    AfterValidator(_fits_url_column),
    WithJsonSchema(
        {"type": "string", "format": "uri", "minLength": 1, "maxLength": MAX_URL, "pattern": HTTP_URL_PATTERN}
    ),
]

# An IANA time zone name such as Asia/Singapore or UTC (the service checks that it exists: invalid_timezone).
TIMEZONE_PATTERN = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
Timezone = Annotated[
    str,
    Field(
        max_length=64,
        description="IANA time zone, such as Asia/Singapore",
        json_schema_extra={"pattern": TIMEZONE_PATTERN, "examples": ["Asia/Singapore"]},
    ),
]

# An email address as the service accepts it (invalid_email otherwise): something, "@", a domain with a dot.
EmailAddress = Annotated[
    str,
    Field(
        max_length=320,
        json_schema_extra={"pattern": "^[^ ]+@[^ @]*[.][^ @]*$", "examples": ["ana@example.com"]},
    ),
]

# A phone number, best in international form (invalid_phone when it cannot be one).
PhoneNumber = Annotated[
    str,
    Field(
        max_length=32,
        description="International form such as +6591234567; a national number is read in the member's market",
        json_schema_extra={"pattern": "^[+]?[0-9][0-9 ().-]{3,30}$", "examples": ["+6591234567"]},
    ),
]

# Path and query parameters.
PathId = Annotated[str, Path(min_length=1, max_length=MAX_ID, json_schema_extra=_ID_SCHEMA)]
PathCode = Annotated[str, Path(min_length=1, max_length=64, description="A coupon code as printed")]


def QueryText(max_length: int = 64, description: str | None = None) -> Any:
    """A bounded text query parameter: ``status: Annotated[str | None, QueryText(32)] = None``."""
    return Query(max_length=max_length, description=description)


async def clean_parameters(request: Request) -> None:
    """Refuse path and query parameters holding text no database can store (a NUL, a lone surrogate).

    Installed once for the whole application, ahead of every route's own dependencies, so no route runs
    a query with such a value.
    """
    for where, params in (("path", request.path_params), ("query", request.query_params)):
        for name, value in params.items():
            problem = text_problem(str(name)) or (text_problem(value) if isinstance(value, str) else None)
            if problem:
                shown = printable(str(name)[:100]).replace("\x00", "\\u0000")
                raise Unprocessable(
                    f"The {where} parameter '{shown}' {problem}.", code="invalid_parameter", field=f"{where}.{shown}"
                )
