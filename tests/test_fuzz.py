"""A property-based run over the whole API: schemathesis against `liveloop serve` on 127.0.0.1.

The server runs in its own process on the test database (SQLite, and PostgreSQL when configured), with a
seeded shop: operator routes are called with its admin key, public routes anonymously (the OpenAPI
document says which are which). Path and body ids are drawn, most of the time, from rows the seed made, so
the generated requests reach the business rules instead of stopping at 404; the rest of the time they are
generated like everything else (NUL bytes, lone surrogates, huge numbers, wrong types…).

Checks: no 5xx, every response matches its documented schema and content type, and no status code the
operation does not document. A fixed seed and a few examples per operation keep it inside the normal suite;
`make fuzz` runs the long version.

The server resolves numeric addresses only, so the webhook URLs the fuzzer makes up never reach a DNS
server (they are refused as unresolvable, like any name that does not resolve), and it runs no worker, so
nothing is ever delivered.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from liveloop.client import free_port, order_event
from liveloop.events.worker import Worker
from liveloop.kit.time import utc_now
from tests.conftest import ShopCtx
from tests.factories import create_campaign, create_member, ok

SECRET = "fuzz-secret-key-that-is-long-enough-for-hs256"
SEED = 20261201
QUICK_EXAMPLES = 5
LONG_EXAMPLES = int(os.environ.get("LIVELOOP_FUZZ_EXAMPLES", "25"))
CHECKS = ["not_a_server_error", "response_schema_conformance", "content_type_conformance", "status_code_conformance"]

# `liveloop serve` with getaddrinfo limited to numeric hosts (AI_NUMERICHOST): no name is looked up.
SERVE = """
import socket, sys
lookup = socket.getaddrinfo
def numeric_only(host, port, family=0, type=0, proto=0, flags=0):
    return lookup(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
socket.getaddrinfo = numeric_only
from liveloop.cli import main
sys.argv[0] = "liveloop"
main()
"""


async def _seed(shop: ShopCtx) -> dict[str, list[str]]:
    """Rows of every kind the API names in its paths, so that generated requests find something."""
    api = shop.api
    member = await create_member(api, market="sea", name="Fuzz Member")
    other = await create_member(api, market="na")
    campaign = await create_campaign(api, lottery_enabled=True)
    batch = ok(
        await api.post(
            "/v1/coupon-batches",
            json={
                "name": "Fuzz",
                "kind": "fixed",
                "count": 3,
                "amount_minor": 300,
                "currency": "USD",
                "member_ids": [member["id"]],
            },
        ),
        201,
    )
    codes = [c["code"] for c in batch["coupons"]]
    bound = next(c["code"] for c in batch["coupons"] if c["member_id"] == member["id"])
    redemption = ok(
        await api.post(
            f"/v1/coupons/{bound}/redeem",
            json={"member_id": member["id"], "order_total_minor": 5000, "currency": "USD", "order_ref": "fuzz-1"},
        ),
        201,
    )
    show = ok(
        await api.post(
            "/v1/shows",
            json={"title": "Fuzz live", "host_name": "Mai", "market": "sea", "scheduled_at": utc_now().isoformat()},
        ),
        201,
    )
    ok(await api.post(f"/v1/shows/{show['id']}/start"))
    scheduled = ok(
        await api.post(
            "/v1/shows",
            json={"title": "Fuzz later", "host_name": "Mai", "scheduled_at": "2030-01-01T10:00:00Z"},
        ),
        201,
    )
    poll = ok(
        await api.post(
            f"/v1/shows/{show['id']}/interactions",
            json={"kind": "poll", "question": "Which next?", "options": ["Rose", "Sand"]},
        ),
        201,
    )
    group = ok(
        await api.post(
            "/v1/groups",
            json={
                "campaign_id": campaign["id"],
                "name": "Fuzz VIPs",
                "owner_id": member["id"],
                "extra_offer": {"type": "points", "amount": 50},
            },
        ),
        201,
    )
    draw = ok(
        await api.post(
            f"/v1/campaigns/{campaign['id']}/draws", json={"prize_count": 1, "prize": {"type": "points", "amount": 5}}
        ),
        201,
    )
    credit = ok(
        await api.post("/v1/ledger/credits", json={"member_id": member["id"], "asset": "points", "amount": 100}), 201
    )
    ok(
        await api.post(
            "/v1/orders/events",
            content=order_event("fuzz-evt-1", "paid", "fuzz-order-1", member["external_id"], 2599),
            headers={"content-type": "application/json"},
        )
    )
    spare_key = ok(await api.post("/v1/api-keys", json={"name": "spare", "scopes": ["members:read"]}), 201)
    # A webhook endpoint on a closed loopback port (registered as a self-hosted setup may), and one delivery
    # to it that failed: the fuzzer's server resolves no names and delivers nothing.
    settings = shop.app.state.settings
    shop.app.state.settings = settings.model_copy(update={"webhook_allow_private_targets": True})
    try:
        endpoint = ok(await api.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hooks"}), 201)
    finally:
        shop.app.state.settings = settings
    await create_member(api, market="eu")
    worker = Worker(shop.app.state.sessions, allow_private_targets=True)
    try:
        await worker.deliver_due()
    finally:
        await worker.close()
    deliveries = ok(await api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"))["items"]
    links = ok(await api.get(f"/v1/members/{member['id']}/invite-links"))
    qr = urlsplit(links["qr_png"]).path
    return {
        "member_id": [member["id"], other["id"]],
        "campaign_id": [campaign["id"]],
        "batch_id": [batch["id"]],
        "code": codes,
        "redemption_id": [redemption["id"]],
        "show_id": [show["id"], scheduled["id"]],
        "interaction_id": [poll["id"]],
        "group_id": [group["id"]],
        "draw_id": [draw["id"]],
        "txn_id": [credit["id"]],
        "order_id": ["fuzz-order-1"],
        "key_id": [spare_key["id"]],
        "shop_slug": [shop.slug],
        "owner_id": [member["id"]],
        "endpoint_id": [endpoint["id"]],
        "delivery_id": [d["id"] for d in deliveries],
        "token": [qr.rsplit("/", 1)[-1].rsplit(".", 1)[0]],
    }


def _config(key: str, known: dict[str, list[str]], *, quick: bool) -> str:
    lines = [f"seed = {SEED}", "", "[auth.openapi.HTTPBearer]", f"bearer = {json.dumps(key)}", ""]
    if quick:
        # The coverage phase's negative cases are most of its 6,000+ requests: the long run sends them,
        # the quick one leaves wrong-typed and out-of-range values to the fuzzing phase.
        lines += ["[phases.coverage.generation]", 'mode = "positive"', ""]
    for name, values in known.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for name in known:
        for where in ("path", "query", "body"):
            lines.append(f'"{where}.{name}" = {{ dictionary = "{name}", probability = 0.75 }}')
    return "\n".join(lines) + "\n"


def _serve(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LIVELOOP_DATABASE_URL": database_url,
        "LIVELOOP_SECRET_KEY": SECRET,
        "LIVELOOP_RUN_WORKER": "false",
        "LIVELOOP_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LIVELOOP_LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # our own command, on a loopback port
            [sys.executable, "-c", SERVE, "serve", "--port", str(port), "--no-migrate"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"liveloop serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("liveloop serve did not answer /healthz within 30 s")


async def fuzz(shop: ShopCtx, database_url: str, tmp_path: Path, *, examples: int) -> tuple[int, str]:
    known = await _seed(shop)
    port = free_port()
    log = tmp_path / "server.log"
    proc = await asyncio.to_thread(_serve, database_url, port, log)
    try:
        base = f"http://127.0.0.1:{port}"
        config = tmp_path / "schemathesis.toml"
        config.write_text(_config(shop.key, known, quick=examples <= QUICK_EXAMPLES))
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{base}/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            str(examples),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--suppress-health-check",
            "all",
        ]
        done = await asyncio.to_thread(
            subprocess.run, command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False
        )
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
    output = done.stdout + done.stderr
    (tmp_path / "schemathesis.txt").write_text(output)  # the whole report, when the excerpt below is not enough
    failures = output[output.find("=== FAILURES") :] if "=== FAILURES" in output else output[-6000:]
    server_errors = [line for line in log.read_text(errors="replace").splitlines() if "Error" in line][-20:]
    return done.returncode, failures[:12000] + "\n--- server log ---\n" + "\n".join(server_errors)


async def test_the_whole_api_answers_no_5xx_and_matches_its_schema(
    shop: ShopCtx, database_url: str, tmp_path: Path
) -> None:
    code, report = await fuzz(shop, database_url, tmp_path, examples=QUICK_EXAMPLES)
    assert code == 0, report


@pytest.mark.slow
async def test_the_whole_api_under_a_long_fuzz(shop: ShopCtx, database_url: str, tmp_path: Path) -> None:
    """`make fuzz`: the same run with many more examples per operation (LIVELOOP_FUZZ_EXAMPLES)."""
    code, report = await fuzz(shop, database_url, tmp_path, examples=LONG_EXAMPLES)
    assert code == 0, report
