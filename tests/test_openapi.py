"""The OpenAPI document tells the truth: each operation lists the errors it answers, with their real body."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import orjson

from liveloop.client import client_for, signed_order_headers
from liveloop.kit.http import ErrorBody
from liveloop.kit.time import utc_now
from tests.conftest import ShopCtx
from tests.factories import create_member, ok

WRITES = {"post", "put", "patch", "delete"}
ERROR_REF = "#/components/schemas/ErrorBody"


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in WRITES | {"get"}
    ]


async def openapi(shop: ShopCtx) -> dict[str, Any]:
    return dict(ok(await shop.api.get("/openapi.json")))


async def test_every_operation_lists_the_errors_its_traits_imply_with_the_error_body(shop: ShopCtx) -> None:
    schema = await openapi(shop)
    error = schema["components"]["schemas"]["ErrorBody"]
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert error["required"] == ["error"]
    assert set(detail["properties"]) == {"code", "message", "details"}
    assert "HTTPValidationError" not in orjson.dumps(schema).decode()  # FastAPI's shape is never answered
    for path, method, op in operations(schema):
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        errors = {int(s): r for s, r in responses.items() if int(s) >= 400}
        for status, response in errors.items():
            assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (where, status)
            assert response["description"], (where, status)
        params = op.get("parameters", [])
        authenticated = bool(op.get("security"))
        if authenticated:
            assert {401, 403} <= set(errors), where
        elif path.startswith("/v1/public/") and not path.startswith("/v1/public/webhooks/"):
            assert 429 in errors, where  # the rate-limited public routes
            assert "Retry-After" in errors[429]["headers"], where
        else:
            assert 429 not in errors, where  # signed webhooks and probes are not rate limited
        if any(p["in"] == "path" for p in params):
            assert 404 in errors, where
        if "requestBody" in op or method in ("post", "put", "patch"):
            assert 413 in errors, where
        if params or "requestBody" in op:
            assert 422 in errors, where
        idempotent = any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)
        assert idempotent == (authenticated and method in WRITES), where
        if idempotent:
            assert {409, 422} <= set(errors), where


async def test_json_bodies_document_415_and_raw_webhooks_their_own_errors(shop: ShopCtx) -> None:
    paths = (await openapi(shop))["paths"]
    assert {"413", "415", "422"} <= set(paths["/v1/members"]["post"]["responses"])
    generic = paths["/v1/webhooks/orders"]["post"]["responses"]
    assert {"400", "401", "404", "413"} <= set(generic)
    assert "415" not in generic
    assert {"400", "401", "404"} <= set(paths["/v1/webhooks/shopify/{shop_slug}"]["post"]["responses"])
    assert "401" in paths["/v1/public/shows/{show_id}/video-token"]["post"]["responses"]
    once = paths["/v1/api-keys"]["post"]
    assert "secret_shown_once" in once["description"]
    assert "`key`" in once["description"]


async def test_the_description_says_what_the_api_covers_today(shop: ShopCtx) -> None:
    info = (await openapi(shop))["info"]["description"]
    assert "live room" in info
    assert "later releases) the live room" not in info
    assert "/console/{show}" in info
    assert "/live/{show}" in info
    assert "Idempotency-Key" in info
    assert "secret_shown_once" in info


async def test_the_errors_the_api_really_answers_are_the_documented_ones(shop: ShopCtx) -> None:
    """Real requests, each answered with an error: its status is listed for its operation, its body fits."""
    schema = await openapi(shop)
    member = await create_member(shop.api)
    start = (utc_now() + timedelta(hours=1)).isoformat()
    show = ok(await shop.api.post("/v1/shows", json={"title": "T", "host_name": "M", "scheduled_at": start}), 201)
    body = orjson.dumps({"external_id": "x"})
    anonymous = client_for(shop.app)
    cases: list[tuple[str, str, httpx.Response]] = [
        ("get", "/v1/members", await anonymous.get("/v1/members")),
        ("get", "/v1/members/{member_id}", await shop.api.get("/v1/members/mem_nope")),
        ("post", "/v1/members", await shop.api.post("/v1/members", content=body)),
        ("post", "/v1/members", await shop.api.post("/v1/members", json={"external_id": 5})),
        ("post", "/v1/members", await shop.api.post("/v1/members", content=b"{" + b" " * 2_000_000 + b"}")),
        ("patch", "/v1/shop", await shop.api.patch("/v1/shop", json={"storefront_origins": ["nope"]})),
        (
            "post",
            "/v1/members",
            await shop.api.post("/v1/members", json={"external_id": "y"}, headers={"Idempotency-Key": "a" * 300}),
        ),
        ("post", "/v1/webhooks/orders", await shop.api.post("/v1/webhooks/orders", content=b"{}")),
        (
            "post",
            "/v1/webhooks/orders",
            await shop.api.post(
                "/v1/webhooks/orders",
                content=b"{}",
                headers={**signed_order_headers(shop.slug, "wrong-secret", b"{}")},
            ),
        ),
        (
            "post",
            "/v1/public/shows/{show_id}/video-token",
            await anonymous.post(f"/v1/public/shows/{show['id']}/video-token"),
        ),
        ("get", "/v1/public/shows/{show_id}/share", await anonymous.get(f"/v1/public/shows/{show['id']}/share")),
        # Ids in a list, or deep inside the body, name resources too: 404 when there is none.
        (
            "post",
            "/v1/coupon-batches",
            await shop.api.post(
                "/v1/coupon-batches", json={"name": "B", "kind": "gift", "gift_sku": "S", "member_ids": ["mem_nope"]}
            ),
        ),
        (
            "post",
            "/v1/campaigns",
            await shop.api.post(
                "/v1/campaigns", json={"name": "C", "inviter_reward": {"type": "coupon", "batch_id": "cpb_nope"}}
            ),
        ),
        # A body that is not UTF-8 is as malformed as one that is not JSON.
        ("post", "/v1/members", await shop.api.post("/v1/members", content=b'{"name": "\xff"}')),
    ]
    await anonymous.aclose()
    reader_key = ok(await shop.api.post("/v1/api-keys", json={"name": "r", "scopes": ["members:read"]}), 201)["key"]
    async with shop.client(reader_key) as reader:
        cases.append(("patch", "/v1/members/{member_id}", await reader.patch(f"/v1/members/{member['id']}", json={})))
    for method, path, response in cases:
        where = f"{method.upper()} {path} → {response.status_code}"
        assert response.status_code >= 400, where
        assert str(response.status_code) in schema["paths"][path][method]["responses"], where
        ErrorBody.model_validate(response.json())
    assert {r.status_code for _, _, r in cases} >= {400, 401, 403, 404, 413, 415, 422}
