"""Floods must not slow everyone else: `/healthz` and a member read while the server is being flooded.

On the default setup (SQLite, the worker inside the API process, one `liveloop serve` process), a probe reads
`GET /healthz` and `GET /v1/members/{id}` one after the other, 40 requests a second, and times each. It runs
twice in one run: once with nothing else going on (the baseline), once while

- one client posts 1 MB bodies as fast as it can: a JSON body just under the size limit to an operator
  endpoint (parsed, then refused as invalid) and a body over the limit to a public one (refused before it is
  read), one after the other;
- 20 viewer sockets of 20 signed-in members flood the room with flash-offer claims and poll votes, each
  as fast as it can write them.

The flood runs in a separate process from the probe, so the probe's own timing is not disturbed by it.
Reported: median and p99 of each probe with and without the flood, their ratio, and what the flood sent.
Target: p99 under 50 ms for both probes while flooded.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, median, percentile, save, start_server

from liveloop.client import room_subprotocols, room_url
from liveloop.database import session_factory
from liveloop.kit.db import create_engine, transaction
from liveloop.kit.time import utc_now
from liveloop.migrate import upgrade
from liveloop.shops.service import create_api_key, create_shop

SECRET = "bench-secret-key-long-enough-for-hs256"
SOCKETS = 20
PROBE_PER_S = 40
TARGET_P99_MS = 50.0


async def seed(url: str) -> str:
    engine = create_engine(url)
    async with transaction(session_factory(engine)) as session:
        shop = await create_shop(session, slug="bench", name="Bench", landing_url="https://shop.example/")
        _, key = await create_api_key(session, shop, name="bench", scopes=["admin"])
    await engine.dispose()
    return key


async def prepare(base: str, key: str) -> dict[str, Any]:
    """A live show with an open poll and flash offer, one member to read, 20 members' viewer tokens."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:

        async def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            response = await api.post(path, json=body)
            assert response.status_code < 300, f"{path}: {response.status_code} {response.text}"
            return dict(response.json())

        show = await post(
            "/v1/shows",
            {
                "title": "Flood",
                "host_name": "Host",
                "scheduled_at": (utc_now() + timedelta(minutes=1)).isoformat(),
            },
        )
        await post(f"/v1/shows/{show['id']}/start")
        poll = await post(
            f"/v1/shows/{show['id']}/interactions",
            {"kind": "poll", "question": "Next?", "options": ["A", "B"], "window_seconds": 7200},
        )
        flash = await post(
            f"/v1/shows/{show['id']}/interactions",
            {
                "kind": "flash_offer",
                "sku": "SKU-1",
                "quantity": 1_000_000,
                "per_buyer": 10,
                "window_seconds": 7200,
                "bonus": {"type": "points", "amount": 10},
            },
        )
        members = [
            await post("/v1/members", {"external_id": f"flood-{i}", "email": f"flood{i}@example.com"})
            for i in range(SOCKETS + 1)
        ]
        tokens = [
            (await post(f"/v1/shows/{show['id']}/viewer-tokens", {"member_id": m["id"]}))["token"] for m in members[1:]
        ]
    ws = room_url(base, show["id"])  # the token goes in the subprotocol, never in the URL
    return {
        "show": show["id"],
        "poll": poll["id"],
        "flash": flash["id"],
        "member": members[0]["id"],
        "ws": ws,
        "tokens": tokens,
    }


async def probe(base: str, key: str, member_id: str, seconds: float) -> dict[str, list[float]]:
    """`/healthz` and a member read, alternately, at a fixed rate (a late request does not shift the rest)."""
    timings: dict[str, list[float]] = {"healthz": [], "member": []}
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await client.get("/healthz")
        interval = 1 / PROBE_PER_S
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            due = start + n * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            name = "healthz" if n % 2 == 0 else "member"
            sent = time.perf_counter()
            if name == "healthz":
                response = await client.get("/healthz")
            else:
                response = await client.get(f"/v1/members/{member_id}", headers=headers)
            timings[name].append((time.perf_counter() - sent) * 1000)
            assert response.status_code == 200, response.text
            n += 1
    return timings


