"""What the room shows about a viewer: a per-show alias, never the identity behind it.

A viewer's identity in a show is its verified viewer key (``m:<member id>`` or ``d:<device id>``, from the
token the server signed). Anything the room broadcasts is seen by every viewer, so it must grant nothing:
comments, the hello, co-host and moderation messages, provider identities and public results name a viewer
by :func:`alias` — 12 url-safe characters of an HMAC over (show, key) under the server's secret. It is stable
for a viewer within a show (the host's mute and ban buttons act on it, and it survives a reconnect), differs
from show to show (two shows' aliases cannot be linked), and says nothing about the key.

The server maps an alias back to a key (:func:`liveloop.live.service.viewer_by_alias`): aliases are only
ever *targets* the host names, never credentials a viewer presents.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.live.tokens import viewer_key

ALIAS_LENGTH = 12
# The sessionmaker's info carries the server's secret under this key, for work that names viewers in results
# (settling a lottery from a scheduled job) without a request or a gateway at hand.
SECRET_INFO_KEY = "liveloop.alias_secret"
_DOMAIN = b"liveloop:room-alias:v1\x00"


@lru_cache(maxsize=1 << 16)
def alias(secret: str, show_id: str, viewer_key: str) -> str:
    """The viewer's alias in this show (cached: comments and bans compute it often)."""
    message = _DOMAIN + show_id.encode() + b"\x00" + viewer_key.encode()
    digest = hmac.digest(secret.encode(), message, hashlib.sha256)
    return base64.urlsafe_b64encode(digest[:9]).decode()  # 9 bytes: 12 characters, no padding


def host_device(show_id: str) -> str:
    """The device part of the host's identity in a show: one identity for every host console of it.

    No device id the server issues contains a colon, so no viewer can join as the host.
    """
    return f"host:{show_id}"


def host_key(show_id: str) -> str:
    return viewer_key(None, host_device(show_id))


def secret_of(session: AsyncSession) -> str:
    secret = session.info.get(SECRET_INFO_KEY)
    if not secret:
        raise RuntimeError(f"the sessionmaker's info has no {SECRET_INFO_KEY!r}: configure it with the secret key")
    return str(secret)
