"""PATCH /v1/shop: name, landing page and the storefront origins that may embed the viewer page."""

from __future__ import annotations

from liveloop.kit.db import transaction
from liveloop.shops.service import create_api_key
from tests.conftest import ShopCtx
from tests.factories import ok


async def test_an_admin_changes_name_landing_page_and_storefronts(shop: ShopCtx) -> None:
    updated = ok(
        await shop.api.patch(
            "/v1/shop",
            json={
                "name": "Acme Beauty",
                "landing_url": "https://acme.example/welcome",
                "storefront_origins": [
                    "https://ACME.example/",
                    "https://acme.example:443",
                    "http://127.0.0.1:8080",
                    "https://shop.acme.example:8443",
                    "http://[::1]:3000",
                ],
            },
        )
    )
    assert updated["name"] == "Acme Beauty"
    assert updated["landing_url"] == "https://acme.example/welcome"
    # Normalized (lower case, default port dropped, no trailing slash) and without duplicates.
    assert updated["storefront_origins"] == [
        "https://acme.example",
        "http://127.0.0.1:8080",
        "https://shop.acme.example:8443",
        "http://[::1]:3000",
    ]
    assert ok(await shop.api.get("/v1/shop")) == updated
    only_name = ok(await shop.api.patch("/v1/shop", json={"name": "Acme"}))
    assert only_name["storefront_origins"] == updated["storefront_origins"]  # what is not sent stays
    assert ok(await shop.api.patch("/v1/shop", json={"storefront_origins": []}))["storefront_origins"] == []


async def test_anything_but_an_origin_is_refused_and_nothing_changes(shop: ShopCtx) -> None:
    ok(await shop.api.patch("/v1/shop", json={"storefront_origins": ["https://acme.example"]}))
    for bad in (
        "https://acme.example/shop",
        "https://acme.example?x=1",
        "https://acme.example/#top",
        "ftp://acme.example",
        "https://user:pw@acme.example",
        "https://acme.example:99999",
        "https://*.acme.example",
        "acme.example",
        "https://acme.example; script-src *",
        "",
    ):
        r = await shop.api.patch("/v1/shop", json={"storefront_origins": ["https://fine.example", bad]})
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "invalid_origin"
        assert "scheme://host[:port]" in r.json()["error"]["message"]
    r = await shop.api.patch("/v1/shop", json={"landing_url": "javascript:alert(1)"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_url")
    assert ok(await shop.api.get("/v1/shop"))["storefront_origins"] == ["https://acme.example"]


async def test_only_admins_change_the_shop(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as s:
        _, key = await create_api_key(s, shop.shop, name="reader", scopes=["campaigns:read"])
    async with shop.client(key) as reader:
        r = await reader.patch("/v1/shop", json={"storefront_origins": ["https://evil.example"]})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "missing_scope")
    assert ok(await shop.api.get("/v1/shop"))["storefront_origins"] == []
