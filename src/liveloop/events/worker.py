"""The worker: delivers queued webhooks and runs the due scheduled jobs. Safe to run in several processes.

Deliveries are claimed with a lease (``locked_until``) in a short transaction, sent without holding a
database connection, then marked. A worker killed between claim and mark leaves the lease to expire, and
the delivery is sent again: at least once, with the event id for receivers to dedupe on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveloop.events.service import backoff, envelope, fan_out
from liveloop.kit.db import transaction
from liveloop.kit.signing import timestamped_signature
from liveloop.kit.sql import for_update
from liveloop.kit.time import utc_now
from liveloop.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("liveloop.worker")
LEASE = timedelta(seconds=60)

Job = Callable[[AsyncSession], Awaitable[int]]


class Worker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        jobs: Sequence[tuple[str, Job]] | None = None,
        poll_seconds: float = 0.5,
        timeout_seconds: float = 10.0,
        max_attempts: int = 12,
        batch: int = 50,
    ) -> None:
        self.sessions = sessions
        self.jobs = list(jobs or [])
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.batch = batch
        self.client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False)
        self._stop = asyncio.Event()

    async def close(self) -> None:
        await self.client.aclose()

    def stop(self) -> None:
        self._stop.set()

    async def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("worker pass failed; retrying")
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=self.poll_seconds)

    async def run_once(self) -> int:
        """One pass: scheduled jobs, then one batch of deliveries. Returns how much work was done."""
        done = 0
        for name, job in self.jobs:
            try:
                async with transaction(self.sessions) as session:
                    done += await job(session)
            except Exception:
                log.exception("job %s failed; it will run again on the next pass", name)
        done += await self.deliver_due()
        return done

    async def deliver_due(self) -> int:
        async with transaction(self.sessions) as session:
            await fan_out(session)
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._deliver(*item) for item in claimed))
        return len(claimed)

    async def _claim(self) -> list[tuple[str, str, str, bytes]]:
        now = utc_now()
        async with transaction(self.sessions) as session:
            query = (
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(self.batch)
            )
            if for_update(session):
                query = query.with_for_update(skip_locked=True)
            ids = list((await session.execute(query)).scalars())
            if not ids:
                return []
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(locked_until=now + LEASE, attempts=WebhookDelivery.attempts + 1)
            )
            rows = (
                await session.execute(
                    select(WebhookDelivery.id, WebhookEndpoint.url, WebhookEndpoint.secret, OutboxEvent)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                    .where(WebhookDelivery.id.in_(ids))
                )
            ).all()
            return [(r[0], r[1], r[2], orjson.dumps(envelope(r[3]))) for r in rows]

    async def _deliver(self, delivery_id: str, url: str, secret: str, body: bytes) -> None:
        timestamp = int(time.time())
        event_id = orjson.loads(body)["id"]
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "liveloop-webhooks/1",
            "X-Liveloop-Event-Id": event_id,
            "X-Liveloop-Timestamp": str(timestamp),
            "X-Liveloop-Signature": timestamped_signature(secret, timestamp, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await self.client.post(url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        async with transaction(self.sessions) as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None:
                return
            delivery.last_status_code = status
            delivery.locked_until = None
            if error is None:
                delivery.status = "delivered"
                delivery.delivered_at = utc_now()
                delivery.last_error = None
            else:
                delivery.last_error = error
                if delivery.attempts >= self.max_attempts:
                    delivery.status = "failed"
                    log.warning("webhook %s to %s failed for good: %s", event_id, _redacted(url), error)
                else:
                    delivery.next_attempt_at = utc_now() + backoff(delivery.attempts)


def _redacted(url: str) -> str:
    """An endpoint URL fit for logs: no credentials, no query string (either may carry a token)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
