"""Domain errors carry a stable ``code``, an HTTP status and a sentence that says how to fix it."""

from __future__ import annotations

from typing import Any


class LiveloopError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message}}
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
