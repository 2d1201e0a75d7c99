"""Viewer tokens: signed (HS256) claims that say who may join which show, and as what.

A token names a member (minted by the shop's backend, which knows who is logged in) or an anonymous
device (minted by the public join endpoint). Anonymous devices can later be linked to a member.

A host token also names the API key that minted it (claim ``kid``): the gateway and the video-token endpoint
refuse it once that key is revoked (``token_revoked``), and close the host's open sockets.

Tokens travel in headers only, never in a URL: ``Authorization: Bearer <token>`` over HTTP, and the WebSocket
subprotocol (``Sec-WebSocket-Protocol: liveloop.v1, <token>``) for the room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import jwt

from liveloop.kit.errors import Unauthorized
from liveloop.kit.time import utc_now

AUDIENCE = "liveloop:room"
ISSUER = "liveloop"
VIEWER_TTL = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class ViewerClaims:
    shop_id: str
    show_id: str
    key: str  # m:<member id> or d:<device id>
    name: str
    member_id: str | None = None
    device_id: str | None = None
    role: str = "viewer"  # viewer host
    key_id: str | None = None  # the API key that minted a host token

    @property
    def is_host(self) -> bool:
        return self.role == "host"


def viewer_key(member_id: str | None, device_id: str | None) -> str:
    if member_id:
        return f"m:{member_id}"
    if device_id:
        return f"d:{device_id}"
    raise ValueError("a viewer is a member or a device")


def mint(
    secret: str,
    *,
    shop_id: str,
    show_id: str,
    name: str,
    member_id: str | None = None,
    device_id: str | None = None,
    role: str = "viewer",
    key_id: str | None = None,
    ttl: timedelta = VIEWER_TTL,
) -> str:
    """A signed token; a host token (``role="host"``) names the API key minting it as ``key_id``."""
    if role == "host" and not key_id:
        raise ValueError("a host token names the API key that mints it")
    now = utc_now()
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": viewer_key(member_id, device_id),
        "shop": shop_id,
        "show": show_id,
        "name": name,
        "mid": member_id,
        "did": device_id,
        "role": role,
        "kid": key_id,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: str, token: str, *, show_id: str | None = None) -> ViewerClaims:
    """The token's claims; ``Unauthorized`` when it is forged, expired or for another show."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "shop", "show"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The viewer token has expired; ask for a new one.", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The viewer token is not valid; ask for a new one.", code="invalid_token") from exc
    if show_id is not None and claims["show"] != show_id:
        raise Unauthorized("This viewer token is for another show.", code="wrong_show")
    role = claims.get("role") or "viewer"
    key_id = claims.get("kid")
    if role == "host" and not (isinstance(key_id, str) and key_id):
        # Only a token that names its API key can be revoked with it; mint a new one.
        raise Unauthorized("This host token is not valid any more; mint a new host token.", code="invalid_token")
    return ViewerClaims(
        shop_id=claims["shop"],
        show_id=claims["show"],
        key=claims["sub"],
        name=str(claims.get("name") or "")[:60],
        member_id=claims.get("mid"),
        device_id=claims.get("did"),
        role=role,
        key_id=key_id if isinstance(key_id, str) else None,
    )


def from_authorization(secret: str, authorization: str, *, show_id: str) -> ViewerClaims:
    """The verified claims of the viewer token sent as ``Authorization: Bearer <token>`` for this show."""
    token = authorization.removeprefix("Bearer ").strip()
    if not token:
        raise Unauthorized("Send the viewer token as Authorization: Bearer <token>.", code="missing_token")
    return verify(secret, token, show_id=show_id)
