"""The viewer page in a real browser (Debian's Chromium driven by Playwright): two viewers, one room."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from liveloop.client import free_port
from liveloop.kit.db import transaction
from liveloop.models import InteractionEntry
from tests.conftest import ShopCtx
from tests.factories import create_member, ok
from tests.live.conftest import LiveServer, live_show

CHROMIUM = os.environ.get("LIVELOOP_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not installed at {CHROMIUM}; .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium) — browser tests skipped")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            await browser.close()


async def member_page(browser: Any, shop: ShopCtx, server: LiveServer, show_id: str, name: str, lang: str) -> Any:
    member = await create_member(shop.api, name=name, display_name=name)  # a name the member chose to show
    grant = ok(await shop.api.post(f"/v1/shows/{show_id}/viewer-tokens", json={"member_id": member["id"]}), 201)
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await page.goto(f"{server.base}/live/{show_id}?lang={lang}#token={grant['token']}")
    await page.wait_for_function(
        "() => window.liveloop && window.liveloop.state.ws && window.liveloop.state.ws.readyState === 1"
    )
    await page.wait_for_function("() => window.liveloop.state.alias")  # the room's hello has arrived
    return page


async def comment(page: Any, text: str) -> None:
    await page.fill("#text", text)
    await page.click("#send")


async def test_two_viewers_comment_vote_like_and_see_a_lottery_result(
    shop: ShopCtx, live_server: LiveServer, browser: Any
) -> None:
    show = await live_show(shop, pinned=[{"sku": "S1", "title": "Silk scarf", "price_minor": 59000, "currency": "THB"}])
    ann = await member_page(browser, shop, live_server, show["id"], "Ann", "en")
    bou = await member_page(browser, shop, live_server, show["id"], "Boushra", "ar")
    assert await bou.get_attribute("html", "dir") == "rtl"
    assert await ann.get_attribute("html", "dir") == "ltr"
    assert await bou.locator("#send").inner_text() == "إرسال"

    await comment(ann, "Hello from <b>Ann</b>")
    await comment(bou, "مرحبا من بشرى")
    for page in (ann, bou):
        await page.wait_for_function(
            "() => document.querySelector('#comments').innerText.includes('Hello from <b>Ann</b>')"
            " && document.querySelector('#comments').innerText.includes('مرحبا من بشرى')"
        )
    assert await ann.locator("#comments b").count() == 2  # names only: the comment's <b> stayed text

    for _ in range(3):
        await ann.click("#like-btn")
    await bou.wait_for_function("() => window.liveloop.state.likes >= 3")

    poll = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/interactions",
            json={"kind": "poll", "question": "Which colour?", "options": ["Red", "Blue"]},
        ),
        201,
    )
    for page, option in ((ann, 1), (bou, 0)):
        button = page.locator(f'[data-card="{poll["id"]}"] button[data-option="{option}"]')
        await button.wait_for()
        await button.click()
    await bou.wait_for_function(f"() => document.querySelector('[data-card=\"{poll['id']}\"]').innerText.includes('1')")
    # Votes are written in short batches: settle once both are in (the host would settle seconds later).
    for _ in range(100):
        async with transaction(shop.app.state.sessions) as s:
            votes = await s.scalar(
                select(func.count()).select_from(InteractionEntry).where(InteractionEntry.interaction_id == poll["id"])
            )
        if votes == 2:
            break
        await asyncio.sleep(0.05)
    settled = ok(await shop.api.post(f"/v1/interactions/{poll['id']}/settle"))
    assert settled["result"]["votes"] == [1, 1]
    # One vote each: a tie, shown as one in each viewer's language (no option is called the winner).
    card = f'[data-card="{poll["id"]}"] .done'
    for page, text in ((ann, "Tie: Red · Blue"), (bou, "تعادل: Red · Blue")):
        await page.wait_for_function(f"() => (document.querySelector('{card}') || {{}}).innerText === {text!r}")

    lottery = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/interactions",
            json={
                "kind": "keyword_lottery",
                "keyword": "lucky",
                "winners": 1,
                "prize": {"type": "points", "amount": 5},
            },
        ),
        201,
    )
    await ann.locator(f'[data-card="{lottery["id"]}"]').wait_for()
    await comment(ann, "lucky me")
    await ann.wait_for_function("() => document.querySelector('#toast').innerText.length > 0")
    ok(await shop.api.post(f"/v1/interactions/{lottery['id']}/settle"))
    for page in (ann, bou):
        winners = f'[data-card="{lottery["id"]}"] .winners'
        await page.wait_for_function(f"() => (document.querySelector('{winners}') || {{}}).innerText?.includes('Ann')")
    await ann.screenshot(path=str(live_server_screenshot("viewer-en.png")))
    await bou.screenshot(path=str(live_server_screenshot("viewer-ar.png")))


def live_server_screenshot(name: str) -> str:
    folder = os.environ.get("LIVELOOP_SCREENSHOTS", "/tmp/liveloop-screenshots")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def storefront(html: str) -> tuple[str, ThreadingHTTPServer]:
    """A shop's own page, served from another origin on this machine."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", server


