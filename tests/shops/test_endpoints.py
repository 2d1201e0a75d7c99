"""The shop's endpoints: GET and PATCH /v1/shop (name, landing page, the storefront origins that may embed the
viewer page) and the API keys' answers."""

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


async def test_the_shop_and_its_keys_answer_with_their_documented_fields(shop: ShopCtx) -> None:
    got = ok(await shop.api.get("/v1/shop"))
    assert set(got) == {
        "id",
        "slug",
        "name",
        "reporting_timezone",
        "default_market",
        "landing_url",
        "shopify_configured",
        "storefront_origins",
        "created_at",
    }
    assert (got["slug"], got["shopify_configured"]) == (shop.slug, True)  # the secret itself is never shown
    key_fields = {"id", "name", "prefix", "scopes", "created_at", "revoked_at"}
    created = ok(
        await shop.api.post("/v1/api-keys", json={"name": "reader", "scopes": ["members:read", "live:read"]}), 201
    )
    assert set(created) == key_fields | {"key"}
    assert (created["scopes"], created["revoked_at"]) == (["live:read", "members:read"], None)
    assert created["key"].startswith(created["prefix"] + "_")
    listed = ok(await shop.api.get("/v1/api-keys"))
    assert set(listed) == {"items", "next_cursor"}
    assert all(set(k) == key_fields for k in listed["items"])
    revoked = ok(await shop.api.delete(f"/v1/api-keys/{created['prefix']}"))
    assert set(revoked) == key_fields
    assert revoked["id"] == created["id"]
    assert revoked["revoked_at"] is not None
