"""Secrets are shown once: never kept in idempotency records, never replayed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from liveloop.kit.time import utc_now
from liveloop.models import IdempotencyRecord
from tests.conftest import ShopCtx
from tests.factories import create_member, ok


async def stored(shop: ShopCtx, key: str) -> IdempotencyRecord:
    async with shop.app.state.sessions() as session:
        return (await session.execute(select(IdempotencyRecord).where(IdempotencyRecord.key == key))).scalar_one()


async def show_id(shop: ShopCtx) -> str:
    body = {"title": "Drop", "host_name": "Mai", "scheduled_at": (utc_now() + timedelta(hours=1)).isoformat()}
    return str(ok(await shop.api.post("/v1/shows", json=body), 201)["id"])


@pytest.mark.usefixtures("private_targets")
async def test_replaying_a_request_that_showed_a_secret_answers_409_without_it(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    show = await show_id(shop)
    cases: list[tuple[str, dict[str, Any] | None, str]] = [
        ("/v1/api-keys", {"name": "pos", "scopes": ["members:read"]}, "key"),
        ("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/hook"}, "secret"),
        (f"/v1/shows/{show}/viewer-tokens", {"member_id": member["id"]}, "token"),
        (f"/v1/shows/{show}/host-token", None, "token"),
    ]
    for n, (path, body, field) in enumerate(cases):
        key = f"once-{n}"
        first = ok(await shop.api.post(path, json=body, headers={"Idempotency-Key": key}), 201)
        secret = first[field]
        assert secret

        replay = await shop.api.post(path, json=body, headers={"Idempotency-Key": key})
        assert replay.status_code == 409, path
        error = replay.json()["error"]
        assert error["code"] == "secret_shown_once"
        assert secret not in replay.text
        assert field not in error["details"]["resource"]
        if "id" in first:
            assert error["details"]["resource"]["id"] == first["id"]  # the client learns what was created

        record = await stored(shop, key)
        assert record.status_code == 201
        assert secret not in orjson.dumps(record.response_body).decode(), path
        assert field not in record.response_body["json"]


async def test_the_secret_in_a_replayed_create_cannot_be_had_again_but_the_key_works(shop: ShopCtx) -> None:
    first = ok(
        await shop.api.post(
            "/v1/api-keys", json={"name": "x", "scopes": ["members:read"]}, headers={"Idempotency-Key": "k"}
        ),
        201,
    )
    async with shop.client(first["key"]) as api:
        assert (await api.get("/v1/members")).status_code == 200
    assert len(ok(await shop.api.get("/v1/api-keys"))["items"]) == 2  # the replay created nothing more
    await shop.api.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["members:read"]}, headers={"Idempotency-Key": "k"}
    )
    assert len(ok(await shop.api.get("/v1/api-keys"))["items"]) == 2


async def test_replays_without_secrets_still_return_the_first_answer(shop: ShopCtx) -> None:
    body = {"external_id": "plain", "name": "Ann"}
    first = ok(await shop.api.post("/v1/members", json=body, headers={"Idempotency-Key": "plain"}), 201)
    again = await shop.api.post("/v1/members", json=body, headers={"Idempotency-Key": "plain"})
    assert again.status_code == 201
    assert again.json() == first