async def test_embed_script_places_the_room_in_a_storefront_page(
    shop: ShopCtx, live_server: LiveServer, browser: Any
) -> None:
    show = await live_show(shop)
    settings = shop.app.state.settings
    original, settings.public_base_url = settings.public_base_url, live_server.base  # where storefronts find us
    url, store = storefront(
        f'<h1>Store</h1><div data-liveloop-show="{show["id"]}" data-lang="th"></div>'
        f'<script src="{live_server.base}/embed.js"></script>'
    )
    ok(await shop.api.patch("/v1/shop", json={"storefront_origins": [url]}))  # only its storefronts may frame it
    try:
        script = await shop.api.get("/embed.js")
        assert script.status_code == 200
        assert "data-liveloop-show" in script.text
        page = await (await browser.new_context()).new_page()
        await page.goto(url)
        frame = page.frame_locator("iframe")
        await frame.locator("#send").wait_for()
        assert await frame.locator("#send").inner_text() == "ส่ง"
    finally:
        settings.public_base_url = original
        store.shutdown()


async def test_host_console_runs_the_show(shop: ShopCtx, live_server: LiveServer, browser: Any) -> None:
    show = await live_show(shop)
    host = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    await host.goto(f"{live_server.base}/console/{show['id']}")
    await host.fill("#key", shop.key)
    await host.click("#login button")
    await host.locator("#console").wait_for()
    assert "live" in await host.locator("#status").inner_text()

    viewer = await member_page(browser, shop, live_server, show["id"], "Vic", "en")
    await host.select_option("#kind", "poll")
    await host.click("#launch button")
    await viewer.locator("[data-kind=poll]").wait_for()
    await host.locator("#interactions li", has_text="open").wait_for()

    await host.fill("#pin-sku", "TINT-1")
    await host.fill("#pin-title", "Lip tint")
    await host.fill("#pin-price", "1500")
    await host.fill("#pin-currency", "usd")
    await host.click("#pin button")
    await viewer.wait_for_function("() => document.querySelector('#cards').innerText.includes('Lip tint')")

    await comment(viewer, "spam spam")
    ban = host.locator("#comments li", has_text="spam spam").locator("button", has_text="ban")
    await ban.click()
    await viewer.wait_for_function("() => window.liveloop.state.ws === null")  # closed: banned
    await host.locator("#counts").wait_for()
    await host.screenshot(path=live_server_screenshot("console.png"))


class Recorder:
    """A stream origin on this machine that records what the page's player asks for."""

    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.paths.append(self.path)
                kind, body = files.get(self.path.split("?")[0], ("text/plain", b""))
                self.send_response(200 if body else 404)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.send_header("access-control-allow-origin", "*")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"


def need_players() -> None:
    from liveloop.web import assets

    if not all(assets.present(a) for a in assets.PLAYERS):
        if os.environ.get("CI"):
            pytest.fail("The video players are not installed; `make install` fetches them (liveloop assets)")
        pytest.skip("The video players are not installed (run: liveloop assets)")