async def _flood(base: str, key: str, room: dict[str, Any], seconds: float, counts: Any) -> None:
    stop = time.perf_counter() + seconds
    just_under = b'{"external_id":"' + b"x" * (1_000_000 - 32) + b'"}'
    over = b"{" + b" " * (1_100_000) + b"}"

    async def bodies() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while time.perf_counter() < stop:
                for path, body, headers in (
                    ("/v1/members", just_under, {"Authorization": f"Bearer {key}"}),
                    (f"/v1/public/shows/{room['show']}/join", over, {}),
                ):
                    try:
                        response = await client.post(
                            path, content=body, headers={**headers, "Content-Type": "application/json"}
                        )
                        counts[f"answered_{response.status_code}"] = (
                            counts.get(f"answered_{response.status_code}", 0) + 1
                        )
                    except httpx.HTTPError:  # refused before it was all sent: the server closed the connection
                        counts["cut_off"] += 1
                    counts["bodies"] += 1

    async def socket(token: str) -> None:
        claim = orjson.dumps({"t": "claim", "i": room["flash"]})
        votes = [orjson.dumps({"t": "v", "i": room["poll"], "o": o}) for o in (0, 1)]
        while time.perf_counter() < stop:
            try:
                async with websockets.connect(
                    room["ws"], subprotocols=room_subprotocols(token), max_size=None, open_timeout=10
                ) as ws:

                    async def drain() -> None:
                        async for _ in ws:
                            pass

                    reader = asyncio.create_task(drain())
                    try:
                        while time.perf_counter() < stop:
                            await ws.send(claim)
                            await ws.send(votes[counts["inputs"] % 2])
                            counts["inputs"] += 2
                            await asyncio.sleep(0)
                    finally:
                        reader.cancel()
            except (websockets.ConnectionClosed, OSError):
                counts["reconnects"] += 1
                await asyncio.sleep(0.05)

    await asyncio.gather(bodies(), *(socket(t) for t in room["tokens"]))


def flood(base: str, key: str, room: dict[str, Any], seconds: float, queue: Any) -> None:
    counts = {"bodies": 0, "cut_off": 0, "inputs": 0, "reconnects": 0}
    asyncio.run(_flood(base, key, room, seconds, counts))
    queue.put(counts)


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "median_ms": round(median(values), 2), "p99_ms": round(percentile(values, 99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s per phase instead of 20")
    args = parser.parse_args()
    seconds = 5.0 if args.quick else 20.0
    tmp = tempfile.mkdtemp(prefix="liveloop-bench-")
    url = f"sqlite+aiosqlite:///{tmp}/bench.db"
    upgrade(url)
    key = asyncio.run(seed(url))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(
        {"LIVELOOP_DATABASE_URL": url, "LIVELOOP_SECRET_KEY": SECRET, "LIVELOOP_LOG_LEVEL": "WARNING"}, port
    )
    try:
        room = asyncio.run(prepare(base, key))
        quiet = asyncio.run(probe(base, key, room["member"], seconds))
        queue: Any = multiprocessing.Queue()
        flooder = multiprocessing.Process(target=flood, args=(base, key, room, seconds + 3, queue))
        flooder.start()
        time.sleep(2)  # the flood is in full swing before the probe starts
        loud = asyncio.run(probe(base, key, room["member"], seconds))
        flooder.join(30)
        sent = queue.get(timeout=10) if not queue.empty() else {}
    finally:
        server.terminate()
        server.wait(10)
    result: dict[str, Any] = {
        "seconds_per_phase": seconds,
        "probe_per_s": PROBE_PER_S,
        "sockets": SOCKETS,
        "flood_sent": sent,
        "cpus": os.cpu_count(),
    }
    ok = True
    for name in ("healthz", "member"):
        base_s, flood_s = summary(quiet[name]), summary(loud[name])
        ratio = round(flood_s["p99_ms"] / base_s["p99_ms"], 2) if base_s["p99_ms"] else 0.0
        result[name] = {"quiet": base_s, "flooded": flood_s, "p99_ratio_flooded_to_quiet": ratio}
        met = flood_s["p99_ms"] < TARGET_P99_MS
        ok &= met
        print(
            f"{name:8s} quiet: median {base_s['median_ms']:.2f} ms, p99 {base_s['p99_ms']:.2f} ms | flooded: median "
            f"{flood_s['median_ms']:.2f} ms, p99 {flood_s['p99_ms']:.2f} ms | p99 ratio {ratio} "
            f"-> target p99 < {TARGET_P99_MS:.0f} ms {'MET' if met else 'NOT MET'}"
        )
    print(
        f"flood: {sent.get('bodies', 0):,} bodies of ~1 MB, {sent.get('inputs', 0):,} claims and votes "
        f"from {SOCKETS} sockets, {sent.get('reconnects', 0)} reconnects"
    )
    result["target"] = f"p99 < {TARGET_P99_MS:.0f} ms for /healthz and a member read while flooded"
    result["met"] = ok
    save("flood", result)


if __name__ == "__main__":
    main()
