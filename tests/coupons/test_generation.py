"""Large coupon batches are generated off the request path, in committed chunks that a restart resumes."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from liveloop.coupons import service
from liveloop.coupons.tasks import BatchGenerator, coupon_batches
from liveloop.database import session_factory
from liveloop.events.worker import Worker
from liveloop.kit.db import transaction
from liveloop.models import Coupon, CouponBatch
from tests.conftest import ShopCtx
from tests.factories import create_member, ok


async def codes_of(shop: ShopCtx, batch_id: str) -> tuple[int, int]:
    """(codes, distinct codes) of a batch, as stored."""
    async with transaction(shop.app.state.sessions) as s:
        row = (
            await s.execute(
                select(func.count(), func.count(func.distinct(Coupon.code))).where(Coupon.batch_id == batch_id)
            )
        ).one()
    return int(row[0]), int(row[1])


async def test_a_100k_batch_fills_in_the_background_while_the_api_answers_promptly(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    r = await shop.api.post(
        "/v1/coupon-batches",
        json={"name": "Mega sale", "kind": "fixed", "amount_minor": 500, "currency": "USD", "count": 100_000},
    )
    assert r.status_code == 202, r.text  # answered after one chunk, not after 100,000 codes
    batch = r.json()
    assert (batch["status"], batch["codes_total"]) == ("generating", 100_000)
    assert batch["codes_generated"] < 100_000

    async def timed(path: str) -> float:
        t0 = time.perf_counter()
        response = await shop.api.get(path)
        assert response.status_code == 200, response.text
        return time.perf_counter() - t0

    slowest = 0.0
    progress: list[int] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        # Several readers at once, racing the generator for the database (SQLite: its only connection).
        took = await asyncio.gather(*(timed(p) for p in ("/healthz", f"/v1/members/{member['id']}") * 3))
        slowest = max(slowest, *took)
        state = ok(await shop.api.get(f"/v1/coupon-batches/{batch['id']}"))
        progress.append(state["codes_generated"])
        if state["status"] == "ready":
            break
        await asyncio.sleep(0.1)
    assert state["status"] == "ready", f"not done in time: {state}"
    # SQLite has one connection: a generator holding it would freeze every reader, which is what this guards.
    # PostgreSQL readers have connections of their own; what they may wait on there is the shared test server's
    # disk (a commit's WAL flush behind 100,000 inserts), so its bound only catches a real freeze.
    bound = 1.0 if shop.app.state.engine.dialect.name == "sqlite" else 5.0
    assert slowest < bound, f"a read took {slowest:.3f} s while the batch was generating"
    assert progress == sorted(progress)
    assert len(set(progress)) > 3
    assert state["codes_generated"] == state["issued"] == 100_000
    assert await codes_of(shop, batch["id"]) == (100_000, 100_000)


async def test_one_chunk_is_made_inline_and_more_answers_202(shop: ShopCtx) -> None:
    body = {"name": "Chunk", "kind": "fixed", "amount_minor": 100, "currency": "USD"}
    small = ok(await shop.api.post("/v1/coupon-batches", json={**body, "count": service.CHUNK}), 201)
    assert (small["status"], small["codes_generated"], small["issued"]) == ("ready", service.CHUNK, service.CHUNK)
    assert len(small["coupons"]) == service.CHUNK
    large = await shop.api.post("/v1/coupon-batches", json={**body, "count": service.CHUNK + 1})
    assert large.status_code == 202
    assert large.json()["status"] == "generating"
    await shop.app.state.coupon_batches.wait()
    done = ok(await shop.api.get(f"/v1/coupon-batches/{large.json()['id']}"))
    assert (done["status"], done["issued"]) == ("ready", service.CHUNK + 1)


async def test_a_batch_is_used_only_once_ready_and_a_killed_generation_resumes_without_gaps(shop: ShopCtx) -> None:
    # Sessions without the process's generator: nothing starts filling a batch behind the test's back.
    plain = session_factory(shop.app.state.engine)
    async with transaction(plain) as s:
        made = await service.create_batch(
            s, shop.shop.id, name="Big", kind="fixed", amount_minor=500, currency="USD", count=2_500
        )
    async with transaction(plain) as s:
        assert await service.generate_next_chunk(s) == service.CHUNK
    async with transaction(plain) as s:
        stale = await s.get(CouponBatch, made.id)  # a process reads where the batch stands…
    assert stale is not None
    assert stale.codes_generated == service.CHUNK
    async with plain() as s:  # …another dies in the middle of the next chunk: nothing of it commits
        assert await service.generate_next_chunk(s) == service.CHUNK
        await s.rollback()
    assert await codes_of(shop, made.id) == (service.CHUNK, service.CHUNK)

    member = await create_member(shop.api)
    code = ok(await shop.api.get("/v1/coupons", params={"batch_id": made.id, "limit": 1}))["items"][0]["code"]
    check = {"member_id": member["id"], "order_total_minor": 5000, "currency": "USD"}
    r = await shop.api.post(f"/v1/coupons/{code}/validate", json=check)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "coupon_batch_generating")
    r = await shop.api.post(f"/v1/coupons/{code}/redeem", json={**check, "order_ref": "early"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "coupon_batch_generating")

    async with transaction(plain) as s:
        assert await service.generate_next_chunk(s) == service.CHUNK
    async with transaction(plain) as s:  # the slow process wakes up and tries the chunk it read: it is taken
        s.add(stale)
        assert await service.generate_chunk(s, stale) == 0
    assert await codes_of(shop, made.id) == (2 * service.CHUNK, 2 * service.CHUNK)

    # The rest is finished by whoever comes first: a restarted API process and the worker, side by side.
    generator = BatchGenerator(plain)
    worker = Worker(plain, jobs=[("coupon_batches", coupon_batches)])

    async def work() -> None:
        while await worker.run_once():
            pass

    generator.kick()
    await asyncio.gather(generator.wait(), work())
    await worker.close()
    state = ok(await shop.api.get(f"/v1/coupon-batches/{made.id}"))
    assert (state["status"], state["codes_generated"], state["issued"]) == ("ready", 2_500, 2_500)
    assert await codes_of(shop, made.id) == (2_500, 2_500)
    ok(await shop.api.post(f"/v1/coupons/{code}/validate", json=check))


async def test_codes_that_collide_are_drawn_again_until_the_batch_is_whole(shop: ShopCtx) -> None:
    # 8,000 codes from 30^4 possible ones: some draws collide (about 40 on average), and are drawn again.
    batch = await shop.api.post(
        "/v1/coupon-batches",
        json={"name": "Tight", "kind": "gift", "gift_sku": "TOTE", "count": 8_000, "pattern": "####"},
    )
    assert batch.status_code == 202
    await shop.app.state.coupon_batches.wait()
    assert ok(await shop.api.get(f"/v1/coupon-batches/{batch.json()['id']}"))["status"] == "ready"
    assert await codes_of(shop, batch.json()["id"]) == (8_000, 8_000)
