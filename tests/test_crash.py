"""A server killed mid-burst loses nothing and applies nothing twice once the shop re-delivers."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from liveloop.client import free_port, order_event, signed_order_headers, start_server
from liveloop.kit.db import transaction
from liveloop.ledger.verify import verify
from liveloop.models import InboundEvent, Order, Referral, Reward
from tests.conftest import ShopCtx
from tests.factories import create_campaign, create_member, invite

ORDERS = 120


def _start(database_url: str, port: int) -> subprocess.Popen[bytes]:
    return start_server(
        {
            "LIVELOOP_DATABASE_URL": database_url,
            "LIVELOOP_RUN_WORKER": "false",
            "LIVELOOP_SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
            "LIVELOOP_LOG_LEVEL": "warning",
        },
        port,
    )


async def _deliver(base: str, slug: str, secret: str, bodies: list[bytes]) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def one(body: bytes) -> int:
            try:
                r = await client.post(
                    "/v1/webhooks/orders", content=body, headers=signed_order_headers(slug, secret, body)
                )
                return r.status_code
            except httpx.HTTPError:
                return 0  # the server died under us: the shop will retry

        return list(await asyncio.gather(*(one(b) for b in bodies)))


async def _applied(shop: ShopCtx, database_url: str) -> int:
    """Events applied so far, read without taking any lock the busy server needs."""
    if database_url.startswith("sqlite"):
        # A plain WAL reader: our engine begins every transaction IMMEDIATE (a write lock), which the
        # server holds almost continuously during the burst and which would starve this poll.
        path = make_url(database_url).database
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT COUNT(*) FROM inbound_events").fetchone()[0])
    async with transaction(shop.app.state.sessions) as s:
        return int((await s.execute(select(func.count()).select_from(InboundEvent))).scalar_one())


async def test_kill_during_a_burst_then_redeliver(shop: ShopCtx, database_url: str) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    invitees = [await invite(shop.api, shop.slug, inviter) for _ in range(ORDERS)]
    bodies = [
        order_event(f"evt-crash-{i}", "paid", f"crash-{i}", m["external_id"], 3000) for i, m in enumerate(invitees)
    ]
    port = free_port()
    server = _start(database_url, port)
    base = f"http://127.0.0.1:{port}"
    burst = asyncio.create_task(_deliver(base, shop.slug, shop.secret, bodies * 2))
    deadline = time.time() + 30
    # Kill once the burst is under way (polling another process through the database).
    while await _applied(shop, database_url) < 5 and time.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    first = await burst
    applied = await _applied(shop, database_url)
    assert 5 <= applied < ORDERS, applied  # the kill fell in the middle of the burst
    assert first.count(0) > 0  # and some deliveries died with the process
    server = _start(database_url, port)
    try:
        again = await _deliver(base, shop.slug, shop.secret, bodies)  # the shop re-delivers everything
    finally:
        server.terminate()
        server.wait(10)
    assert again == [200] * ORDERS
    async with transaction(shop.app.state.sessions) as s:
        orders = (await s.execute(select(func.count()).select_from(Order))).scalar_one()
        events = (await s.execute(select(func.count()).select_from(InboundEvent))).scalar_one()
        converted = (
            await s.execute(select(func.count()).select_from(Referral).where(Referral.status == "converted"))
        ).scalar_one()
        rewards: Any = dict((await s.execute(select(Reward.role, func.count()).group_by(Reward.role))).all())
        report = await verify(s)
    assert (orders, events, converted) == (ORDERS, ORDERS, ORDERS)
    assert rewards["inviter"] == ORDERS
    assert rewards["invitee"] == ORDERS
    assert report.ok, report.problems
