"""Device identity: the server issues it, signs it, and is the only one that can.

An anonymous browser is known by its device id, kept in the ``ll_did`` cookie on liveloop's domain. The
cookie holds ``"<id>.<sig>"``: a random id and a truncated HMAC-SHA256 of it under ``LIVELOOP_SECRET_KEY``
(domain-separated, so no other signature of this server is a valid device). A client can keep its cookie
or drop it, never choose it: any other value (unsigned, altered, truncated, signed with another key, the
bare id of somebody else's device) is not a device, and whoever reads it issues a fresh one instead.

- **Readers.** The invite link, the live room's join and the public rate limits read the cookie with
  :func:`from_cookie_header`; API fields through which a shop's backend passes the browser's device
  (``device_id`` of member sign-up and update, viewer tokens) take the cookie's value as it is and are
  checked with :func:`require` (422 ``invalid_device`` when it does not verify).
- **Storage.** Only the bare id is stored (clicks, member devices, show viewers ``d:<id>``); the signed
  value travels only in the cookie and in API fields.
- **Cookie.** ``HttpOnly; SameSite=Lax; Path=/; Max-Age=1 year``, and ``Secure`` when the request came over
  https: the ASGI scope's scheme, which uvicorn takes from ``X-Forwarded-Proto`` only for the proxies it
  trusts (``FORWARDED_ALLOW_IPS``), as the viewer page does when it picks ``wss``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from starlette.responses import Response

from liveloop.kit.errors import Unprocessable

COOKIE = "ll_did"
MAX_AGE = 365 * 24 * 3600
MAX_LENGTH = 80  # longest value a reader looks at; a minted one is 45 characters
_SIG_BYTES = 16  # 128 bits of the HMAC kept
_SIG_CHARS = 22  # their unpadded base64url length
_ID_CHARS = (16, 43)  # token_urlsafe(16) is 22 characters; a little room either way, nothing more
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _signature(secret: str, device_id: str) -> str:
    digest = hmac.new(secret.encode(), b"ll_did:" + device_id.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_SIG_BYTES]).rstrip(b"=").decode("ascii")


def sign(secret: str, device_id: str) -> str:
    """The cookie value of an id this server issued (``"<id>.<sig>"``)."""
    return f"{device_id}.{_signature(secret, device_id)}"


def issue(secret: str) -> tuple[str, str]:
    """A new device: its bare id and its signed cookie value."""
    device_id = secrets.token_urlsafe(16)
    return device_id, sign(secret, device_id)


def mint(secret: str) -> str:
    """A new device: a signed value ``"<id>.<sig>"`` for the cookie (:func:`verify` gives back the id)."""
    return issue(secret)[1]


def verify(secret: str, value: str | None) -> str | None:
    """The bare device id when ``value`` is one this server signed, else None."""
    if not value or len(value) > MAX_LENGTH:
        return None
    device_id, dot, sig = value.partition(".")
    if not dot or len(sig) != _SIG_CHARS or not _ID_CHARS[0] <= len(device_id) <= _ID_CHARS[1]:
        return None
    if not set(device_id) <= _SAFE or not set(sig) <= _SAFE:
        return None
    if not hmac.compare_digest(_signature(secret, device_id).encode(), sig.encode()):
        return None
    return device_id


def from_cookie_header(secret: str, header: str) -> str | None:
    """The verified device id of a ``Cookie`` header (the first ``ll_did`` that verifies), else None."""
    if COOKIE not in header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            found = verify(secret, value.strip().strip('"'))
            if found is not None:
                return found
    return None


def identify(secret: str, header: str) -> tuple[str, str]:
    """``(device id, cookie value)`` of the browser behind a ``Cookie`` header: its own device when it sent a
    valid one, else a new one (to be set in the answer; whatever it sent is not used)."""
    device_id = from_cookie_header(secret, header)
    return (device_id, sign(secret, device_id)) if device_id is not None else issue(secret)


def require(secret: str, value: str | None) -> str | None:
    """The bare id of a device passed in an API field; None when the field is absent; else 422 ``invalid_device``."""
    if value is None:
        return None
    device_id = verify(secret, value)
    if device_id is None:
        raise Unprocessable(
            "device_id is not a device this server issued: pass the browser's `ll_did` cookie value exactly as "
            "liveloop set it (the invite link or the live room sets it), or leave the field out.",
            code="invalid_device",
        )
    return device_id


def is_https(scope: Any) -> bool:
    """Whether the request came over https (the scope's scheme, set from a trusted proxy's header by uvicorn)."""
    return scope.get("scheme") in ("https", "wss")


def cookie_value(value: str, *, secure: bool) -> str:
    """The ``Set-Cookie`` header's value for a device cookie."""
    return f"{COOKIE}={value}; Max-Age={MAX_AGE}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def set_cookie_header(value: str, scope: Any) -> tuple[bytes, bytes]:
    """The raw ASGI header that sets the device cookie on a response to the request of ``scope``."""
    return b"set-cookie", cookie_value(value, secure=is_https(scope)).encode("latin-1")


def set_cookie(response: Response, value: str, scope: Any) -> None:
    """Set the device cookie on a Starlette response to the request of ``scope``."""
    response.set_cookie(COOKIE, value, max_age=MAX_AGE, path="/", httponly=True, samesite="lax", secure=is_https(scope))


def guest_name(secret: str, device_id: str) -> str:
    """A neutral room name for a viewer who gave none: "Guest" and four characters that reveal nothing."""
    return "Guest " + hmac.new(secret.encode(), b"guest:" + device_id.encode(), hashlib.sha256).hexdigest()[:4]
