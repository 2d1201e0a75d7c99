"""Public endpoints are rate limited per client address and per device, in memory or in Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import func, select

from liveloop.client import running_app
from liveloop.config import Settings
from liveloop.kit.db import transaction
from liveloop.kit.ratelimit import MemoryBuckets, Rate, RateLimiter, RedisBuckets
from liveloop.members import devices
from liveloop.models import InviteClick
from tests.conftest import ShopCtx, empty_database, make_shop
from tests.factories import create_member, new_device, ok
from tests.live.conftest import live_show, serve


@asynccontextmanager
async def limited_shop(database_url: str, **limits: Any) -> AsyncIterator[ShopCtx]:
    """A shop on an app with the given rate limits (devices unlimited unless given)."""
    settings = Settings(
        database_url=database_url,
        run_worker=False,
        public_base_url="http://live.test",
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        **{"rate_limit_device_per_minute": 0, **limits},
    )
    await empty_database(database_url)
    async with running_app(settings) as app:
        ctx = await make_shop(app)
        try:
            yield ctx
        finally:
            await ctx.api.aclose()


def from_address(app: Any, address: str, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://testserver", **kw
    )


async def clicks_stored(shop: ShopCtx) -> int:
    async with transaction(shop.app.state.sessions) as s:
        return int((await s.execute(select(func.count()).select_from(InviteClick))).scalar_one())


async def test_a_click_flood_gets_429_with_retry_after_while_another_address_gets_through(database_url: str) -> None:
    async with limited_shop(database_url, rate_limit_ip_burst=5, rate_limit_ip_per_minute=60) as shop:
        inviter = await create_member(shop.api)
        link = f"/r/{shop.slug}/{inviter['referral_code']}"
        async for server in serve(shop.app, "websockets-sansio"):
            # Real sockets: the flood comes from 127.0.0.1, the bystander from 127.0.0.2.
            flood = httpx.AsyncClient(base_url=server.base)
            bystander = httpx.AsyncClient(
                base_url=server.base, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")
            )
            async with flood, bystander:
                answers = await asyncio.gather(*(flood.get(link) for _ in range(12)))
                assert sorted(r.status_code for r in answers) == [302] * 5 + [429] * 7
                refused = next(r for r in answers if r.status_code == 429)
                assert refused.headers["retry-after"] == "1"
                assert refused.json()["error"]["code"] == "rate_limited"
                assert refused.json()["error"]["details"]["retry_after"] == 1
                assert (await bystander.get(link)).status_code == 302
                # The operator API is not a public endpoint: the same address still uses it.
                assert (await flood.get("/v1/shop", headers={"Authorization": f"Bearer {shop.key}"})).status_code == 200
                assert await clicks_stored(shop) == 6  # refused clicks are not recorded
                await asyncio.sleep(1.1)  # what Retry-After said
                assert (await flood.get(link)).status_code == 302


async def test_a_device_has_buckets_of_its_own_across_addresses(database_url: str) -> None:
    async with limited_shop(database_url, rate_limit_device_burst=3, rate_limit_device_per_minute=60) as shop:
        inviter = await create_member(shop.api)
        link = f"/r/{shop.slug}/{inviter['referral_code']}"
        statuses = []
        hopper = new_device(shop.app)
        for i in range(5):  # one browser hopping between networks
            async with from_address(shop.app, f"198.51.100.{i + 1}", cookies={"ll_did": hopper}) as api:
                statuses.append((await api.get(link)).status_code)
        assert statuses == [302, 302, 302, 429, 429]
        async with from_address(shop.app, "198.51.100.1", cookies={"ll_did": new_device(shop.app)}) as api:
            assert (await api.get(link)).status_code == 302


async def test_rotating_forged_device_cookies_fall_back_to_the_address_limit(database_url: str) -> None:
    """An attacker who makes up a new ``ll_did`` per request gets no fresh device buckets: a forged value is
    no device, so every such request counts against the address alone; only a signed device has buckets."""
    limits = {"rate_limit_device_burst": 3, "rate_limit_device_per_minute": 60}
    async with limited_shop(database_url, rate_limit_ip_burst=6, rate_limit_ip_per_minute=60, **limits) as shop:
        inviter = await create_member(shop.api)
        link = f"/r/{shop.slug}/{inviter['referral_code']}"
        real = new_device(shop.app)
        bare = real.split(".")[0]
        forged = [
            secrets.token_urlsafe(16),  # a made-up value
            bare,  # a real device's bare id
            f"{bare}.{'A' * 22}",  # a forged signature
            real[:-3],  # a truncated signed value
            devices.mint("another-secret-key-that-is-long-enough-too"),  # signed with another key
            secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(16),
            secrets.token_urlsafe(16),
            secrets.token_urlsafe(16),
        ]
        statuses = []
        for value in forged:
            async with from_address(shop.app, "203.0.113.9", cookies={"ll_did": value}) as api:
                statuses.append((await api.get(link)).status_code)
        assert statuses == [302] * 6 + [429] * 2  # the address limit stops them
        # ...and they made no device buckets: forged values cannot fill the store and push real devices' buckets
        # out of it (a forgotten bucket starts full again), nor spend a real device's bucket by naming its id.
        buckets = shop.app.state.rate_limiter.buckets
        assert isinstance(buckets, MemoryBuckets)
        assert len(buckets) == 1
        async with from_address(shop.app, "203.0.113.10", cookies={"ll_did": real}) as api:
            assert [(await api.get(link)).status_code for _ in range(4)] == [302, 302, 302, 429]


async def test_join_and_draw_verify_are_limited_each_on_their_own(database_url: str) -> None:
    async with limited_shop(database_url, rate_limit_ip_burst=5, rate_limit_ip_per_minute=60) as shop:
        show = await live_show(shop)
        async with from_address(shop.app, "192.0.2.50") as api:
            joins = [(await api.post(f"/v1/public/shows/{show['id']}/join")).status_code for _ in range(7)]
            assert joins == [200] * 5 + [429] * 2
            proof = {
                "draw_id": "d",
                "seed": "s",
                "seed_hash": "0" * 64,
                "ticket_ids": ["a"],
                "prize_count": 1,
                "winners": ["a"],
            }
            # Verifying is heavy: one takes the whole burst; joins used none of it.
            verify = [(await api.post("/v1/public/draws/verify", json=proof)).status_code for _ in range(2)]
            assert verify == [200, 429]
            draw = await api.get("/v1/public/draws/drw_missing")
            assert draw.status_code == 404  # other public routes have their own buckets too
            # Video providers' signed webhooks come in bursts from few addresses: not limited here.
            hooks = [(await api.post("/v1/public/webhooks/livekit", content=b"{}")).status_code for _ in range(8)]
            assert 429 not in hooks


async def test_ipv6_clients_count_per_64_network() -> None:
    limiter = RateLimiter(MemoryBuckets(), secret="k" * 32, per_ip=Rate(60, 2), per_device=Rate(0, 0))

    async def allowed(address: str) -> bool:
        return await limiter.check("g", address=address, device=None) == 0

    assert [await allowed(a) for a in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::77")] == [
        True,
        True,
        False,  # the same /64: one subscriber
    ]
    assert await allowed("2001:db8:1:3::1")  # the next /64
    assert [await allowed(a) for a in ("::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1")] == [True, True, False]


async def test_memory_buckets_stay_bounded() -> None:
    buckets = MemoryBuckets(max_keys=100)
    rate = Rate(60, 1)
    for i in range(10_000):
        await buckets.take(f"k{i}", rate, 1)
    assert len(buckets) == 100
    assert await buckets.take("k9999", rate, 1) > 0  # the recent ones are kept: still empty
    assert await buckets.take("k0", rate, 1) == 0  # the oldest was forgotten: full again


async def test_buckets_in_redis_are_shared_by_processes(redis_url: str, database_url: str) -> None:
    address = f"203.0.113.{secrets.randbelow(250) + 1}"
    device = secrets.token_hex(8)
    first, second = (
        RateLimiter(
            RedisBuckets(redis_url), secret=secrets.token_hex(16) * 2, per_ip=Rate(60, 4), per_device=Rate(0, 0)
        )
        for _ in range(2)
    )
    second.secret = first.secret  # two processes with one LIVELOOP_SECRET_KEY
    try:
        waits = [await limiter.check("g", address=address, device=device) for limiter in (first, second) * 3]
        assert waits[:4] == [0, 0, 0, 0]
        assert 0 < waits[4] <= 1.0
        assert waits[5] > 0
    finally:
        await first.close()
        await second.close()
    async with limited_shop(
        database_url, rate_limit_url=redis_url, rate_limit_ip_burst=2, rate_limit_ip_per_minute=60
    ) as shop:
        inviter = await create_member(shop.api)
        async with from_address(shop.app, f"2001:db8:{secrets.randbelow(65000):x}::1") as api:
            statuses = [(await api.get(f"/r/{shop.slug}/{inviter['referral_code']}")).status_code for _ in range(3)]
        assert statuses == [302, 302, 429]


async def test_the_openapi_document_lists_429_on_the_limited_routes(shop: ShopCtx) -> None:
    paths = ok(await shop.api.get("/openapi.json"))["paths"]
    assert "429" in paths["/v1/public/shows/{show_id}/join"]["post"]["responses"]
    assert "429" in paths["/v1/public/draws/verify"]["post"]["responses"]
    assert "429" not in paths["/v1/public/webhooks/livekit"]["post"]["responses"]
    assert "429" not in paths["/v1/members"]["post"]["responses"]
