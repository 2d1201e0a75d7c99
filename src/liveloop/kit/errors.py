"""Domain errors carry a stable ``code``, an HTTP status and a sentence that says how to fix it.

**The catalogue.** Every code the API answers is a member of an :class:`ErrorCode` enum: one per domain, in
that domain's ``errors.py`` (``members/errors.py`` …), plus :class:`ApiErrorCode` here for what any route
can answer. A member's value is the code itself, and it carries the HTTP status it is answered with (or
``"room"`` for an input the live room refuses over its WebSocket), what it means and how to fix the
request, in a sentence each, for the engineer integrating liveloop::

    class MemberErrorCode(ErrorCode):
        MEMBER_NOT_FOUND = ("member_not_found", 404, "No member with this id in the shop.", "Check the id …")

    raise NotFound("No such member in this shop.", code=MemberErrorCode.MEMBER_NOT_FOUND)

A domain registers its codes by subclassing; :func:`catalogue` lists every subclass, so whoever shows the
catalogue (the docs page in ``web/``) imports the domains' ``errors`` modules first. ``kit`` imports none.

**Recording.** With ``LIVELOOP_RECORD_ERROR_CODES=<file>`` set, every process appends each (code, status) it
answers to that file, once: the HTTP edge for error bodies, the live room for refused inputs. The test suite
sets it to check that each catalogued code is produced by some test. Unset, :data:`recorder` is ``None`` and
the callers skip it with one comparison.
"""

from __future__ import annotations

import os
import threading
from enum import StrEnum
from typing import Any, Literal, Self

ROOM: Literal["room"] = "room"
"""The "status" of an input the live room refuses: a ``{"t": "err", "code", "message"}`` frame on its socket."""

Status = int | Literal["room"]


class ErrorCode(StrEnum):
    """The base of each domain's catalogue; a member is ``(code, status or statuses, meaning, fix)``.

    ``status`` is an HTTP status, a tuple of them when one code is answered under two (the first is the
    usual one), or :data:`ROOM`.
    """

    _value_: str
    statuses: tuple[Status, ...]
    meaning: str
    fix: str

    def __new__(cls, code: str, status: Status | tuple[Status, ...], meaning: str, fix: str) -> Self:
        member = str.__new__(cls, code)
        member._value_ = code
        member.statuses = status if isinstance(status, tuple) else (status,)
        member.meaning = meaning
        member.fix = fix
        return member

    @property
    def code(self) -> str:
        return str(self.value)

    @property
    def status(self) -> Status:
        """The status the code is usually answered with."""
        return self.statuses[0]

    @property
    def room(self) -> bool:
        return ROOM in self.statuses


