"""What every HTTP request passes through first: a request id, the body limit, security headers, the access log.

:class:`Edge` wraps the whole application, ahead of every other middleware (the invite-link and socket
handlers included), so these hold for every route, public or not, and for routes added later:

- **Request id.** A sane incoming ``X-Request-Id`` is kept, otherwise one is made; it is answered in the
  ``X-Request-Id`` header and stamped on every log line written while the request runs.
- **Body limit.** A body larger than ``max_body_bytes`` is refused with 413 ``body_too_large`` before
  anything parses it: at once by its ``Content-Length``, or, when it is streamed without one, as soon as the
  chunks received add up to more than the limit (whatever the application answered is then replaced).
- **Headers.** ``X-Content-Type-Options: nosniff`` on every response, and a strict Content-Security-Policy on
  any HTML page that does not bring its own (pages that need more declare it themselves).
- **Access log.** One line per request on the ``liveloop.access`` logger: request id, shop (when an API key
  named it), method, route template (never the raw path or query string, which can carry tokens), status and
  duration. WebSocket sessions pass through untouched.
- **Error codes.** When this process records the codes it answers (``LIVELOOP_RECORD_ERROR_CODES``, see
  :mod:`liveloop.kit.errors`), the code and status of each error body are recorded here, whoever built it.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

import orjson
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from liveloop.kit import errors
from liveloop.kit.logs import request_id

access_log = logging.getLogger("liveloop.access")

REQUEST_ID_HEADER = "x-request-id"
ROUTE_KEY = "liveloop.route"  # set in the scope by handlers that answer ahead of the router
DEFAULT_HTML_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
_NOSNIFF = (b"x-content-type-options", b"nosniff")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/members/{member_id}``), never the path as requested."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path = getattr(route, "path", None)
    if path is not None:
        return str(path)
    return str(scope.get(ROUTE_KEY) or "(unmatched)")


def _shop_of(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    operator = state.get("operator")
    shop_id = getattr(operator, "shop_id", None) or state.get("shop_id")
    return str(shop_id) if shop_id else None


def too_large_body(limit: int) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "code": "body_too_large",
                "message": f"The request body is larger than {limit} bytes, the most this server accepts "
                "(LIVELOOP_MAX_BODY_BYTES). Send a smaller body, e.g. split a bulk request into several.",
                "details": {"max_bytes": limit},
            }
        }
    )


class Edge:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = b""
        length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == REQUEST_ID_HEADER.encode() and _SANE_ID.match(value):
                rid = value
        rid_text = rid.decode() if rid else secrets.token_hex(8)
        rid = rid_text.encode()
        token = request_id.set(rid_text)
        status = 0
        limit = self.max_body_bytes
        tripped = False
        sent_start = False
        recording = errors.recorder is not None
        error_body: list[bytes] = []

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent_start
            if tripped:
                return  # the body was too large: the 413 below replaces whatever the application answers
            if recording and status >= 400 and message["type"] == "http.response.body":
                error_body.append(message.get("body", b""))
                if not message.get("more_body"):
                    _record(status, b"".join(error_body))
            if message["type"] == "http.response.start":
                status = message["status"]
                sent_start = True
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append(_NOSNIFF)
                headers.append((b"x-request-id", rid))
                if b"content-security-policy" not in names and any(
                    name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers
                ):
                    headers.append((b"content-security-policy", DEFAULT_HTML_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        async def respond_too_large() -> None:
            nonlocal status
            status = 413
            body = too_large_body(limit)
            if recording:
                _record(status, body)
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                        _NOSNIFF,
                        (b"x-request-id", rid),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        try:
            declared = _int(length) if length is not None else None
            if declared is not None and declared > limit:
                await respond_too_large()
                return
            app_receive = receive
            if declared is None:
                received = 0

                async def counting_receive() -> Message:
                    nonlocal received, tripped
                    if tripped:
                        return {"type": "http.disconnect"}
                    message = await receive()
                    if message["type"] == "http.request":
                        received += len(message.get("body", b""))
                        if received > limit:
                            tripped = True
                            return {"type": "http.disconnect"}
                    return message

                app_receive = counting_receive
            try:
                await self.app(scope, app_receive, send_wrapper)
            except Exception:
                if not tripped:
                    status = status or 500
                    raise
            if tripped and not sent_start:
                await respond_too_large()
        finally:
            self._log(scope, rid_text, status, started)
            request_id.reset(token)

    def _log(self, scope: Scope, rid: str, status: int, started: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        route = route_template(scope)
        shop = _shop_of(scope) or "-"
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        method = scope.get("method", "-")
        fields: dict[str, Any] = {
            "request_id": rid,
            "shop": shop,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
        }
        access_log.info("%s %s %s %.2fms shop=%s", method, route, status, duration_ms, shop, extra=fields)


def _record(status: int, body: bytes) -> None:
    """Record the code of an error body (``{"error": {"code": …}}``); other bodies are not errors of the API."""
    recorder = errors.recorder
    if recorder is None or len(body) > 65536:
        return
    try:
        code = orjson.loads(body)["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return
    if isinstance(code, str):
        recorder(code, status)


def _int(value: bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
