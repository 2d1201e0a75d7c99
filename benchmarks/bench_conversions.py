"""Referral conversions on PostgreSQL with 16 concurrent clients, next to pgbench tpcb-like on the same server.

One conversion is one transaction: the order-paid event is deduplicated, the order recorded, the invitee's
referral converted, both sides rewarded through the ledger, milestones checked and the events written to
the outbox. Target: at least 500/s with p99 under 100 ms; the ratio to pgbench's tps is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, percentile, save
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from liveloop.kit.db import create_engine, session_factory, transaction
from liveloop.members.service import create_member
from liveloop.migrate import upgrade
from liveloop.orders.schemas import OrderEventIn
from liveloop.orders.service import apply_order_event, claim_event
from liveloop.referral.schemas import CampaignCreate
from liveloop.referral.service import attribute_signup, create_campaign
from liveloop.shops.service import create_shop

CLIENTS = 16


async def admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


async def seed(url: str, invitees: int, inviters: int) -> tuple[object, list[str]]:
    engine = create_engine(url, pool_size=CLIENTS)
    sessions = session_factory(engine)
    async with transaction(sessions) as s:
        shop = await create_shop(s, slug="bench", name="Bench", landing_url="https://x/")
        await create_campaign(
            s,
            shop.id,
            CampaignCreate.model_validate(
                {
                    "name": "bench",
                    "status": "active",
                    "conversion_event": "first_paid_order",
                    "inviter_reward": {"type": "points", "amount": 500},
                    "invitee_reward": {"type": "credit", "amount": 300, "currency": "USD"},
                    "milestones": [
                        {"threshold": 3, "reward": {"type": "points", "amount": 100}},
                        {"threshold": 10, "reward": {"type": "credit", "amount": 1000, "currency": "USD"}},
                    ],
                    "budgets": {"USD": 10**12} if os.environ.get("BENCH_BUDGET", "1") == "1" else {},
                }
            ),
        )
        codes = [
            (await create_member(s, shop, external_id=f"inv{i}", email=f"inviter{i}@bench.example")).referral_code
            for i in range(inviters)
        ]
    customers = []
    for start in range(0, invitees, 200):
        async with transaction(sessions) as s:
            for i in range(start, min(start + 200, invitees)):
                m = await create_member(s, shop, external_id=f"c{i}", email=f"{uuid.uuid4().hex[:10]}@bench.example")
                await attribute_signup(s, shop, m, code=codes[i % inviters])
                customers.append(f"c{i}")
    await engine.dispose()
    return shop, customers


async def run(url: str, shop: object, customers: list[str]) -> tuple[float, list[float]]:
    engine = create_engine(url, pool_size=CLIENTS)
    sessions = session_factory(engine)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for c in customers:
        queue.put_nowait(c)
    latencies: list[float] = []

    async def client() -> None:
        while not queue.empty():
            customer = queue.get_nowait()
            event = OrderEventIn.model_validate(
                {
                    "id": f"e-{customer}",
                    "type": "order.paid",
                    "order": {
                        "id": f"o-{customer}",
                        "currency": "USD",
                        "total_minor": 4200,
                        "customer": {"id": customer},
                    },
                }
            )
            t = time.perf_counter()
            async with transaction(sessions) as s:
                if await claim_event(s, shop.id, "bench", event.id, event.type):  # type: ignore[attr-defined]
                    await apply_order_event(s, shop, event, source="bench")  # type: ignore[arg-type]
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    async with engine.connect() as conn:
        converted = (await conn.execute(text("SELECT COUNT(*) FROM referrals WHERE status = 'converted'"))).scalar()
    await engine.dispose()
    assert converted == len(customers), f"{converted} of {len(customers)} converted"
    return len(customers) / elapsed, latencies


def pgbench(base: str, seconds: int) -> float:
    url = make_url(base)
    name = f"liveloop_pgbench_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
    }
    if url.password:
        env["PGPASSWORD"] = url.password
    subprocess.run(["createdb", name], env=env, check=True)
    try:
        subprocess.run(["pgbench", "-i", "-q", "-s", "16", name], env=env, check=True, capture_output=True)
        out = subprocess.run(
            ["pgbench", "-b", "tpcb-like", "-c", str(CLIENTS), "-j", "2", "-T", str(seconds), name],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        subprocess.run(["dropdb", "--force", name], env=env, check=False)
    return float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--conversions", type=int, default=2000)
    args = parser.parse_args()
    base = (
        os.environ.get("LIVELOOP_BENCH_DATABASE_URL")
        or os.environ.get("LIVELOOP_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    admin_url = make_url(base).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    name = f"liveloop_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    n = 800 if args.quick else args.conversions
    try:
        upgrade(url)
        shop, customers = asyncio.run(seed(url, n, inviters=max(n // 6, 1)))
        rate, lat = asyncio.run(run(url, shop, customers))
        tps = pgbench(base, 5 if args.quick else 15)
    finally:
        asyncio.run(admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    result = {
        "conversions": n,
        "clients": CLIENTS,
        "conversions_per_s": round(rate, 1),
        "median_ms": round(median(lat), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "pgbench_tpcb_tps": round(tps, 1),
        "ratio_to_pgbench": round(rate / tps, 3),
        "target": ">= 500/s, p99 < 100 ms",
    }
    save("conversions", result)
    met = rate >= 500 and result["p99_ms"] < 100
    print(
        f"conversions: {rate:.0f}/s  median {result['median_ms']} ms  p99 {result['p99_ms']} ms  | pgbench "
        f"tpcb-like -c16: {tps:.0f} tps  | ratio {result['ratio_to_pgbench']}  | target {'MET' if met else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
