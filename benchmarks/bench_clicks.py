"""Invite-link clicks (record + 302) on the default SQLite setup, driven by wrk from a separate process.

Target: at least 2,000 clicks/s with p99 under 20 ms. Reference in the same run: GET /healthz (one
`SELECT 1`) on the same server, so the ratio shows what the click path costs beyond the framework.
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
from common import free_port, save, start_server, wrk

from liveloop.kit.db import create_engine, session_factory, transaction
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
            "LIVELOOP_SECRET_KEY": "bench",
        },
        port,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wrk(f"{base}/healthz", seconds=2, connections=args.connections)  # warm-up
        reference = wrk(f"{base}/healthz", seconds=seconds, connections=args.connections)
        clicks = wrk(f"{base}/r/bench/{code}?ch=whatsapp&show=s1", seconds=seconds, connections=args.connections)
    finally:
        server.terminate()
        server.wait(10)
    recorded = sqlite3.connect(f"{tmp}/bench.db").execute("SELECT COUNT(*) FROM invite_clicks").fetchone()[0]
    result = {
        "clicks_per_s": round(clicks["rps"]),
        "p50_ms": clicks["p50_ms"],
        "p99_ms": clicks["p99_ms"],
        "clicks_recorded": recorded,
        "errors": clicks["non_2xx_3xx"],
        "healthz_per_s": round(reference["rps"]),
        "healthz_p50_ms": reference["p50_ms"],
        "healthz_p99_ms": reference["p99_ms"],
        "ratio_clicks_to_healthz": round(clicks["rps"] / reference["rps"], 3),
        "target": ">= 2000/s, p99 < 20 ms",
        "connections": args.connections,
        "seconds": seconds,
        "cpus": os.cpu_count(),
    }
    save("clicks", result)
    ok = clicks["rps"] >= 2000 and clicks["p99_ms"] < 20
    print(
        f"clicks: {result['clicks_per_s']}/s  median {clicks['p50_ms']:.2f} ms  p99 {clicks['p99_ms']:.2f} ms  "
        f"({recorded} recorded)  | /healthz {result['healthz_per_s']}/s p99 {reference['p99_ms']:.2f} ms  "
        f"| ratio {result['ratio_clicks_to_healthz']}  | target {'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
