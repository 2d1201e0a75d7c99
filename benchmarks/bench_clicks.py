"""Invite-link clicks (record + 302) on the default SQLite setup, load from separate processes.

Target: at least 2,000 clicks/s with p99 under 20 ms. Measured two ways in one run:
- at a constant 2,000 clicks/s (h2load, 16 clients): median and p99 at the target rate, which is what
  the target asks;
- at saturation (wrk, 16 connections): the most clicks/s the server holds, and its latency there.
Reference in the same run: GET /healthz (one `SELECT 1` through the app's session) under the same wrk
load, so the ratio shows the click path against the app's plainest database round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, h2load_rate, save, start_server, wrk

from liveloop.database import session_factory
from liveloop.kit.db import create_engine, transaction
from liveloop.members.service import create_member
from liveloop.migrate import upgrade
from liveloop.shops.service import create_shop


async def seed(url: str) -> str:
    engine = create_engine(url)
    async with transaction(session_factory(engine)) as session:
        shop = await create_shop(session, slug="bench", name="Bench", landing_url="https://shop.example/")
        member = await create_member(session, shop, external_id="inviter", email="inviter@example.com")
        code = member.referral_code
    await engine.dispose()
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    seconds = 3 if args.quick else 15
    tmp = tempfile.mkdtemp(prefix="liveloop-bench-")
    url = f"sqlite+aiosqlite:///{tmp}/bench.db"
    upgrade(url)
    code = asyncio.run(seed(url))
    port = free_port()
    server = start_server(
        {
            "LIVELOOP_DATABASE_URL": url,
            "LIVELOOP_RUN_WORKER": "false",
            "LIVELOOP_LOG_LEVEL": "WARNING",
            "LIVELOOP_SECRET_KEY": "bench-secret-key-long-enough-for-hs256",
            # All the load comes from one address: limits far above it, so the limiter's cost is measured.
            "LIVELOOP_RATE_LIMIT_IP_PER_MINUTE": str(10**9),
            "LIVELOOP_RATE_LIMIT_IP_BURST": str(10**9),
        },
        port,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wrk(f"{base}/healthz", seconds=2, connections=args.connections)  # warm-up
        reference = wrk(f"{base}/healthz", seconds=seconds, connections=args.connections)
        link = f"{base}/r/bench/{code}?ch=whatsapp&show=s1"
        steady = h2load_rate(link, rate=2000, seconds=seconds, clients=args.connections)
        clicks = wrk(link, seconds=seconds, connections=args.connections)
    finally:
        server.terminate()
        server.wait(10)
    recorded = sqlite3.connect(f"{tmp}/bench.db").execute("SELECT COUNT(*) FROM invite_clicks").fetchone()[0]
    result = {
        "at_2000_per_s": steady,
        "saturation": {
            "clicks_per_s": round(clicks["rps"]),
            "p50_ms": clicks["p50_ms"],
            "p99_ms": clicks["p99_ms"],
            "errors": clicks["non_2xx_3xx"],
        },
        "healthz": {"per_s": round(reference["rps"]), "p50_ms": reference["p50_ms"], "p99_ms": reference["p99_ms"]},
        "ratio_clicks_to_healthz": round(clicks["rps"] / reference["rps"], 3),
        "clicks_recorded": recorded,
        "target": ">= 2000/s with p99 < 20 ms",
        "connections": args.connections,
        "seconds": seconds,
        "cpus": os.cpu_count(),
    }
    save("clicks", result)
    ok = steady["achieved_per_s"] >= 1990 and steady["failed"] == 0 and steady["p99_ms"] < 20
    print(
        f"clicks at a constant 2,000/s: achieved {steady['achieved_per_s']:.0f}/s, "
        f"median {steady['median_ms']:.2f} ms, p99 {steady['p99_ms']:.2f} ms, p99.9 {steady['p999_ms']:.2f} ms "
        f"-> target {'MET' if ok else 'NOT MET'}"
    )
    print(
        f"clicks at saturation: {round(clicks['rps'])}/s, median {clicks['p50_ms']:.2f} ms, "
        f"p99 {clicks['p99_ms']:.2f} ms | /healthz {round(reference['rps'])}/s, "
        f"p99 {reference['p99_ms']:.2f} ms | ratio clicks/healthz "
        f"{result['ratio_clicks_to_healthz']} | {recorded:,} clicks recorded"
    )


if __name__ == "__main__":
    main()
