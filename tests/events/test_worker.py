"""The outbox worker against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from liveloop.events.service import fan_out
from liveloop.events.worker import Worker
from liveloop.kit.db import transaction
from liveloop.kit.signing import timestamped_signature
from liveloop.kit.time import utc_now
from liveloop.models import WebhookDelivery
from tests.conftest import ShopCtx
from tests.factories import create_member, ok


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    self.send_response(503)
                else:
                    receiver.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def test_events_are_delivered_signed_and_retried(shop: ShopCtx, receiver: Receiver) -> None:
    endpoint = ok(
        await shop.api.post("/v1/webhook-endpoints", json={"url": receiver.url, "event_types": ["member.created"]}), 201
    )
    receiver.fail_next = 1
    member = await create_member(shop.api)
    worker = Worker(shop.app.state.sessions, poll_seconds=0.01)
    try:
        assert await worker.deliver_due() == 1  # first attempt: 503
        assert receiver.received == []
        async with transaction(shop.app.state.sessions) as s:
            delivery = (await s.execute(select(WebhookDelivery))).scalar_one()
            assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 503)
            assert delivery.next_attempt_at > utc_now()
            await s.execute(update(WebhookDelivery).values(next_attempt_at=utc_now()))
        assert await worker.deliver_due() == 1
    finally:
        await worker.close()
    [(headers, body)] = receiver.received
    event = orjson.loads(body)
    assert event["type"] == "member.created" and event["data"]["member_id"] == member["id"]
    assert headers["X-Liveloop-Event-Id"] == event["id"]
    expected = timestamped_signature(endpoint["secret"], int(headers["X-Liveloop-Timestamp"]), body)
    assert headers["X-Liveloop-Signature"] == expected


async def test_a_worker_killed_after_claiming_loses_nothing(shop: ShopCtx, receiver: Receiver) -> None:
    ok(await shop.api.post("/v1/webhook-endpoints", json={"url": receiver.url}), 201)
    await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        assert await fan_out(s) == 1  # the event becomes one delivery per subscribed endpoint
    dead = Worker(shop.app.state.sessions)
    claimed = await dead._claim()  # claimed, then the process "dies" before sending
    await dead.close()
    assert len(claimed) == 1
    alive = Worker(shop.app.state.sessions)
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
    from liveloop.jobs import JOBS
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
