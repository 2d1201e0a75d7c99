"""The live room's gateway: how many viewers one process holds with p99 delivery under 200 ms.

Load: 500 comments/s and 10,000 likes/s into one room (60 talkers), viewers read every frame. The load
generator (benchmarks/roomload.py) is a separate process of raw sockets: no WebSocket library per
connection; a sample of viewers times each comment from the talker's send to its own read.

Reported: p50/p99 at each viewer count and the largest count that holds p99 < 200 ms; the server's memory
per idle connection. With --baseline, the same load against a plain python-socketio broadcast server
(benchmarks/socketio_server.py), and the ratio of viewers held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, save, start_server

from liveloop.kit.db import create_engine, session_factory, transaction
from liveloop.kit.time import utc_now
from liveloop.live import schemas, service, tokens
from liveloop.migrate import upgrade
from liveloop.shops.service import create_shop

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-key-long-enough-for-hs256"
TALKERS = 60
TARGET_MS = 200.0


async def seed(url: str) -> tuple[str, str]:
    engine = create_engine(url)
    async with transaction(session_factory(engine)) as session:
        shop = await create_shop(session, slug="bench", name="Bench", landing_url="https://shop.example/")
        show = await service.create_show(
            session,
            shop,
            schemas.ShowCreate(
                title="Bench show",
                host_name="Host",
                scheduled_at=utc_now() + timedelta(minutes=1),
                moderation=schemas.Moderation(comments_per_10s=100, likes_per_second=1000),
            ),
        )
        await service.start_show(session, show)
        ids = (shop.id, show.id)
    await engine.dispose()
    return ids


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def load(
    port: int | str,
    token_file: str,
    viewers: int,
    *,
    protocol: str,
    show: str,
    seconds: float,
    idle: bool = False,
    on_ready: Any = None,
    reconnect_within: float = 0.0,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(HERE / "roomload.py"),
        "--port",
        str(port),
        "--protocol",
        protocol,
        "--show",
        show,
        "--tokens",
        token_file,
        "--viewers",
        str(viewers),
        "--talkers",
        "0" if idle else str(TALKERS),
        "--seconds",
        str(seconds),
    ]
    if idle:
        cmd += ["--comments", "0", "--likes", "0"]
    if reconnect_within:
        cmd += ["--reconnect-within", str(reconnect_within)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    for line in proc.stderr:
        if line.startswith("READY"):
            if on_ready is not None:
                on_ready()
            break
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def sweep(
    port: int | str, token_file: str, counts: list[int], *, protocol: str, show: str, seconds: float
) -> list[dict]:
    steps = []
    for n in counts:
        step = load(port, token_file, n, protocol=protocol, show=show, seconds=seconds)
        steps.append(step)
        print(
            f"  {protocol:8s} {n:6d} viewers: p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms "
            f"({step['samples']} samples, {step['failed']} failed to connect)",
            flush=True,
        )
        if step["p99_ms"] != step["p99_ms"] or step["p99_ms"] >= TARGET_MS or step["failed"]:
            break  # no need to go higher
        time.sleep(1.0)
    return steps


def held(steps: list[dict]) -> int:
    ok = [s["viewers"] for s in steps if s["p99_ms"] == s["p99_ms"] and s["p99_ms"] < TARGET_MS and not s["failed"]]
    return max(ok, default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", action="store_true", help="also run the python-socketio baseline")
    parser.add_argument("--counts", default="1000,2500,5000,7500,10000")
    parser.add_argument("--baseline-counts", default="10,20,30,50,100,200,500,1000")
    parser.add_argument(
        "--redis",
        default=os.environ.get("LIVELOOP_BENCH_REDIS_URL") or os.environ.get("LIVELOOP_TEST_REDIS_URL"),
        help="also run two gateway processes on this Redis (e.g. redis://127.0.0.1:6379/0)",
    )
    args = parser.parse_args()
    counts = [500, 1000] if args.quick else [int(c) for c in args.counts.split(",")]
    seconds = 4.0 if args.quick else 8.0
    tmp = tempfile.mkdtemp(prefix="liveloop-bench-room-")
    url = f"sqlite+aiosqlite:///{tmp}/bench.db"
    upgrade(url)
    shop_id, show_id = asyncio.run(seed(url))
    token_file = os.path.join(tmp, "tokens.txt")
    with open(token_file, "w", encoding="utf-8") as f:
        for i in range(2 * max(counts) + TALKERS):
            name = f"v{i}"
            f.write(tokens.mint(SECRET, shop_id=shop_id, show_id=show_id, name=name, device_id=f"bench-{i}") + "\n")
    port = free_port()
    env = {
        "LIVELOOP_DATABASE_URL": url,
        "LIVELOOP_RUN_WORKER": "false",
        "LIVELOOP_LOG_LEVEL": "WARNING",
        "LIVELOOP_SECRET_KEY": SECRET,
    }
    server = start_server(env, port)
    result: dict[str, Any] = {"comments_per_s": 500, "likes_per_s": 10_000, "target_p99_ms": TARGET_MS}
    try:
        time.sleep(1.0)
        before = rss_kb(server.pid)
        idle_n = 1000 if args.quick else 5000
        sampled: dict[str, int] = {}
        load(
            port,
            token_file,
            idle_n,
            protocol="liveloop",
            show=show_id,
            seconds=3.0,
            idle=True,
            on_ready=lambda: (time.sleep(2.0), sampled.setdefault("rss", rss_kb(server.pid))),
        )
        per_conn = (sampled.get("rss", before) - before) * 1024 / idle_n
        result["idle_connections"] = idle_n
        result["bytes_per_idle_connection"] = round(per_conn)
        print(f"memory per idle connection: {per_conn / 1024:.1f} KB ({idle_n} connections)", flush=True)
        steps = sweep(port, token_file, counts, protocol="liveloop", show=show_id, seconds=seconds)
        result["liveloop"] = steps
        result["liveloop_viewers_held"] = held(steps)
        storm_n = 1000 if args.quick else 5000
        storm = load(port, token_file, storm_n, protocol="liveloop", show=show_id, seconds=10.0, reconnect_within=5.0)
        result["reconnect_storm"] = {"viewers": storm_n, "within_s": 5.0, **(storm["resume"] or {})}
        print(
            f"reconnect storm: {storm_n} viewers dropped and came back within 5 s with ?since: {storm['resume']}",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(10)
    if args.redis:
        ports = [free_port(), free_port()]
        servers = [start_server({**env, "LIVELOOP_BUS_URL": args.redis}, p) for p in ports]
        try:
            time.sleep(1.0)
            two_counts = sorted({*counts, int(max(counts) * 1.5), 2 * max(counts)})
            steps = sweep(
                ",".join(map(str, ports)), token_file, two_counts, protocol="liveloop", show=show_id, seconds=seconds
            )
            result["two_gateways_redis"] = steps
            result["two_gateways_viewers_held"] = held(steps)
            one = result["liveloop_viewers_held"]
            result["two_gateways_ratio"] = round(result["two_gateways_viewers_held"] / one, 2) if one else None
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(10)
    if args.baseline:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "socketio_server.py"), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(3.0)
            base_counts = [10, 20] if args.quick else [int(c) for c in args.baseline_counts.split(",")]
            steps = sweep(port, token_file, base_counts, protocol="socketio", show=show_id, seconds=seconds)
            result["socketio"] = steps
            result["socketio_viewers_held"] = held(steps)
            base = result["socketio_viewers_held"]
            result["ratio"] = round(result["liveloop_viewers_held"] / base, 2) if base else None
        finally:
            proc.terminate()
            proc.wait(10)
    save("room", result)
    summary = f"room: {result['liveloop_viewers_held']} viewers held at p99 < {TARGET_MS:.0f} ms (one process)"
    if "ratio" in result:
        summary += f" | python-socketio: {result['socketio_viewers_held']} | ratio {result['ratio']}"
    summary += f" | {result['bytes_per_idle_connection'] / 1024:.1f} KB per idle connection"
    if "two_gateways_ratio" in result:
        summary += f" | two gateways on Redis: {result['two_gateways_viewers_held']} ({result['two_gateways_ratio']}x)"
    storm = result["reconnect_storm"]
    summary += f" | reconnect storm: {storm['ok']}/{storm['viewers']} resumed without a gap"
    print(summary)


if __name__ == "__main__":
    main()
