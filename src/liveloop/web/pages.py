"""The viewer page, its embed script and its share sheet."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.schemas import PathId, QueryText
from liveloop.live.gateway import public_show
from liveloop.models import Member, Shop, Show
from liveloop.referral import links
from liveloop.web import i18n

STATIC = Path(__file__).parent / "static"
pages = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
share = APIRouter(prefix="/v1/public", route_class=UnitOfWorkRoute, tags=["public"])


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


def _json_for_script(data: Any) -> str:
    # Inside <script type="application/json">: "</" must not appear, or the script element would end early.
    return orjson.dumps(data).decode().replace("</", "<\\/")


_PAGE = (STATIC / "room.html").read_text(encoding="utf-8")


@pages.get("/live/{show_id}", response_class=HTMLResponse)
async def viewer_page(show_id: str, request: Request, session: Session, lang: str | None = None) -> HTMLResponse:
    show = (await session.execute(select(Show).where(Show.id == show_id))).scalar_one_or_none()
    if show is None:
        return HTMLResponse("<!doctype html><title>Not found</title><p>No such show.</p>", status_code=404)
    shop = await session.get(Shop, show.shop_id)
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
        .replace("{{boot}}", _json_for_script(boot))
    )
    return HTMLResponse(page, headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})


_CONSOLE = (STATIC / "console.html").read_text(encoding="utf-8")


@pages.get("/console/{show_id}", response_class=HTMLResponse)
async def host_console(show_id: str) -> HTMLResponse:
    """The host console. It asks for an operator API key and then works through the API like any client."""
    page = _CONSOLE.replace("{{boot}}", _json_for_script({"show_id": show_id}))
    return HTMLResponse(page, headers={"cache-control": "no-store", "x-frame-options": "DENY"})


@pages.get("/embed.js")
async def embed_script(request: Request) -> Response:
    """Place a show on any page: ``<div data-liveloop-show="shw_…" data-lang="th"></div><script src=…/embed.js>``."""
    base = request.app.state.settings.public_base_url.rstrip("/")
    script = (STATIC / "embed.js").read_text(encoding="utf-8").replace("__BASE__", base)
    return Response(script, media_type="text/javascript", headers={"cache-control": "public, max-age=300"})


@share.get("/shows/{show_id}/share")
async def share_sheet(
    show_id: PathId, request: Request, session: Session, lang: Annotated[str | None, QueryText(16)] = None
) -> Any:
    """The viewer's share sheet: a member's own invite links for this show; otherwise the room's link."""
    from liveloop.live.endpoints import _viewer

    claims = _viewer(request, show_id)
    show = (await session.execute(select(Show).where(Show.id == show_id))).scalar_one_or_none()
    shop = await session.get(Shop, claims.shop_id)
    base = request.app.state.settings.public_base_url.rstrip("/")
    room = f"{base}/live/{show_id}"
    member = await session.get(Member, claims.member_id) if claims.member_id else None
    if show is None or shop is None or member is None or member.shop_id != shop.id:
        return {"room_url": room, "links": []}
    locale = links.pick_locale(lang or member.locale)
    return {
        "room_url": room,
        "code": member.referral_code,
        "links": links.share_targets(
            base, shop.slug, shop.name, member.referral_code, locale, show_id=show.id, host_id=show.host_member_id
        ),
    }
