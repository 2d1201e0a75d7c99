"""The pages under their Content-Security-Policy, in Chromium: they work, nothing is refused, framing is limited."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from liveloop.web import assets, docs
from tests.conftest import ShopCtx
from tests.factories import ok
from tests.live.conftest import LiveServer, live_show
from tests.web.test_viewer_page import browser, comment, member_page, storefront

__all__ = ["browser"]

# Added to every page before its own scripts: records what the page's policy refused.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


async def violations(page: Any) -> list[str]:
    return list(await page.evaluate("() => window.__csp || []"))


async def watched_context(browser: Any, **options: Any) -> Any:
    context = await browser.new_context(**options)
    await context.add_init_script(RECORD_VIOLATIONS)
    return context


def need_docs_viewers() -> None:
    if not all(assets.present(a) for a in assets.DOCS):
        if os.environ.get("CI"):
            pytest.fail("Swagger UI and ReDoc are not installed; `make install` fetches them (liveloop assets)")
        pytest.skip("Swagger UI and ReDoc are not installed (run: liveloop assets)")


async def test_the_viewer_page_works_under_its_policy_and_refuses_nothing(
    shop: ShopCtx, live_server: LiveServer, browser: Any
) -> None:
    title = "Glow </script><script>alert(1)</script> <!-- & \u2028 week"
    show = await live_show(
        shop,
        title=title,
        pinned=[{"sku": "S1", "title": "Silk </script> scarf", "price_minor": 59000, "currency": "THB"}],
    )
    context = await watched_context(browser, viewport={"width": 390, "height": 844})
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await page.goto(f"{live_server.base}/live/{show['id']}?lang=en")
    await page.wait_for_function("() => window.liveloop?.state.ws?.readyState === 1")
    assert await page.locator("#title").inner_text() == title  # the boot JSON arrived intact
    await page.wait_for_function("() => document.querySelector('#cards').innerText.includes('Silk </script> scarf')")
    await comment(page, "hello under a policy")
    await page.wait_for_function("() => document.querySelector('#comments').innerText.includes('hello under a policy')")
    await page.click("#like-btn")
    await page.wait_for_function("() => window.liveloop.state.likes >= 1")
    assert dialogs == []
    assert await violations(page) == []


async def test_the_host_console_works_under_its_policy(shop: ShopCtx, live_server: LiveServer, browser: Any) -> None:
    show = await live_show(shop)
    host = await (await watched_context(browser, viewport={"width": 1280, "height": 900})).new_page()
    response = await host.goto(f"{live_server.base}/console/{show['id']}")
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    await host.fill("#key", shop.key)
    await host.click("#login button")
    await host.locator("#console").wait_for()
    viewer = await member_page(browser, shop, live_server, show["id"], "Vic", "en")
    await host.select_option("#kind", "poll")
    await host.click("#launch button")
    await viewer.locator("[data-kind=poll]").wait_for()
    await comment(viewer, "from the floor")
    await host.locator("#comments li", has_text="from the floor").wait_for()
    assert await violations(host) == []


async def test_the_embed_works_on_the_shops_storefront_and_nowhere_else(
    shop: ShopCtx, live_server: LiveServer, browser: Any
) -> None:
    show = await live_show(shop)
    settings = shop.app.state.settings
    original, settings.public_base_url = settings.public_base_url, live_server.base
    snippet = f'<div data-liveloop-show="{show["id"]}"></div><script src="{live_server.base}/embed.js"></script>'
    allowed, allowed_server = storefront(f"<h1>Our store</h1>{snippet}")
    other, other_server = storefront(f"<h1>Someone else's page</h1>{snippet}")
    try:
        updated = ok(await shop.api.patch("/v1/shop", json={"storefront_origins": [allowed]}))
        assert updated["storefront_origins"] == [allowed.rstrip("/")]

        page = await (await browser.new_context()).new_page()
        await page.goto(allowed)
        await page.frame_locator("iframe").locator("#send").wait_for()

        refused: list[str] = []
        stranger = await (await browser.new_context()).new_page()
        stranger.on("console", lambda m: refused.append(m.text))
        await stranger.goto(other)
        await stranger.locator("iframe").wait_for()
        for _ in range(100):
            if any("frame-ancestors" in text for text in refused):
                break
            await stranger.wait_for_timeout(50)
        assert any("frame-ancestors" in text for text in refused), refused
        frame = stranger.frames[-1]
        assert await frame.locator("#send").count() == 0  # the room never loaded there
    finally:
        settings.public_base_url = original
        allowed_server.shutdown()
        other_server.shutdown()


async def test_the_api_reference_works_offline_under_its_policy(live_server: LiveServer, browser: Any) -> None:
    need_docs_viewers()
    context = await watched_context(browser)
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    page = await context.new_page()
    await page.goto(f"{live_server.base}/docs")
    await page.locator(".swagger-ui .info .title", has_text="liveloop").wait_for()
    await page.locator(".opblock-tag", has_text="live").first.wait_for()
    assert await violations(page) == []

    redoc = await context.new_page()
    await redoc.goto(f"{live_server.base}/redoc")
    await redoc.locator("h1", has_text="liveloop").first.wait_for(timeout=60_000)
    assert await violations(redoc) == []
    elsewhere = [u for u in requested if u.startswith(("http:", "https:")) and not u.startswith(live_server.base)]
    assert elsewhere == []  # nothing from a CDN or any other server


async def test_without_the_viewers_the_docs_pages_say_how_to_get_them(
    live_server: LiveServer, shop: ShopCtx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs, "VENDOR_DIR", tmp_path)  # an install where `liveloop assets` never ran
    for path in ("/docs", "/redoc"):
        r = await shop.api.get(path)
        assert r.status_code == 503
        assert "liveloop assets" in r.text
        assert "/openapi.json" in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]


async def test_pages_carry_their_policies_and_the_boot_json_cannot_end_its_script(shop: ShopCtx) -> None:
    show = await live_show(shop, title="</script><!-- \u2028 & <b>")
    r = await shop.api.get(f"/live/{show['id']}")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy  # no storefront configured: framed nowhere
    assert r.headers["x-content-type-options"] == "nosniff"
    boot = r.text.split('<script type="application/json" id="ll-boot">', 1)[1].split("</script>", 1)[0]
    for unsafe in ("<", ">", "&", "\u2028"):
        assert unsafe not in boot
    assert orjson.loads(boot)["show"]["title"] == "</script><!-- \u2028 & <b>"
    assert "<script" not in r.text.split("</head>", 1)[1]  # no inline script in the body either

    ok(await shop.api.patch("/v1/shop", json={"storefront_origins": ["https://shop.example", "http://127.0.0.1:8080"]}))
    framed = (await shop.api.get(f"/live/{show['id']}")).headers["content-security-policy"]
    assert "frame-ancestors https://shop.example http://127.0.0.1:8080" in framed

    console = await shop.api.get(f"/console/{show['id']}")
    assert "frame-ancestors 'none'" in console.headers["content-security-policy"]
    assert console.headers["x-frame-options"] == "DENY"

    missing = await shop.api.get("/live/shw_nothing")
    assert missing.status_code == 404
    assert "default-src 'none'" in missing.headers["content-security-policy"]
