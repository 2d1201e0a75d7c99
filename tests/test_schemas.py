"""Bounded, strictly parsed input: wrong types, unstorable text and out-of-range numbers are a 422 that
changes nothing, on SQLite and PostgreSQL alike; the OpenAPI document states every bound."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import orjson

from liveloop.app import create_app
from liveloop.config import Settings
from liveloop.kit.ids import new_id
from tests.conftest import ShopCtx, is_postgres
from tests.factories import create_campaign, create_member, ok

JSON = {"content-type": "application/json"}


def _error(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def _points(shop: ShopCtx, member: dict[str, Any]) -> int:
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))
    return sum(b["available"] + b["pending"] for b in body["balances"] if b["asset"] == "points")


async def test_a_string_is_not_an_integer_and_yes_is_not_a_boolean(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    for amount in ("100", 100.0, True):
        response = await shop.api.post(
            "/v1/ledger/credits", json={"member_id": member["id"], "asset": "points", "amount": amount}
        )
        assert _error(response)["code"] == "invalid_request"
    assert await _points(shop, member) == 0  # nothing was credited
    for stackable in ("yes", 1, "true"):
        response = await shop.api.post(
            "/v1/coupon-batches", json={"name": "x", "kind": "percent", "percent_bp": 500, "stackable": stackable}
        )
        error = _error(response)
        assert error["details"]["problems"][0]["field"] == "stackable"
    # The same values with their proper types are accepted.
    ok(await shop.api.post("/v1/ledger/credits", json={"member_id": member["id"], "asset": "points", "amount": 100}))
    assert await _points(shop, member) == 100


async def test_iso_date_times_parse_and_numbers_do_not(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, starts_at="2026-12-01T08:00:00+07:00", ends_at="2027-01-01T00:00:00Z")
    assert datetime.fromisoformat(campaign["starts_at"]) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    for value in (1764547200, "1764547200", "next tuesday"):
        response = await shop.api.post("/v1/campaigns", json={"name": "bad", "starts_at": value})
        assert "ISO 8601" in _error(response)["details"]["problems"][0]["problem"]
    assert len(ok(await shop.api.get("/v1/campaigns"))["items"]) == 1


async def test_unknown_fields_are_refused(shop: ShopCtx) -> None:
    response = await shop.api.post("/v1/members", json={"external_id": "c-1", "emial": "ana@example.com"})
    assert _error(response)["details"]["problems"][0]["field"] == "emial"
    assert ok(await shop.api.get("/v1/members"))["items"] == []


async def test_nul_and_lone_surrogates_in_a_body_are_refused_and_store_nothing(shop: ShopCtx) -> None:
    bodies = [
        # NUL in a top-level string: PostgreSQL cannot store it in text.
        b'{"external_id": "c-1", "name": "Ana\\u0000Lima"}',
        # A lone surrogate deep inside (a consent of the member): no encoder can write it.
        b'{"external_id": "c-2", "consents": [{"channel": "email", "purpose": "marketing", "granted": true,'
        b' "source": "form\\ud800", "text_version": "v1"}]}',
        # In a dict key.
        b'{"name": "x", "budgets": {"US\\udc00": 5}}',
    ]
    paths = ["/v1/members", "/v1/members", "/v1/campaigns"]
    for path, body in zip(paths, bodies, strict=True):
        error = _error(await shop.api.post(path, content=body, headers=JSON))
        assert error["code"] == "invalid_request"
        assert "NUL" in error["message"] or "surrogate" in error["message"]
    assert ok(await shop.api.get("/v1/members"))["items"] == []
    assert ok(await shop.api.get("/v1/campaigns"))["items"] == []
    # A surrogate *pair* is an ordinary character (here U+1F600) and is stored as one.
    member = ok(await shop.api.post("/v1/members", content=b'{"name": "Ana \\ud83d\\ude00"}', headers=JSON), 201)
    assert member["name"] == "Ana \U0001f600"


async def test_nul_in_a_path_or_query_parameter_is_422_not_500(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    for url in (
        "/v1/members/mem_%00x",
        "/v1/coupons/AB%00CD",
        "/v1/referrals?status=con%00verted",
        f"/v1/members/{member['id']}/invite-links?locale=e%00n",
        "/v1/public/draws/drw_%00",  # public routes too
    ):
        error = _error(await shop.api.get(url))
        assert error["code"] == "invalid_parameter", url
        assert "NUL" in error["message"]
    # An id longer than any of ours is refused before it reaches a query.
    assert _error(await shop.api.get("/v1/members/" + "m" * 65))["code"] == "invalid_request"


async def test_integers_are_bounded_to_what_the_columns_store(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    too_big = [
        ("/v1/coupon-batches", {"name": "x", "kind": "percent", "percent_bp": 10, "max_uses_per_coupon": 2**31}),
        ("/v1/coupon-batches", {"name": "x", "kind": "fixed", "amount_minor": 10**13, "currency": "USD"}),
        ("/v1/ledger/credits", {"member_id": member["id"], "asset": "points", "amount": 10**13}),
        ("/v1/campaigns", {"name": "x", "budgets": {"USD": 2**63}}),
        (
            "/v1/campaigns",
            {"name": "x", "milestones": [{"threshold": 2**40, "reward": {"type": "perk", "label": "x"}}]},
        ),
    ]
    for path, body in too_big:
        error = _error(await shop.api.post(path, json=body))
        assert error["code"] == "invalid_request", (path, body)
    assert await _points(shop, member) == 0
    assert ok(await shop.api.get("/v1/coupon-batches"))["items"] == []


async def test_free_form_json_is_bounded_in_depth_and_size(shop: ShopCtx) -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(6):
        deep = {"next": deep}
    for presets in (deep, {f"k{i}": i for i in range(51)}, {"big": 2**64}):
        error = _error(await shop.api.patch("/v1/markets/sea", json={"reward_presets": presets}))
        assert error["details"]["problems"][0]["field"] == "reward_presets"
    fine = ok(await shop.api.patch("/v1/markets/sea", json={"reward_presets": {"inviter": {"type": "points"}}}))
    assert fine["reward_presets"] == {"inviter": {"type": "points"}}


async def test_limit_must_be_between_1_and_the_page_maximum(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api)
    for path in ("/v1/members", "/v1/referrals", "/v1/events", f"/v1/campaigns/{campaign['id']}/leaderboard"):
        for limit in (0, -1, 201):
            response = await shop.api.get(path, params={"limit": limit})
            assert _error(response)["details"]["problems"][0]["field"] == "query.limit", (path, limit)
        assert (await shop.api.get(path, params={"limit": 1})).status_code == 200


async def test_a_url_must_fit_its_column_after_normalization(shop: ShopCtx) -> None:
    """1000 characters as sent, 1001 once normalized (a trailing slash): refused, not truncated or a 500."""
    url = "https://" + "a" * 60 + "." + "b" * (1000 - 8 - 61)
    assert len(url) == 1000
    body = {"title": "t", "host_name": "h", "scheduled_at": "2030-01-01T10:00:00Z"}
    show = ok(await shop.api.post("/v1/shows", json=body), 201)
    response = await shop.api.post(f"/v1/shows/{show['id']}/end", json={"replay_url": url})
    assert _error(response)["details"]["problems"][0]["field"] == "replay_url"
    assert ok(await shop.api.get(f"/v1/shows/{show['id']}"))["status"] == "scheduled"


async def test_a_value_the_database_refuses_is_a_422_not_a_500(shop: ShopCtx, database_url: str) -> None:
    """The last line behind the models: a header no model checks carries a NUL into a query."""
    response = await shop.api.post(
        "/v1/webhooks/orders", content=b"{}", headers={**JSON, "X-Liveloop-Shop": f"{shop.slug}\x00x"}
    )
    if is_postgres(database_url):  # PostgreSQL refuses NUL in text (SQLSTATE 22021)
        assert _error(response)["code"] == "value_not_storable"
    else:  # SQLite compares it and finds no such shop
        assert _error(response, 404)["code"] == "shop_not_found"


def test_the_openapi_document_bounds_every_input() -> None:
    """Every string has a maxLength, every number a range, every list maxItems and every open object
    maxProperties, in every request body and parameter: a new field without a bound fails here."""
    schema = create_app(Settings(database_url="sqlite+aiosqlite://", secret_key="k" * 40)).openapi()
    components = schema["components"]["schemas"]
    problems: set[str] = set()

    def walk(node: dict[str, Any], where: str, depth: int = 0) -> None:
        while "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[-1]]
        if depth > 12:
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, where, depth + 1)
        kind = node.get("type")
        if kind == "string" and not {"maxLength", "enum", "const"} & node.keys() and node.get("format") != "date-time":
            problems.add(f"{where}: string without maxLength")
        bounded = {"maximum", "exclusiveMaximum"} & node.keys() and {"minimum", "exclusiveMinimum"} & node.keys()
        if kind in ("integer", "number") and not bounded:
            problems.add(f"{where}: {kind} without a range")
        if kind == "array":
            if "maxItems" not in node:
                problems.add(f"{where}: list without maxItems")
            walk(node.get("items", {}), f"{where}[]", depth + 1)
        if node.get("additionalProperties") not in (None, False):
            if "maxProperties" not in node:
                problems.add(f"{where}: open object without maxProperties")
            if isinstance(node["additionalProperties"], dict):
                walk(node["additionalProperties"], f"{where}{{}}", depth + 1)
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{where}.{name}", depth + 1)

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                walk(parameter["schema"], f"{name} {parameter['in']} {parameter['name']}")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                walk(body, f"{name} body")
            if any(p["name"] == "limit" for p in operation.get("parameters", [])):
                limit = next(p["schema"] for p in operation["parameters"] if p["name"] == "limit")
                assert limit.get("minimum") == 1, name
                assert limit.get("maximum") <= 200, name
    assert sorted(problems) == []
    # And the bound that keeps ids out of absurd lengths is stated on path ids.
    member = schema["paths"]["/v1/members/{member_id}"]["get"]["parameters"][0]["schema"]
    assert member["maxLength"] == 64
    assert orjson.dumps(schema)  # the document itself is serializable


def _app_schema() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings(database_url="sqlite+aiosqlite://", secret_key="k" * 40)).openapi()
    return schema


def test_every_request_body_derives_from_the_strict_base() -> None:
    """A body model that is not a RequestModel would take "1" for 1 and ignore unknown fields: none is."""
    from fastapi.routing import APIRoute, iter_route_contexts
    from pydantic import BaseModel

    from liveloop.kit.schemas import RequestModel

    def models(annotation: Any) -> Any:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield annotation
        for arg in get_args(annotation):
            yield from models(arg)

    app = create_app(Settings(database_url="sqlite+aiosqlite://", secret_key="k" * 40))
    bodies: dict[str, type] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for param in route.dependant.body_params:
                for model in models(param.field_info.annotation):
                    bodies[f"{sorted(route.methods)} {context.path_format} {model.__name__}"] = model
    assert len(bodies) > 30  # the walk found the bodies
    assert sorted(name for name, model in bodies.items() if not issubclass(model, RequestModel)) == []


async def test_a_body_that_is_not_utf8_json_is_422_and_changes_nothing(shop: ShopCtx) -> None:
    for body in (b'{"name": "Ana \xff"}', b"\xc3"):
        error = _error(await shop.api.post("/v1/members", content=body, headers=JSON))
        assert error["code"] == "invalid_request"
        assert "UTF-8" in error["message"]
    # A surrogate encoded as UTF-8 bytes decodes, and is refused as the lone surrogate it is.
    error = _error(await shop.api.post("/v1/members", content=b'{"name": "\xed\xa0\x80"}', headers=JSON))
    assert error["code"] == "invalid_request"
    assert "surrogate" in error["message"]
    # Public routes the same (no key at all).
    async with shop.client(None) as anonymous:
        response = await anonymous.post("/v1/public/draws/verify", content=b"\xff", headers=JSON)
    assert _error(response)["code"] == "invalid_request"
    assert ok(await shop.api.get("/v1/members"))["items"] == []


async def test_new_bodies_are_strict_and_a_refused_one_changes_nothing(shop: ShopCtx) -> None:
    before = ok(await shop.api.get("/v1/shop"))
    for path, body in (
        ("/v1/shop/shopify-secret", {"secret": "shpss_0123456789", "grace_seconds": "60"}),
        ("/v1/shop/shopify-secret", {"secret": "shpss_0123456789", "rotate": True}),
    ):
        assert _error(await shop.api.put(path, json=body))["code"] == "invalid_request", body
    for body in ({"name": "Renamed", "colour": "red"}, {"storefront_origins": "https://shop.example"}):
        assert _error(await shop.api.patch("/v1/shop", json=body))["code"] == "invalid_request", body
    batch = {"name": "Any", "kind": "percent", "percent_bp": 500, "currency_free": "true"}
    assert _error(await shop.api.post("/v1/coupon-batches", json=batch))["code"] == "invalid_request"
    assert ok(await shop.api.get("/v1/shop")) == before
    assert ok(await shop.api.get("/v1/coupon-batches"))["items"] == []


def _field(schema: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    node: dict[str, Any] = schema["components"]["schemas"][model]["properties"][name]
    for option in node.get("anyOf", []):  # optional fields: the non-null branch
        if option.get("type") != "null":
            node = option
    if node.get("type") == "array":
        node = node["items"]
    return node


def test_request_schemas_state_the_rules_the_server_enforces() -> None:
    """Enums and patterns in the document are the server's own rules, so a client (or a fuzzer) that follows
    them sends what the server takes; each is compared with the rule it documents."""
    import re
    import zoneinfo

    from liveloop.events.service import EVENT_TYPES
    from liveloop.kit.money import KNOWN_CURRENCIES
    from liveloop.kit.schemas import ID_PATTERN
    from liveloop.ledger.service import is_asset
    from liveloop.markets.presets import PRESETS
    from liveloop.members.normalize import normalize_email
    from liveloop.shops.auth import SCOPES
    from liveloop.shops.service import check_shopify_secret

    schema = _app_schema()
    currencies = sorted(KNOWN_CURRENCIES)
    for model, name in (
        ("OrderIn", "currency"),
        ("Check", "currency"),
        ("Product", "currency"),
        ("BatchCreate", "currency"),
    ):
        assert _field(schema, model, name)["enum"] == currencies, (model, name)
    assert _field(schema, "MarketUpdate", "currency")["pattern"] == "^[A-Z]{3}$"
    # URLs: http(s) only, as the server checks them.
    for model, name in (
        ("Product", "url"),
        ("ShowEnd", "replay_url"),
        ("Video", "hls_url"),
        ("ShopUpdate", "landing_url"),
    ):
        assert _field(schema, model, name)["pattern"].startswith("^[hH][tT][tT][pP][sS]?://"), (model, name)
    assert _field(schema, "WebhookEndpointCreate", "url")["pattern"] == "^[hH][tT][tT][pP][sS]?://"
    # Choices the services check one by one.
    assert _field(schema, "ApiKeyCreate", "scopes")["enum"] == sorted(SCOPES)
    assert _field(schema, "WebhookEndpointCreate", "event_types")["enum"] == ["*", *EVENT_TYPES]
    for model, name in (("MemberCreate", "market"), ("ShowCreate", "market"), ("CustomerIn", "market")):
        assert _field(schema, model, name)["enum"] == sorted(PRESETS), (model, name)
    assets = _field(schema, "Movement", "asset")["enum"]
    assert all(is_asset(a) for a in assets)
    assert len(assets) == 2 + len(currencies)
    assert not is_asset("credit:XXX")
    assert "credit:XXX" not in assets
    budgets = schema["components"]["schemas"]["CampaignCreate"]["properties"]["budgets"]["propertyNames"]
    assert budgets["enum"] == ["points", *currencies]
    # Patterns: nothing the server accepts is outside them.
    timezone = re.compile(_field(schema, "MemberCreate", "timezone")["pattern"])
    assert [z for z in zoneinfo.available_timezones() if not timezone.match(z)] == []
    email = re.compile(_field(schema, "MemberCreate", "email")["pattern"])
    for address in ("ana@example.com", "a.b+c@mail.example.co.th", "x@y.z"):
        assert email.match(address)
        assert normalize_email(address)
    assert not email.match("ana at example.com")
    assert not email.match("ana@localhost")
    secret = re.compile(_field(schema, "ShopifySecretIn", "secret")["pattern"])
    for value in ("shpss_0123456789abcdef", "~!" * 5):
        assert secret.match(value)
        assert check_shopify_secret(value)
    assert not secret.match("has a space in it")
    assert re.fullmatch(ID_PATTERN, new_id("mem"))
    member = schema["paths"]["/v1/members/{member_id}"]["get"]["parameters"][0]["schema"]
    assert member["pattern"] == ID_PATTERN
    pattern = re.compile(_field(schema, "BatchCreate", "pattern")["pattern"])
    assert pattern.match("BF-####")
    assert pattern.match("####")
    assert not pattern.match("BF-###")
