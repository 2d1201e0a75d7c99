"""The viewer page, its embed script and its share sheet."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.openapi import errors
from liveloop.kit.schemas import PathId, QueryText
from liveloop.live import tokens
from liveloop.live.gateway import public_show
from liveloop.live.repository import ShowRepository
from liveloop.members.repository import MemberRepository
from liveloop.referral import links
from liveloop.referral.schemas import ShareSheet, ShareTarget
from liveloop.shops.repository import ShopRepository
from liveloop.web import i18n

STATIC = Path(__file__).parent / "static"
pages = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
share = APIRouter(prefix="/v1/public", route_class=UnitOfWorkRoute, tags=["public"])


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_for_script(data: Any) -> str:
    """JSON to embed in ``<script type="application/json">``: no ``</script>``, ``<!--`` or line separators.

    ``<``, ``>`` and ``&`` can only occur inside JSON strings, where ``\\u003c`` and friends mean the same.
    """
    return orjson.dumps(data).decode().translate(_SCRIPT_SAFE)


def content_security_policy(directives: dict[str, Iterable[str]]) -> str:
    return "; ".join(f"{name} {' '.join(dict.fromkeys(sources))}" for name, sources in directives.items())


_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _origin(url: str | None, *, websocket: bool = False) -> list[str]:
    """``scheme://host[:port]`` of ``url`` for a CSP source list (and its ws/http twin when asked)."""
    if not url:
        return []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc or not _HOST.match(parts.netloc):
        return []
    origin = f"{parts.scheme}://{parts.netloc}"
    if not websocket:
        return [origin]
    twin = {"http": "ws", "https": "wss", "ws": "http", "wss": "https"}[parts.scheme]
    return [origin, f"{twin}://{parts.netloc}"]


def _self_sockets(request: Request) -> list[str]:
    """The page's own origin as ws:// or wss://, which not every browser counts as 'self'."""
    host = request.headers.get("host", "")
    scheme = "wss" if request.url.scheme == "https" else "ws"
    own = [f"{scheme}://{host}"] if _HOST.match(host) else []
    return own + _origin(request.app.state.settings.public_base_url, websocket=True)


def viewer_policy(request: Request, show: dict[str, Any], frame_ancestors: list[str]) -> str:
    """The viewer page's policy: scripts from this server only; framed only by the shop's storefronts.

    Streams (HLS playlists, LiveKit) come from the show's provider, so media and connections may go to any
    https/wss origin and to the ones this show names; images (product cards) from any https origin.
    """
    video = show.get("video") or {}
    streams = _origin(video.get("hls_url")) + _origin(show.get("replay_url"))
    livekit = _origin(request.app.state.settings.livekit_url, websocket=True)
    return content_security_policy(
        {
            "default-src": ["'self'"],
            "script-src": ["'self'"],
            "style-src": ["'self'"],
            "img-src": ["'self'", "data:", "blob:", "https:"],
            "media-src": ["'self'", "blob:", "https:", *streams],
            "connect-src": ["'self'", *_self_sockets(request), "https:", "wss:", *streams, *livekit],
            "worker-src": ["'self'", "blob:"],
            "font-src": ["'self'"],
            "object-src": ["'none'"],
            "base-uri": ["'none'"],
            "form-action": ["'self'"],
            "frame-ancestors": frame_ancestors or ["'none'"],
        }
    )


def console_policy(request: Request) -> str:
    return content_security_policy(
        {
            "default-src": ["'self'"],
            "script-src": ["'self'"],
            "style-src": ["'self'"],
            "img-src": ["'self'", "data:"],
            "connect-src": ["'self'", *_self_sockets(request)],
            "object-src": ["'none'"],
            "base-uri": ["'none'"],
            "form-action": ["'self'"],
            "frame-ancestors": ["'none'"],
        }
    )


_PAGE = (STATIC / "room.html").read_text(encoding="utf-8")


@pages.get("/live/{show_id}", response_class=HTMLResponse)
async def viewer_page(show_id: str, request: Request, session: Session, lang: str | None = None) -> HTMLResponse:
    show = await ShowRepository(session).by_id(show_id)
    if show is None:
        return HTMLResponse("<!doctype html><title>Not found</title><p>No such show.</p>", status_code=404)
    shop = await ShopRepository(session).get(show.shop_id, show.shop_id)
    language = i18n.pick(lang or show.language, request.headers.get("accept-language"))
    direction = "rtl" if language in i18n.RTL else "ltr"
    shop_name = shop.name if shop else ""
    boot: dict[str, Any] = {
        "show": public_show(show),
        "shop": {"name": shop.name if shop else "", "slug": shop.slug if shop else ""},
        "lang": language,
        "dir": direction,
        "texts": i18n.TEXTS[language],
        "embed": request.query_params.get("embed") == "1",
    }
    page = (
        _PAGE.replace("{{lang}}", language)
        .replace("{{dir}}", direction)
        .replace("{{title}}", html.escape(f"{show.title} · {shop_name}"))
        .replace("{{boot}}", json_for_script(boot))
    )
    policy = viewer_policy(request, boot["show"], list(shop.storefront_origins) if shop else [])
    return HTMLResponse(page, headers={"cache-control": "no-store", "content-security-policy": policy})


_CONSOLE = (STATIC / "console.html").read_text(encoding="utf-8")


@pages.get("/console/{show_id}", response_class=HTMLResponse)
async def host_console(show_id: str, request: Request) -> HTMLResponse:
    """The host console. It asks for an operator API key and then works through the API like any client."""
    page = _CONSOLE.replace("{{boot}}", json_for_script({"show_id": show_id}))
    headers = {
        "cache-control": "no-store",
        "x-frame-options": "DENY",
        "content-security-policy": console_policy(request),
    }
    return HTMLResponse(page, headers=headers)


@pages.get("/embed.js")
async def embed_script(request: Request) -> Response:
    """Place a show on any page: ``<div data-liveloop-show="shw_…" data-lang="th"></div><script src=…/embed.js>``."""
    base = request.app.state.settings.public_base_url.rstrip("/")
    script = (STATIC / "embed.js").read_text(encoding="utf-8").replace("__BASE__", base)
    return Response(script, media_type="text/javascript", headers={"cache-control": "public, max-age=300"})


@share.get("/shows/{show_id}/share", responses=errors(401))
async def share_sheet(
    show_id: PathId, request: Request, session: Session, lang: Annotated[str | None, QueryText(16)] = None
) -> ShareSheet:
    """The viewer's share sheet: a member's own invite links for this show; otherwise the room's link."""
    claims = tokens.from_authorization(
        request.app.state.settings.secret_key, request.headers.get("authorization", ""), show_id=show_id
    )
    show = await ShowRepository(session).by_id(show_id)
    shop = await ShopRepository(session).get(claims.shop_id, claims.shop_id)
    base = request.app.state.settings.public_base_url.rstrip("/")
    room = f"{base}/live/{show_id}"
    member = await MemberRepository(session).get(claims.shop_id, claims.member_id) if claims.member_id else None
    if show is None or shop is None or member is None:
        return ShareSheet(room_url=room, links=[])
    locale = links.pick_locale(lang or member.locale)
    targets = links.share_targets(
        base, shop.slug, shop.name, member.referral_code, locale, show_id=show.id, host_id=show.host_member_id
    )
    return ShareSheet(room_url=room, code=member.referral_code, links=[ShareTarget.model_validate(t) for t in targets])
