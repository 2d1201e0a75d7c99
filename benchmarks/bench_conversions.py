"""Referral conversions on PostgreSQL with 16 concurrent clients, next to pgbench tpcb-like on the same server.

One conversion is one transaction: the order-paid event is deduplicated, the order recorded, the invitee's
referral converted, both sides rewarded through the ledger, milestones checked and the events written to
the outbox. Target: at least 500/s with p99 under 100 ms; the ratio to pgbench's tps is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, percentile, save
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from liveloop.database import session_factory
from liveloop.kit.db import create_engine, transaction
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


async def run_clients(url: str, shop: object, customers: list[str], clients: int, go: float) -> list[float]:
    """Convert ``customers`` with ``clients`` concurrent transactions; returns each one's latency in ms."""
    engine = create_engine(url, pool_size=clients)
    sessions = session_factory(engine)
    async with engine.connect() as conn:  # open the pool's connections before the clock starts
        await conn.execute(text("SELECT 1"))
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

    await asyncio.sleep(max(go - time.time(), 0))
    await asyncio.gather(*(client() for _ in range(clients)))
    await engine.dispose()
    return latencies


def _worker(url: str, shop: object, customers: list[str], clients: int, go: float, out: Any) -> None:
    started = resource.getrusage(resource.RUSAGE_SELF)
    latencies = asyncio.run(run_clients(url, shop, customers, clients, go))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (used.ru_utime - started.ru_utime) + (used.ru_stime - started.ru_stime)
    out.put((latencies, cpu))


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4]) / tick, sum(fields) / tick


def run(url: str, shop: object, customers: list[str], processes: int) -> dict[str, Any]:
    """16 clients split over ``processes`` worker processes, as a deployment runs one per core."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    go = time.time() + 3.0  # every process starts converting at the same moment, after its imports
    shares = [customers[i::processes] for i in range(processes)]
    per = [CLIENTS // processes + (1 if i < CLIENTS % processes else 0) for i in range(processes)]
    workers = [ctx.Process(target=_worker, args=(url, shop, shares[i], per[i], go, out)) for i in range(processes)]
    for w in workers:
        w.start()
    time.sleep(max(go - time.time(), 0))
    busy0, total0 = machine_busy()
    started = time.perf_counter()
    results = [out.get() for _ in workers]
    elapsed = time.perf_counter() - started
    busy1, total1 = machine_busy()
    for w in workers:
        w.join()
    latencies = [ms for lat, _ in results for ms in lat]
    app_cpu = sum(cpu for _, cpu in results)
    n = len(customers)
    return {
        "rate": n / elapsed,
        "latencies": latencies,
        "app_cpu_ms": app_cpu / n * 1000,
        "machine_cpu_ms": (busy1 - busy0) / n * 1000,
        "utilization": (busy1 - busy0) / (total1 - total0),
    }


async def converted(url: str) -> int:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT COUNT(*) FROM referrals WHERE status = 'converted'"))).scalar()
    await engine.dispose()
    return int(count or 0)


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
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="worker processes (default: one per core)"
    )
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
        measured = run(url, shop, customers, args.processes)
        done = asyncio.run(converted(url))
        assert done == len(customers), f"{done} of {len(customers)} converted"
        tps = pgbench(base, 5 if args.quick else 15)
    finally:
        asyncio.run(admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    rate, lat = measured["rate"], measured["latencies"]
    cores = os.cpu_count() or 1
    result = {
        "conversions": n,
        "clients": CLIENTS,
        "processes": args.processes,
        "conversions_per_s": round(rate, 1),
        "median_ms": round(median(lat), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "pgbench_tpcb_tps": round(tps, 1),
        "ratio_to_pgbench": round(rate / tps, 3),
        # Where the time goes: application CPU per conversion, and the whole machine's (the database included).
        "app_cpu_ms_per_conversion": round(measured["app_cpu_ms"], 2),
        "machine_cpu_ms_per_conversion": round(measured["machine_cpu_ms"], 2),
        "machine_utilization": round(measured["utilization"], 2),
        "cpu_bound_ceiling_per_s": round(cores * 1000 / measured["machine_cpu_ms"]),
        "target": ">= 500/s, p99 < 100 ms",
    }
    save("conversions", result)
    met = rate >= 500 and result["p99_ms"] < 100
    print(
        f"conversions: {rate:.0f}/s  median {result['median_ms']} ms  p99 {result['p99_ms']} ms  | pgbench "
        f"tpcb-like -c16: {tps:.0f} tps  | ratio {result['ratio_to_pgbench']}  | target {'MET' if met else 'NOT MET'}\n"
        f"  per conversion: {result['app_cpu_ms_per_conversion']} ms application CPU, "
        f"{result['machine_cpu_ms_per_conversion']} ms machine CPU (database included), "
        f"machine {result['machine_utilization']:.0%} busy; {cores} cores allow at most "
        f"{result['cpu_bound_ceiling_per_s']}/s at this cost"
    )


if __name__ == "__main__":
    main()
