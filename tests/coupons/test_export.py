"""The CSV export of a coupon batch: every code with its status, bound member, uses and creation time, read in
chunks that each hold the database only briefly."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime
from typing import Any

from liveloop.coupons.service import export_codes_csv
from liveloop.kit.db import transaction
from liveloop.models import Shop
from tests.conftest import ShopCtx, make_shop
from tests.factories import create_member, ok


async def test_the_export_lists_every_code_with_its_state(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    batch = ok(
        await shop.api.post(
            "/v1/coupon-batches",
            json={
                "name": "BF",
                "kind": "fixed",
                "amount_minor": 500,
                "currency": "USD",
                "count": 1200,
                "member_ids": [member["id"]],
            },
        ),
        201,
    )
    bound = ok(await shop.api.get("/v1/coupons", params={"member_id": member["id"]}))["items"][0]["code"]
    ok(
        await shop.api.post(
            f"/v1/coupons/{bound}/redeem",
            json={"member_id": member["id"], "order_total_minor": 2000, "currency": "USD", "order_ref": "o-1"},
        ),
        201,
    )
    response = await shop.api.get(f"/v1/coupon-batches/{batch['id']}/codes.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="{batch["id"]}-codes.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["code", "status", "member_id", "uses", "max_uses", "created_at"]
    assert len(rows) == 1201 and len({r["code"] for r in rows}) == 1201  # past one chunk of 1000
    by_code = {r["code"]: r for r in rows}
    assert by_code[bound] == {**by_code[bound], "status": "used_up", "member_id": member["id"], "uses": "1"}
    unbound = [r for r in rows if r["code"] != bound]
    assert {(r["status"], r["member_id"], r["uses"]) for r in unbound} == {("available", "", "0")}
    assert datetime.fromisoformat(rows[0]["created_at"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


async def test_another_shops_batch_cannot_be_exported(shop: ShopCtx) -> None:
    batch = ok(
        await shop.api.post("/v1/coupon-batches", json={"name": "x", "kind": "gift", "gift_sku": "S", "count": 2}), 201
    )
    other = await make_shop(shop.app, slug="other")
    try:
        response = await other.api.get(f"/v1/coupon-batches/{batch['id']}/codes.csv")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "coupon_batch_not_found"
    finally:
        await other.api.aclose()


async def _rename(sessions: Any, shop_id: str, name: str) -> None:
    async with transaction(sessions) as session:
        row = await session.get(Shop, shop_id)
        assert row is not None
        row.name = name


async def test_the_export_lets_other_writes_through_between_its_chunks(shop: ShopCtx) -> None:
    """On SQLite the app has one connection: an export holding it would stall every other request."""
    batch = ok(
        await shop.api.post("/v1/coupon-batches", json={"name": "x", "kind": "gift", "gift_sku": "S", "count": 300}),
        201,
    )
    sessions = shop.app.state.sessions
    chunks = export_codes_csv(sessions, batch["id"], chunk=100)
    header = await anext(chunks)
    assert header.startswith(b"code,status")
    lines = 0
    async for chunk in chunks:
        lines += chunk.count(b"\r\n")

        # Between two chunks the export holds nothing: a write goes through at once.
        await asyncio.wait_for(_rename(sessions, shop.shop.id, f"Renamed {lines}"), timeout=5)
    assert lines == 300
    assert ok(await shop.api.get("/v1/shop"))["name"] == "Renamed 300"
