"""What every request meets first: the body limit, JSON content types, request ids, headers and the access log."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from liveloop.client import running_app, signed_order_headers
from liveloop.config import Settings
from liveloop.kit.db import transaction
from liveloop.kit.logs import JsonFormatter
from liveloop.kit.signing import sha256_hex
from liveloop.models import IdempotencyRecord, Member
from tests.conftest import ShopCtx, make_shop
from tests.factories import ok
from tests.live.conftest import LiveServer, live_server

__all__ = ["live_server"]

MB = 1024 * 1024


async def members(shop: ShopCtx) -> list[dict[str, Any]]:
    return list(ok(await shop.api.get("/v1/members"))["items"])


def member_body(size: int) -> bytes:
    """A member sign-up whose body is ``size`` bytes long."""
    head, tail = b'{"external_id": "big", "name": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_body_over_the_limit_is_413_before_parsing_and_changes_nothing(shop: ShopCtx) -> None:
    r = await shop.api.post("/v1/members", content=member_body(MB + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"
    assert r.json()["error"]["details"] == {"max_bytes": MB}
    assert "LIVELOOP_MAX_BODY_BYTES" in r.json()["error"]["message"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-request-id"]

    # Streamed without a Content-Length: refused once the chunks add up to more than the limit.
    streamed = await shop.api.post(
        "/v1/members", content=chunks(member_body(2 * MB)), headers={"content-type": "application/json"}
    )
    assert (streamed.status_code, streamed.json()["error"]["code"]) == (413, "body_too_large")

    # Public routes and routes that read raw bytes are behind the same limit.
    big = b"{" + b" " * (MB + 10) + b"}"
    for path, headers in (
        ("/v1/webhooks/orders", signed_order_headers(shop.slug, shop.secret, big)),
        ("/v1/public/shows/shw_x/join", {"content-type": "application/json"}),
        ("/r/acme/CODE", {}),
    ):
        r = await shop.api.post(path, content=big, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (413, "body_too_large"), path
    assert await members(shop) == []

    fits = await shop.api.post(
        "/v1/members", content=member_body(MB - 1000), headers={"content-type": "application/json"}
    )
    assert fits.status_code == 422  # under the limit it is parsed (and the name is too long)


async def test_the_limit_holds_on_a_real_socket_streamed_or_not(shop: ShopCtx, live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base, headers={"Authorization": f"Bearer {shop.key}"}) as api:
        headers = {"content-type": "application/json"}
        declared = await api.post("/v1/members", content=member_body(MB + 100), headers=headers)
        streamed = await api.post("/v1/members", content=chunks(member_body(MB + 100)), headers=headers)
    for r in (declared, streamed):
        assert (r.status_code, r.json()["error"]["code"]) == (413, "body_too_large")
    assert await members(shop) == []


@pytest.fixture
async def small_limit(database_url: str) -> AsyncIterator[ShopCtx]:
    settings = Settings(
        database_url=database_url,
        run_worker=False,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        max_body_bytes=4096,
    )
    async with running_app(settings) as application:
        ctx = await make_shop(application, slug=f"small-{uuid.uuid4().hex[:8]}")
        try:
            yield ctx
        finally:
            await ctx.api.aclose()


async def test_the_limit_is_a_setting(small_limit: ShopCtx) -> None:
    headers = {"content-type": "application/json"}
    refused = await small_limit.api.post("/v1/members", content=member_body(4097), headers=headers)
    assert refused.status_code == 413
    assert refused.json()["error"]["details"] == {"max_bytes": 4096}
    accepted = await small_limit.api.post("/v1/members", content=member_body(150), headers=headers)
    assert accepted.status_code == 201


async def test_a_json_endpoint_refuses_other_content_types_with_415(shop: ShopCtx) -> None:
    body = orjson.dumps({"external_id": "ann", "email": "ann@example.com"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        r = await shop.api.post("/v1/members", content=body, headers=headers)
        assert r.status_code == 415, content_type
        assert r.json()["error"]["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in r.json()["error"]["message"]
    assert await members(shop) == []
    r = await shop.api.post("/v1/members", content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 201
    # A body-less request to an endpoint whose body is optional needs no Content-Type.
    show = ok(
        await shop.api.post(
            "/v1/shows", json={"title": "T", "host_name": "Mai", "scheduled_at": "2030-01-01T10:00:00Z"}
        ),
        201,
    )
    assert (await shop.api.post(f"/v1/shows/{show['id']}/host-token")).status_code == 201


async def test_signed_webhooks_read_raw_bytes_whatever_their_content_type(shop: ShopCtx) -> None:
    from liveloop.client import order_event

    body = order_event("evt-plain", "paid", "o-1", "c-1", 1500)
    headers = {**signed_order_headers(shop.slug, shop.secret, body), "Content-Type": "text/plain"}
    r = await shop.api.post("/v1/webhooks/orders", content=body, headers=headers)
    assert r.status_code == 200, r.text


async def test_idempotency_compares_bodies_as_json(shop: ShopCtx) -> None:
    first = await shop.api.post(
        "/v1/members",
        content=b'{"external_id": "x-1", "email": "x1@example.com"}',
        headers={"content-type": "application/json", "Idempotency-Key": "k-1"},
    )
    assert first.status_code == 201
    reordered = await shop.api.post(
        "/v1/members",
        content=b'{\n  "email":"x1@example.com" ,\n  "external_id": "x-1"\n}',
        headers={"content-type": "application/json", "Idempotency-Key": "k-1"},
    )
    assert reordered.status_code == 201
    assert reordered.json()["id"] == first.json()["id"]
    assert reordered.headers["idempotent-replayed"] == "true"
    other = await shop.api.post(
        "/v1/members", json={"external_id": "x-2", "email": "x1@example.com"}, headers={"Idempotency-Key": "k-1"}
    )
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert len(await members(shop)) == 1


async def test_a_retry_of_a_request_recorded_before_bodies_were_canonical_still_replays(shop: ShopCtx) -> None:
    raw = b'{"external_id": "old-1", "email": "old@example.com"}'
    headers = {"content-type": "application/json", "Idempotency-Key": "k-old"}
    first = ok(await shop.api.post("/v1/members", content=raw, headers=headers), 201)
    async with transaction(shop.app.state.sessions) as session:  # as older versions stored it: the raw bytes' hash
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "k-old")
            .values(request_hash=sha256_hex(b"POST /v1/members\n" + raw))
        )
    again = await shop.api.post("/v1/members", content=raw, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == first["id"]


async def test_every_response_has_a_request_id_and_nosniff(shop: ShopCtx) -> None:
    r = await shop.api.get("/v1/members")
    assert len(r.headers["x-request-id"]) == 16
    assert r.headers["x-content-type-options"] == "nosniff"
    assert (await shop.api.get("/v1/members")).headers["x-request-id"] != r.headers["x-request-id"]
    mine = await shop.api.get("/healthz", headers={"X-Request-Id": "lb-7f3a.91"})
    assert mine.headers["x-request-id"] == "lb-7f3a.91"  # a load balancer's id is kept
    odd = await shop.api.get("/healthz", headers={"X-Request-Id": "x" * 200})
    assert odd.headers["x-request-id"] != "x" * 200
    page = await shop.api.get("/embed.js")
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_unknown_urls_and_methods_answer_the_usual_error_body(shop: ShopCtx) -> None:
    r = await shop.api.get("/v1/no-such-thing")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    r = await shop.api.put("/v1/members", json={})
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD, POST"  # every method of the path, not the first route's only
    r = await shop.api.options("/v1/shop")
    assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD, PATCH")


async def test_the_access_log_has_one_line_per_request_and_no_secrets(
    shop: ShopCtx, caplog: pytest.LogCaptureFixture
) -> None:
    member = ok(await shop.api.post("/v1/members", json={"external_id": "log-1"}), 201)
    caplog.set_level(logging.INFO, logger="liveloop.access")
    caplog.clear()
    token = "tok_" + uuid.uuid4().hex
    r = await shop.api.get(f"/v1/members/{member['id']}", params={"token": token, "key": shop.key})
    assert r.status_code == 200
    await shop.api.get("/r/acme/NOSUCHCODE", params={"token": token})
    lines = [rec for rec in caplog.records if rec.name == "liveloop.access"]
    assert len(lines) == 2
    read, click = lines
    assert (read.method, read.route, read.status, read.shop) == ("GET", "/v1/members/{member_id}", 200, shop.shop.id)
    assert read.request_id == r.headers["x-request-id"]
    assert read.duration_ms >= 0
    assert (click.route, click.status, click.shop) == ("/r/{shop}/{code}", 404, "-")
    text = caplog.text + "".join(JsonFormatter().format(rec) for rec in lines)
    for secret in (token, shop.key, member["id"], "NOSUCHCODE"):
        assert secret not in text

    as_json = orjson.loads(JsonFormatter().format(read))
    assert {k: as_json[k] for k in ("logger", "method", "route", "status", "shop", "request_id")} == {
        "logger": "liveloop.access",
        "method": "GET",
        "route": "/v1/members/{member_id}",
        "status": 200,
        "shop": shop.shop.id,
        "request_id": r.headers["x-request-id"],
    }


async def test_a_refused_request_is_logged_with_its_shop_after_the_rollback(
    shop: ShopCtx, caplog: pytest.LogCaptureFixture
) -> None:
    """A 4xx rolls the request's transaction back, which expires the operator's shop row; the access log,
    written after that, still names the shop (it read an expired row of a closed session, and failed)."""
    caplog.set_level(logging.INFO, logger="liveloop.access")
    caplog.clear()
    r = await shop.api.post("/v1/members", json={"external_id": "x1", "market": "nope"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_market")
    r = await shop.api.get("/v1/members/mem_missing")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "member_not_found")
    lines = [rec for rec in caplog.records if rec.name == "liveloop.access"]
    assert [(rec.status, rec.shop) for rec in lines] == [(422, shop.shop.id), (404, shop.shop.id)]


async def test_error_logs_never_print_sql_parameters(shop: ShopCtx, caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy.exc import IntegrityError

    ok(await shop.api.post("/v1/members", json={"external_id": "dup", "email": "ann.private@example.com"}), 201)
    log = logging.getLogger("liveloop.test")
    caplog.set_level(logging.ERROR)
    async with shop.app.state.sessions() as session:
        existing = (await session.execute(select(Member))).scalar_one()
        session.add(
            Member(
                id="mem_dup",
                shop_id=existing.shop_id,
                external_id="dup",
                email="ann.private@example.com",
                name="Ann Private",
                market=existing.market,
                locale=existing.locale,
                referral_code="DUPCODE99",
            )
        )
        with pytest.raises(IntegrityError) as caught:
            await session.flush()
        log.error("member insert failed", exc_info=caught.value)
        await session.rollback()
    assert "member insert failed" in caplog.text
    for value in ("ann.private@example.com", "Ann Private", "DUPCODE99", "mem_dup"):
        assert value not in caplog.text
    assert "hidden" in caplog.text  # SQLAlchemy says it left them out


async def test_a_crash_answers_the_error_body_with_its_request_id_and_is_logged_once(
    shop: ShopCtx, caplog: pytest.LogCaptureFixture
) -> None:
    app = shop.app

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/test-crash", boom)  # a route with a bug, as one could ship by mistake
    caplog.set_level(logging.INFO, logger="liveloop.access")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        r = await api.get("/v1/test-crash")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert r.json()["error"]["details"] == {"request_id": r.headers["x-request-id"]}
    assert r.headers["x-content-type-options"] == "nosniff"
    access = [rec for rec in caplog.records if rec.name == "liveloop.access"]
    assert [(a.route, a.status, a.request_id) for a in access] == [("/v1/test-crash", 500, r.headers["x-request-id"])]