def _subclasses(cls: type[ErrorCode]) -> list[type[ErrorCode]]:
    found: list[type[ErrorCode]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def catalogue() -> list[type[ErrorCode]]:
    """Every :class:`ErrorCode` enum defined so far (import the domains' ``errors`` modules first)."""
    return [cls for cls in _subclasses(ErrorCode) if len(cls)]


def catalogued_codes() -> list[ErrorCode]:
    """Every member of every catalogue enum, in the order of :func:`catalogue`."""
    return [member for cls in catalogue() for member in cls]


class ApiErrorCode(ErrorCode):
    """What any route can answer: malformed or oversized requests, routing, idempotency, limits, crashes."""

    INVALID_REQUEST = (
        "invalid_request",
        422,
        "The body or a parameter does not match the operation's schema: a field is missing, misspelt, of the "
        "wrong type or out of range.",
        "Fix the fields listed in `details.problems` (each with its `field` and `problem`) against the schema "
        "in /docs and send the request again.",
    )
    INVALID_PARAMETER = (
        "invalid_parameter",
        422,
        "A path or query parameter holds text no database can store: a NUL character or a lone UTF-16 surrogate.",
        "Send the parameter named in `details.field` as valid Unicode text without control characters.",
    )
    INVALID_CURSOR = (
        "invalid_cursor",
        422,
        "The `cursor` was not issued by this list, or was changed.",
        "Ask for the first page without a cursor, then pass each page's `next_cursor` as it is (with the same "
        "filters).",
    )
    VALUE_NOT_STORABLE = (
        "value_not_storable",
        422,
        "A value passed validation but does not fit where it is stored (too long, or out of range).",
        "Shorten or correct the value and send the request again.",
    )
    BODY_TOO_LARGE = (
        "body_too_large",
        413,
        "The body is larger than the server accepts (`LIVELOOP_MAX_BODY_BYTES`, 1 MB by default; the limit is in "
        "`details.max_bytes`).",
        "Send a smaller body, for example split a bulk request into several.",
    )
    UNSUPPORTED_MEDIA_TYPE = (
        "unsupported_media_type",
        415,
        "The operation takes a JSON body, and the request sent one without `Content-Type: application/json`.",
        "Send the body with `Content-Type: application/json`.",
    )
    RATE_LIMITED = (
        "rate_limited",
        429,
        "This client address or device sent more requests to the public endpoints than their limit allows.",
        "Wait the seconds given in the `Retry-After` header (also in `details.retry_after`), then retry; spread "
        "requests out.",
    )
    NOT_FOUND = (
        "not_found",
        404,
        "Nothing is at this URL.",
        "Check the path, and the method, against the API reference at /docs.",
    )
    METHOD_NOT_ALLOWED = (
        "method_not_allowed",
        405,
        "This URL exists but does not take this HTTP method.",
        "Use one of the methods the API reference at /docs lists for this path.",
    )
    CONFLICT = (
        "conflict",
        409,
        "The change collides with the current state: a duplicate of something that exists, or a concurrent "
        "change to the same resource.",
        "Read the resource again, then retry the change if it still applies.",
    )
    INVALID_IDEMPOTENCY_KEY = (
        "invalid_idempotency_key",
        422,
        "The `Idempotency-Key` header is empty or longer than 255 characters.",
        "Send a key of 1 to 255 characters, for example a new UUID per logical operation.",
    )
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        422,
        "This `Idempotency-Key` was used before with a different request body.",
        "Use a new key for a different operation; repeat a key only to retry the very same request.",
    )
    SECRET_SHOWN_ONCE = (
        "secret_shown_once",
        409,
        "The request succeeded already, and its answer held a secret (an API key, a signing secret, a token) that "
        "is shown only once and was not kept.",
        "Take the created resource from `details.resource`; if the secret was lost, revoke or rotate it, or "
        "repeat the request with a new `Idempotency-Key`.",
    )
    INVALID_SIGNATURE = (
        "invalid_signature",
        401,
        "The signature of a signed webhook (an order event, Shopify or LiveKit) does not match its body.",
        "Sign the exact bytes sent with the shared secret as the webhook's documentation says, and check that "
        "sender and liveloop use the same secret.",
    )
    INVALID_URL = (
        "invalid_url",
        422,
        "The URL cannot be used: not http(s), no host, credentials in it, or not parsable.",
        "Give an absolute http or https URL such as `https://shop.example/welcome`, without a user name or password.",
    )
    INVALID_TIMEZONE = (
        "invalid_timezone",
        422,
        "The time zone is not an IANA time zone name.",
        "Send an IANA zone name such as `Asia/Bangkok` or `Europe/Paris` (not an offset like `+07:00`).",
    )
    INTERNAL_ERROR = (
        "internal_error",
        500,
        "The server failed to answer because of a fault on its side, never because of the request; it has been logged.",
        "Retry later; if it persists, report it with the request id from `details.request_id` (also in the "
        "`X-Request-Id` header).",
    )


class LiveloopError(Exception):
    """An error answered to the client: ``code`` (an :class:`ErrorCode` member or its string), status, message.

    Raised as the base class itself with a catalogued code, it answers that code's usual status.
    """

    status_code = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: ErrorCode | str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
            if type(self) is LiveloopError and isinstance(code, ErrorCode) and isinstance(code.status, int):
                self.status_code = code.status
        self.details = details

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": {"code": str(self.code), "message": self.message}}
        if self.details:
            body["error"]["details"] = self.details
        return body


class BadRequest(LiveloopError):
    status_code = 400
    code = "bad_request"


class Unauthorized(LiveloopError):
    status_code = 401
    code = "unauthorized"


class Forbidden(LiveloopError):
    status_code = 403
    code = "forbidden"


class NotFound(LiveloopError):
    status_code = 404
    code = "not_found"


class Conflict(LiveloopError):
    status_code = 409
    code = "conflict"


class Unprocessable(LiveloopError):
    status_code = 422
    code = "unprocessable"


# --- recording the codes a process answers (see the module's docstring) ------------------------------------

RECORD_ENV = "LIVELOOP_RECORD_ERROR_CODES"


class CodeRecorder:
    """Appends each ``code status`` line it is given to a file, once per process; safe across threads.

    Several processes may append to the same file: each line is one small ``write`` in append mode.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, code: str, status: Status) -> None:
        key = (str(code), str(status))
        if key in self.seen:
            return
        with self._lock:
            if key in self.seen:
                return
            self.seen.add(key)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(f"{key[0]} {key[1]}\n")


recorder: CodeRecorder | None = CodeRecorder(os.environ[RECORD_ENV]) if os.environ.get(RECORD_ENV) else None
"""Set when this process records the codes it answers; callers check ``errors.recorder is not None`` first."""


def record_codes_to(path: str | None) -> None:
    """Start (or, with ``None``, stop) recording the codes this process answers into ``path``."""
    global recorder
    recorder = CodeRecorder(path) if path else None


def read_recorded(path: str) -> set[tuple[str, str]]:
    """The ``(code, status)`` pairs recorded in ``path`` (statuses as text: ``"404"``, ``"room"``)."""
    try:
        with open(path, encoding="utf-8") as lines:
            return {(code, status) for code, _, status in (line.strip().partition(" ") for line in lines) if code}
    except FileNotFoundError:
        return set()
