"""The invite-link hot path: resolve the code from a short-lived cache, record the click by group commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from liveloop.kit.batching import GroupCommitWriter, SQLiteBatchWriter, TTLCache, session_flush
from liveloop.kit.edge import ROUTE_KEY
from liveloop.kit.ids import new_id
from liveloop.kit.signing import keyed_hash
from liveloop.kit.sql import table
from liveloop.kit.time import utc_now
from liveloop.members import devices
from liveloop.models import InviteClick
from liveloop.models.referral import ShareChannel
from liveloop.referral import repository

# What a click records as its channel; any other ``ch`` is recorded (and passed on) as ``other``.
CHANNELS: dict[str, ShareChannel] = {channel.value: channel for channel in ShareChannel}


def channel_of(ch: str) -> ShareChannel:
    """The channel a click's ``ch`` names (``other`` when it names none)."""
    return CHANNELS.get(ch, ShareChannel.OTHER)


@dataclass(frozen=True)
class Target:
    shop_id: str
    landing_url: str
    inviter_id: str
    group_id: str | None


class ClickRecorder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, ttl_seconds: float = 30.0) -> None:
        self.sessions = sessions
        engine = sessions.kw["bind"]
        clicks_table = table(InviteClick)
        database = engine.url.database
        self._sqlite: SQLiteBatchWriter | None = None
        if engine.dialect.name == "sqlite" and database and database != ":memory:":
            self._sqlite = SQLiteBatchWriter(database, clicks_table, engine.dialect)
            self.writer = GroupCommitWriter(self._sqlite, name="invite-clicks")
        else:
            self.writer = GroupCommitWriter(session_flush(sessions, clicks_table), name="invite-clicks")
        self.targets: TTLCache[tuple[str, str], Target | bool] = TTLCache(ttl_seconds)

    async def resolve(self, shop_slug: str, code: str) -> Target | None:
        """The inviter (or VIP group) behind a code; unknown codes are remembered briefly too."""
        key = (shop_slug, code)
        hit = self.targets.get(key)
        if hit is None:
            hit = await self._load(shop_slug, code) or False
            self.targets.put(key, hit)
        return hit if isinstance(hit, Target) else None

    async def _load(self, shop_slug: str, code: str) -> Target | None:
        async with self.sessions() as session:
            found = await repository.invite_target(session, shop_slug, code)
        return None if found is None else Target(*found)

    async def record(
        self,
        target: Target,
        *,
        channel: str,
        show_id: str | None,
        host_id: str | None,
        device_id: str | None,
        ip_hash: str | None,
        user_agent: str | None,
    ) -> str:
        click_id = new_id("clk")
        await self.writer.write(
            {
                "id": click_id,
                "shop_id": target.shop_id,
                "inviter_id": target.inviter_id,
                "group_id": target.group_id,
                "channel": channel_of(channel),
                "show_id": (show_id or "")[:64] or None,
                "host_id": (host_id or "")[:64] or None,
                "device_id": device_id,
                "ip_hash": ip_hash,
                "user_agent": (user_agent or "")[:400] or None,
                "created_at": utc_now(),
            }
        )
        return click_id

    async def close(self) -> None:
        await self.writer.close()
        if self._sqlite is not None:
            self._sqlite.close()


_NOT_FOUND = orjson.dumps(
    {
        "error": {
            "code": "unknown_invite_code",
            "message": "This invite link is unknown; check it or ask your friend for a fresh one.",
        }
    }
)


class InviteLinkMiddleware:
    """Serves ``GET /r/{shop}/{code}`` ahead of the router: the busiest public URL, kept lean.

    It records the click (committed before answering; concurrent clicks share one commit) and redirects
    (302) to the shop's landing page with ``ll_ref``, ``ll_click``, ``ll_ch`` and, when given, ``ll_show``
    and ``ll_host`` in the query. Query parameters: ``ch`` (channel), ``show``, ``host``. The click is
    recorded on the browser's verified device (``ll_did``, see :mod:`liveloop.members.devices`); a browser
    without one, or with a value this server did not sign, is given a fresh device, never the value it sent.
    An unknown shop or code answers 404 ``unknown_invite_code``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        parts = path.split("/")
        if (
            not path.startswith("/r/")
            or len(parts) != 4
            or not parts[2]
            or not parts[3]
            or scope["method"] not in ("GET", "HEAD")
        ):
            await self.app(scope, receive, send)
            return
        scope[ROUTE_KEY] = "/r/{shop}/{code}"  # the access log's route (never the code itself)
        state = scope["app"].state
        recorder: ClickRecorder = state.clicks
        code = parts[3].upper()
        target = await recorder.resolve(parts[2], code)
        if target is None:
            await _respond(send, 404, [(b"content-type", b"application/json")], _NOT_FOUND)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        channel = query.get("ch", ["copy"])[0]
        show = query.get("show", [None])[0]
        host = query.get("host", [None])[0]
        headers = dict(scope["headers"])
        secret = state.settings.secret_key
        device, cookie = devices.identify(secret, headers.get(b"cookie", b"").decode("latin-1"))
        client = scope.get("client")
        click_id = await recorder.record(
            target,
            channel=channel,
            show_id=show,
            host_id=host,
            device_id=device,
            ip_hash=keyed_hash(secret, client[0]) if client else None,
            user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
        )
        params = {"ll_ref": code, "ll_click": click_id, "ll_ch": channel_of(channel).value}
        if show:
            params["ll_show"] = show
        if host:
            params["ll_host"] = host
        landing = urlsplit(target.landing_url)
        if show and await _show_is_live(state, show, target.shop_id):
            # During the show the link opens the live room itself, with the attribution in the query.
            landing = urlsplit(f"{state.settings.public_base_url.rstrip('/')}/live/{show}")
        extra = urlencode(params)
        location = urlunsplit(landing._replace(query=f"{landing.query}&{extra}" if landing.query else extra))
        await _respond(
            send,
            302,
            [
                (b"location", location.encode("latin-1")),
                devices.set_cookie_header(cookie, scope),
                (b"cache-control", b"no-store"),
            ],
            b"",
        )


async def _show_is_live(state: Any, show_id: str, shop_id: str) -> bool:
    gateway = getattr(state, "gateway", None)
    if gateway is None or len(show_id) > 40:
        return False
    info = await gateway.show_info(show_id)
    return info is not None and info.shop_id == shop_id and info.status == "live"


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
