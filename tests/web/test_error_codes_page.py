"""The error-code catalogue page in Chromium: readable, styled, linkable, and nothing refused by its policy."""

from __future__ import annotations

from typing import Any

from liveloop.kit import errors
from tests.live.conftest import LiveServer
from tests.web.test_security import violations, watched_context
from tests.web.test_viewer_page import browser, live_server_screenshot

__all__ = ["browser"]


async def test_the_error_codes_page_works_under_its_policy(live_server: LiveServer, browser: Any) -> None:
    context = await watched_context(browser, viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    page = await context.new_page()
    response = await page.goto(f"{live_server.base}/docs/errors#member_not_found")
    assert response is not None
    assert response.status == 200
    assert await page.locator("tbody tr").count() == len(errors.catalogued_codes())
    row = page.locator("tr#member_not_found")
    assert "404" in await row.inner_text()
    # The stylesheet applied (no inline style is allowed), and the linked code is the one highlighted.
    assert await page.evaluate("getComputedStyle(document.querySelector('table')).borderCollapse") == "collapse"
    highlighted = await row.evaluate("e => getComputedStyle(e).backgroundColor")
    assert highlighted not in ("rgba(0, 0, 0, 0)", "transparent")
    await page.click("nav a[href='#room']")
    await page.locator("section#room h2").wait_for()
    assert "WebSocket" in await page.locator("tr#room-rate_limited").inner_text()
    assert await violations(page) == []
    assert all(u.startswith(live_server.base) for u in requested)  # the page and its stylesheet, nothing else
    await page.goto(f"{live_server.base}/docs/errors#coupon_bound_to_other")
    await page.screenshot(path=live_server_screenshot("error-codes.png"))
