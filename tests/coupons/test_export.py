"""The CSV export of a coupon batch: every code with its status, bound member, uses and creation time, read in
chunks that each hold the database only briefly."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime
from typing import Any

from liveloop.coupons import service
from liveloop.coupons.service import export_codes_csv
from liveloop.database import session_factory
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
        202,  # over one chunk: the rest is generated in the background
    )
    await shop.app.state.coupon_batches.wait()
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
    assert len(rows) == 1201
    assert len({r["code"] for r in rows}) == 1201
    by_code = {r["code"]: r for r in rows}
    assert by_code[bound] == {**by_code[bound], "status": "used_up", "member_id": member["id"], "uses": "1"}
    unbound = [r for r in rows if r["code"] != bound]
    assert {(r["status"], r["member_id"], r["uses"]) for r in unbound} == {("available", "", "0")}
    assert datetime.fromisoformat(rows[0]["created_at"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


async def _all_codes(shop: ShopCtx, batch_id: str) -> list[str]:
    """Every code of the batch, page by page through its codes list."""
    codes: list[str] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = ok(await shop.api.get(f"/v1/coupon-batches/{batch_id}/codes", params=params))
        codes += [c["code"] for c in page["items"]]
        if page["next_cursor"] is None:
            return codes
        params["cursor"] = page["next_cursor"]


async def test_a_generating_batch_lists_and_exports_the_codes_made_so_far(shop: ShopCtx) -> None:
    # Sessions without the process's generator, so the test decides when each chunk is made.
    plain = session_factory(shop.app.state.engine)
    async with transaction(plain) as s:
        batch = await service.create_batch(
            s, shop.shop.id, name="Big", kind="fixed", amount_minor=500, currency="USD", count=2_500
        )
    async with transaction(plain) as s:
        assert await service.generate_next_chunk(s) == service.CHUNK

    state = ok(await shop.api.get(f"/v1/coupon-batches/{batch.id}"))
    assert (state["status"], state["codes_generated"]) == ("generating", service.CHUNK)
    first = await _all_codes(shop, batch.id)
    assert len(first) == len(set(first)) == service.CHUNK
    exported = list(csv.DictReader(io.StringIO((await shop.api.get(f"/v1/coupon-batches/{batch.id}/codes.csv")).text)))
    assert [r["code"] for r in exported] == first

    while True:
        async with transaction(plain) as s:
            if not await service.generate_next_chunk(s):
                break
    assert ok(await shop.api.get(f"/v1/coupon-batches/{batch.id}"))["status"] == "ready"
    every = await _all_codes(shop, batch.id)
    assert len(every) == len(set(every)) == 2_500
    assert every[: service.CHUNK] == first  # the codes made first keep their place: later chunks come after them


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