async def test_an_hls_show_plays_through_the_player_the_browser_needs(
    shop: ShopCtx, live_server: LiveServer, browser: Any
) -> None:
    need_players()
    playlist = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n#EXT-X-ENDLIST\n"
    origin = Recorder({"/show/index.m3u8": ("application/vnd.apple.mpegurl", playlist)})
    try:
        show = await live_show(shop, video={"provider": "hls", "hls_url": f"{origin.base}/show/index.m3u8"})
        page = await member_page(browser, shop, live_server, show["id"], "Hana", "en")
        await page.locator("#video video[data-source=hls]").wait_for()
        hls_type = "application/vnd.apple.mpegurl"
        native = await page.evaluate(f"() => document.createElement('video').canPlayType('{hls_type}')")
        if not native:  # Chromium without native HLS: hls.js, loaded on demand, reads the playlist and its segment
            assert await page.evaluate("() => typeof window.Hls === 'function' && window.Hls.isSupported()")
        await page.wait_for_function("() => !document.querySelector('#test-card')")
        for _ in range(100):
            if "/show/seg0.ts" in origin.paths:
                break
            await page.wait_for_timeout(50)
        assert origin.paths[0] == "/show/index.m3u8"
        assert "/show/seg0.ts" in origin.paths
    finally:
        origin.server.shutdown()


async def test_a_livekit_show_joins_the_providers_room_with_a_viewer_token(
    shop: ShopCtx, live_server: LiveServer, browser: Any
) -> None:
    """The page asks our API for a provider token and opens LiveKit's signalling socket with it (a stand-in
    socket server on this machine records the attempt: no LiveKit server runs here)."""
    import jwt
    from websockets.asyncio.server import serve

    from liveloop.live import video

    need_players()
    attempts: list[str] = []

    async def signalling(ws: Any) -> None:
        attempts.append(ws.request.path)
        await ws.close(1011, "no media server here")

    settings = shop.app.state.settings
    saved = (settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret)
    port = free_port()
    secret = "lk-secret-for-the-browser-test-0123456789"
    async with serve(signalling, "127.0.0.1", port):
        settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret = (
            f"ws://127.0.0.1:{port}",
            "lk-key",
            secret,
        )
        try:
            show = await live_show(shop, video={"provider": "livekit"})
            page = await member_page(browser, shop, live_server, show["id"], "Lek", "th")
            await page.wait_for_function("() => typeof window.LivekitClient === 'object'")
            for _ in range(200):
                if attempts:
                    break
                await page.wait_for_timeout(50)
        finally:
            settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret = saved
    assert attempts
    assert attempts[0].startswith("/rtc")
    token = attempts[0].split("access_token=", 1)[1].split("&", 1)[0]
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["iss"] == "lk-key"
    assert claims["name"] == "Lek"
    assert claims["video"]["room"] == video.room_name(show["id"])
    assert claims["video"]["roomJoin"] is True
    assert not claims["video"].get("canPublish")  # a viewer watches; hosts and approved co-hosts publish
    await page.wait_for_function("() => document.querySelector('#test-card')")  # no media: the card stays


async def test_a_viewer_the_host_bans_is_told_so_and_cannot_write(
    shop: ShopCtx, live_server: LiveServer, browser: Any
) -> None:
    show = await live_show(shop)
    page = await member_page(browser, shop, live_server, show["id"], "Troll", "ar")
    alias = await page.evaluate("() => window.liveloop.state.alias")
    assert alias
    base = f"/v1/shows/{show['id']}/restrictions"
    ok(await shop.api.post(base, json={"alias": alias, "kind": "ban"}), 201)
    await page.wait_for_function("() => document.querySelector('#text').disabled")
    assert await page.locator("#toast").inner_text() == "أزالك المضيف من هذا البث"  # not "the show has ended"
    assert await page.locator("#send").is_disabled()


async def test_the_share_sheet_names_channels_in_the_viewers_language(
    shop: ShopCtx, live_server: LiveServer, browser: Any
) -> None:
    show = await live_show(shop)
    member = await member_page(browser, shop, live_server, show["id"], "Ann", "es")
    await member.click("#share-btn")
    await member.wait_for_function("() => document.querySelectorAll('#share-links li').length > 3")
    labels = await member.locator("#share-links li").all_inner_texts()
    assert {"WhatsApp", "LINE", "Copiar enlace", "Correo"} <= set(labels)  # brands as they are, the rest in Spanish
    guest = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
    await guest.goto(f"{live_server.base}/live/{show['id']}?lang=ar")
    await guest.wait_for_function("() => window.liveloop && window.liveloop.state.alias")
    await guest.click("#share-btn")
    await guest.wait_for_function("() => document.querySelectorAll('#share-links li').length === 1")
    assert await guest.locator("#share-links li").all_inner_texts() == ["نسخ الرابط"]  # a guest: the room's link
