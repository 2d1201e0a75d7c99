"""The outbox worker against real HTTP receivers on 127.0.0.1, well-behaved and not."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from liveloop.events.service import fan_out
from liveloop.events.worker import Worker
from liveloop.jobs import JOBS
from liveloop.kit.db import transaction
from liveloop.kit.signing import timestamped_signature
from liveloop.kit.time import utc_now
from liveloop.models import Interaction, WebhookDelivery
from tests.conftest import ShopCtx, make_shop
from tests.events.conftest import RawServer, Receiver
from tests.factories import create_member, ok
from tests.live.conftest import live_show


async def register(shop: ShopCtx, url: str, event_types: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if event_types is not None:
        body["event_types"] = event_types
    return ok(await shop.api.post("/v1/webhook-endpoints", json=body), 201)


async def deliveries(shop: ShopCtx) -> list[WebhookDelivery]:
    async with transaction(shop.app.state.sessions) as s:
        query = select(WebhookDelivery).where(WebhookDelivery.shop_id == shop.shop.id).order_by(WebhookDelivery.id)
        return list((await s.execute(query)).scalars())


async def eventually(check: Callable[[], Any], within: float = 5.0) -> float:
    """Wait until ``check()`` is true (it may be a coroutine function); return the seconds it took."""
    start = time.monotonic()
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        assert time.monotonic() - start < within, "timed out"
        await asyncio.sleep(0.02)


async def test_events_are_delivered_signed_and_retried(
    shop: ShopCtx, receiver: Receiver, private_targets: None, worker: Worker
) -> None:
    endpoint = await register(shop, receiver.url, ["member.created"])
    receiver.fail_next = 1
    member = await create_member(shop.api)
    assert await worker.deliver_due() == 1  # first attempt: 503
    assert receiver.received == []
    [delivery] = await deliveries(shop)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 503)
    assert delivery.next_attempt_at > utc_now()
    async with transaction(shop.app.state.sessions) as s:
        await s.execute(update(WebhookDelivery).values(next_attempt_at=utc_now()))
    assert await worker.deliver_due() == 1
    [(headers, body)] = receiver.received
    event = orjson.loads(body)
    assert event["type"] == "member.created"
    assert event["data"]["member_id"] == member["id"]
    assert headers["X-Liveloop-Event-Id"] == event["id"]
    assert headers["X-Liveloop-Event-Type"] == "member.created"
    expected = timestamped_signature(endpoint["secret"], int(headers["X-Liveloop-Timestamp"]), body)
    assert headers["X-Liveloop-Signature"] == expected


async def test_a_worker_killed_after_claiming_loses_nothing(
    shop: ShopCtx, receiver: Receiver, private_targets: None
) -> None:
    await register(shop, receiver.url)
    await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        assert await fan_out(s) == 1  # the event becomes one delivery per subscribed endpoint
    dead = Worker(shop.app.state.sessions, allow_private_targets=True)
    claimed = await dead._claim()  # claimed, then the process "dies" before sending
    await dead.close()
    assert len(claimed) == 1
    alive = Worker(shop.app.state.sessions, allow_private_targets=True)
    try:
        assert await alive.deliver_due() == 0  # the lease still holds
        async with transaction(shop.app.state.sessions) as s:
            await s.execute(update(WebhookDelivery).values(locked_until=utc_now() - timedelta(seconds=1)))
        assert await alive.deliver_due() == 1
    finally:
        await alive.close()
    assert len(receiver.received) == 1


async def test_events_without_subscribers_are_kept_in_the_log(shop: ShopCtx) -> None:
    await create_member(shop.api)
    events = ok(await shop.api.get("/v1/events"))["items"]
    assert [e["type"] for e in events] == ["member.created"]


async def test_worker_runs_scheduled_jobs(shop: ShopCtx) -> None:
    from liveloop.ledger import service as ledger

    member = await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        await ledger.grant(
            s, shop.shop.id, member["id"], ledger.POINTS, 9, expires_at=utc_now() + timedelta(milliseconds=50)
        )
    await asyncio.sleep(0.1)
    worker = Worker(shop.app.state.sessions, jobs=JOBS)
    try:
        assert await worker.run_once() >= 1
    finally:
        await worker.close()
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))
    assert body["balances"][0]["available"] == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_address_is_checked_again_when_connecting(
    shop: ShopCtx, receiver: Receiver, private_targets: None, host: str
) -> None:
    """Registered while private targets were allowed (or resolving elsewhere then): a worker that does not
    allow them sends nothing there, and the delivery says why."""
    await register(shop, receiver.url.replace("127.0.0.1", host))
    await create_member(shop.api)
    strict = Worker(shop.app.state.sessions)
    try:
        assert await strict.deliver_due() == 1
    finally:
        await strict.close()
    assert receiver.connections == 0
    assert receiver.received == []
    [delivery] = await deliveries(shop)
    assert delivery.status == "pending"
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("forbidden_webhook_target: 127.0.0.1 is a loopback address")
    assert delivery.next_attempt_at > utc_now()  # retried later, like any failed attempt


async def test_redirects_are_not_followed(shop: ShopCtx, private_targets: None, worker: Worker) -> None:
    target, redirecting = Receiver(), Receiver()
    try:
        redirecting.status = 307
        redirecting.headers = {"Location": target.url}
        await register(shop, redirecting.url)
        await create_member(shop.api)
        assert await worker.deliver_due() == 1
        [delivery] = await deliveries(shop)
    finally:
        target.close()
        redirecting.close()
    assert len(redirecting.received) == 1
    assert target.connections == 0
    assert delivery.status == "pending"
    assert delivery.last_status_code == 307
    assert delivery.last_error is not None
    assert "redirects are not followed" in delivery.last_error


async def test_a_hanging_trickling_or_huge_endpoint_delays_no_other_shop_nor_the_scheduled_jobs(
    shop: ShopCtx, receiver: Receiver, private_targets: None
) -> None:
    hang, trickle, huge = RawServer("hang"), RawServer("trickle"), RawServer("huge")
    other = await make_shop(shop.app, "beta")
    runner = Worker(
        shop.app.state.sessions,
        jobs=JOBS,
        poll_seconds=0.05,
        timeout_seconds=3.0,
        endpoint_concurrency=2,
        allow_private_targets=True,
    )
    task = asyncio.create_task(runner.run_forever())
    try:
        for server in (hang, trickle, huge):
            await register(shop, server.url, ["member.created"])
        await register(other, receiver.url, ["member.created"])
        show = await live_show(shop)
        poll = ok(
            await shop.api.post(
                f"/v1/shows/{show['id']}/interactions",
                json={"kind": "poll", "question": "Next?", "options": ["Red", "Blue"], "window_seconds": 600},
            ),
            201,
        )
        for _ in range(3):
            await create_member(shop.api)
        # The hanging and trickling endpoints now hold connections, up to their cap of two each.
        await eventually(lambda: hang.open == 2 and trickle.open == 2)
        started = time.monotonic()

        # Meanwhile another shop's event goes out at once…
        await create_member(other.api)
        arrived = await eventually(lambda: len(receiver.received) == 1)
        # …and an interaction that comes due is settled by its job.
        async with transaction(shop.app.state.sessions) as s:
            await s.execute(update(Interaction).where(Interaction.id == poll["id"]).values(closes_at=utc_now()))

        async def settled() -> bool:
            body = ok(await shop.api.get(f"/v1/shows/{show['id']}/interactions"))["items"]
            return bool(body[0]["status"] == "settled")

        await eventually(settled)
        assert time.monotonic() - started < 2.5, "it waited for the slow endpoints"
        assert arrived < 1.5
        assert hang.open == 2
        assert trickle.open == 2
        assert hang.accepted == 2  # the third delivery waits for a free slot of its endpoint

        # Each attempt ends at its deadline; the huge answer is read only as far as the limit.
        snapshot: list[WebhookDelivery] = []

        async def all_attempted() -> bool:
            snapshot[:] = await deliveries(shop)
            return len(snapshot) == 9 and all(d.last_error or d.status == "delivered" for d in snapshot)

        await eventually(all_attempted, within=10)
        endpoints = {e["id"]: e["url"] for e in ok(await shop.api.get("/v1/webhook-endpoints"))["items"]}
    finally:
        for server in (hang, trickle, huge):
            server.close()
        runner.stop()
        await task
        await runner.close()
        await other.api.aclose()
    by_url: dict[str, list[WebhookDelivery]] = {}
    for d in snapshot:
        by_url.setdefault(endpoints[d.endpoint_id], []).append(d)
    for d in by_url[huge.url]:
        assert d.status == "delivered"
        assert d.last_status_code == 200
    assert huge.closed_by_peer == 3
    assert max(huge.sent) < 64 * 1024 * 1024
    for url in (hang.url, trickle.url):
        for d in by_url[url]:
            assert d.status == "pending"
            assert d.last_error is not None
            assert d.last_error.startswith("DeadlineExceeded"), d.last_error


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_liveloop_worker_delivers_and_runs_jobs_beside_a_hanging_endpoint(
    shop: ShopCtx, receiver: Receiver, private_targets: None, database_url: str, stop_signal: signal.Signals
) -> None:
    """`liveloop worker` on its own, as a deployment runs it apart from the API: both loops run.

    Ctrl-C and SIGTERM stop it between passes, with every transaction whole, and it exits 0.
    """
    from liveloop.ledger import service as ledger

    hang = RawServer("hang")
    await register(shop, hang.url)
    await create_member(shop.api)  # its delivery to the hanging endpoint holds a connection from the start
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "liveloop.cli", "worker", "--database-url", database_url),
        env={
            **os.environ,
            "LIVELOOP_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "LIVELOOP_WORKER_POLL_SECONDS": "0.05",
            "LIVELOOP_WEBHOOK_TIMEOUT_SECONDS": "30",
            "LIVELOOP_SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
            "LIVELOOP_LOG_LEVEL": "warning",
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(lambda: hang.open == 1, within=30)
        await register(shop, receiver.url)
        member = await create_member(shop.api)
        async with transaction(shop.app.state.sessions) as s:
            await ledger.grant(
                s, shop.shop.id, member["id"], ledger.POINTS, 9, expires_at=utc_now() + timedelta(milliseconds=50)
            )

        async def expired() -> bool:
            body = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))
            return bool(body["balances"][0]["available"] == 0)

        await eventually(lambda: len(receiver.received) == 1, within=5)
        await eventually(expired, within=5)
        assert hang.open >= 1  # still hanging all along
    finally:
        hang.close()
        proc.send_signal(stop_signal)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (await proc.stderr.read()).decode() if proc.stderr else proc.returncode
    assert orjson.loads(receiver.received[0][1])["data"]["member_id"] == member["id"]


async def test_a_stopping_worker_does_not_wait_for_a_hanging_endpoint_and_loses_nothing(
    shop: ShopCtx, private_targets: None
) -> None:
    """Stopping cancels an attempt still hanging after a short grace; its delivery stays queued for a retry."""
    hang = RawServer("hang")
    try:
        await register(shop, hang.url)
        await create_member(shop.api)
        worker = Worker(shop.app.state.sessions, poll_seconds=0.01, timeout_seconds=60, allow_private_targets=True)
        runner = asyncio.create_task(worker.run_forever())
        await eventually(lambda: hang.open == 1, within=10)
        started = time.monotonic()
        worker.stop()
        await runner
        await worker.close(grace_seconds=0.5)
        assert time.monotonic() - started < 5  # not the attempt's 60 s deadline
        async with shop.app.state.sessions() as s:
            delivery = (await s.execute(select(WebhookDelivery))).scalar_one()
        assert delivery.status == "pending"
        assert delivery.delivered_at is None
    finally:
        hang.close()
