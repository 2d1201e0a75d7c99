"""The worker: delivers queued webhooks and runs the due scheduled jobs. Safe to run in several processes.

Two loops that never wait for each other: one runs the scheduled jobs (settlement, reward release,
expiry, cues, scoreboards), the other hands out deliveries. Each delivery runs as its own task, at most
``endpoint_concurrency`` per endpoint and ``concurrency`` in all, and each attempt has one deadline for
connect, send and read; so an endpoint that hangs, trickles or answers gigabytes holds up only its own
deliveries.

Deliveries are claimed with a lease (``locked_until``) in a short transaction, sent without holding a
database connection, then marked. A worker killed between claim and mark leaves the lease to expire, and
the delivery is sent again: at least once, with the event id for receivers to dedupe on.

Every connection goes through ``kit.netguard``: the address actually connected to must be a public one
(unless private targets are allowed), whatever the endpoint's host resolved to when it was registered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveloop.events.repository import WebhookDeliveryRepository
from liveloop.events.service import backoff, envelope, fan_out, signing_secrets
from liveloop.kit.db import transaction
from liveloop.kit.netguard import GuardedTransport, TargetRefused
from liveloop.kit.signing import timestamped_signature
from liveloop.kit.time import utc_now
from liveloop.models import DeliveryStatus

if TYPE_CHECKING:
    from liveloop.config import Settings

log = logging.getLogger("liveloop.worker")
SHUTDOWN_GRACE_SECONDS = 5.0  # how long a stopping worker lets attempts under way finish
LEASE = timedelta(seconds=60)

Job = Callable[[AsyncSession], Awaitable[int]]


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease of, with what it needs to send it."""

    delivery_id: str
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    event_id: str
    event_type: str
    body: bytes


@dataclass
class Outcome:
    status: int | None = None
    error: str | None = None  # stored on the delivery, shown to the operator
    error_class: str | None = None  # what the log says


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
        concurrency: int = 32,
        endpoint_concurrency: int = 4,
        max_response_bytes: int = 64 * 1024,
        allow_private_targets: bool = False,
    ) -> None:
        self.sessions = sessions
        self.jobs = list(jobs or [])
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.batch = batch
        self.concurrency = concurrency
        self.endpoint_concurrency = endpoint_concurrency
        self.max_response_bytes = max_response_bytes
        # The lease outlives any attempt, so no other worker sends the same delivery while this one is at it.
        self.lease = max(LEASE, timedelta(seconds=2 * timeout_seconds + 5))
        self.client = httpx.AsyncClient(
            transport=GuardedTransport(allow_private=allow_private_targets, max_connections=concurrency),
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            trust_env=False,  # no proxies or .netrc from the environment: connections go where the guard says
        )
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recording: set[asyncio.Task[None]] = set()  # the tasks writing their outcome (never cancelled)
        self._in_flight: dict[str, int] = {}

    @classmethod
    def from_settings(
        cls, sessions: async_sessionmaker[AsyncSession], settings: Settings, *, jobs: Sequence[tuple[str, Job]]
    ) -> Worker:
        return cls(
            sessions,
            jobs=jobs,
            poll_seconds=settings.worker_poll_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            max_attempts=settings.webhook_max_attempts,
            concurrency=settings.webhook_concurrency,
            endpoint_concurrency=settings.webhook_endpoint_concurrency,
            max_response_bytes=settings.webhook_max_response_bytes,
            allow_private_targets=settings.webhook_allow_private_targets,
        )

    async def close(self, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Give attempts under way a short grace to finish, then close the HTTP client.

        An attempt still sending after the grace (a slow endpoint) is cancelled: its lease expires and the next
        worker sends it again, so stopping never waits for a hanging endpoint's whole deadline. An attempt that
        is already recording its outcome is never cancelled (a transaction cut short is not rolled back cleanly
        on every driver); it is waited for.
        """
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=min(grace_seconds, self.timeout_seconds + 1))
            for task in self._tasks - self._recording:  # their leases expire and another pass sends them again
                task.cancel()
            if self._tasks:
                await asyncio.wait(set(self._tasks))
        await self.client.aclose()

    def stop(self) -> None:
        self._stop.set()

    async def run_forever(self) -> None:
        """The jobs loop and the deliveries loop, side by side, until ``stop()``."""
        await asyncio.gather(self._loop("jobs", self.run_jobs), self._loop("deliveries", self.dispatch, self._wake))

    async def _loop(self, name: str, step: Callable[[], Awaitable[int]], wake: asyncio.Event | None = None) -> None:
        while not self._stop.is_set():
            try:
                busy = await step()
            except Exception:
                log.exception("worker %s pass failed; retrying", name)
                busy = 0
            if busy:
                await asyncio.sleep(0)  # let the other loop and the deliveries run
                continue
            waits = [asyncio.ensure_future(self._stop.wait())]
            if wake is not None:
                waits.append(asyncio.ensure_future(wake.wait()))
            try:
                await asyncio.wait(waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            if wake is not None:
                wake.clear()

    async def run_jobs(self) -> int:
        """Each scheduled job once, each in its own transaction. Returns how much work was done."""
        done = 0
        for name, job in self.jobs:
            try:
                async with transaction(self.sessions) as session:
                    done += await job(session)
            except Exception:
                log.exception("job %s failed; it will run again on the next pass", name)
        return done

    async def run_once(self) -> int:
        """One pass of both: the scheduled jobs, then the due deliveries (waiting for them)."""
        return await self.run_jobs() + await self.deliver_due()

    async def dispatch(self) -> int:
        """Fan out new events, then start the due deliveries there is room for, without waiting for them."""
        async with transaction(self.sessions) as session:
            fanned = await fan_out(session)
        room = min(self.batch, self.concurrency - len(self._tasks))
        started = [self._start(item) for item in await self._claim(room)] if room > 0 else []
        return fanned + len(started)

    async def deliver_due(self) -> int:
        """Fan out, claim what is due (within the concurrency limits) and deliver it, waiting for the answers."""
        async with transaction(self.sessions) as session:
            await fan_out(session)
        tasks = [self._start(item) for item in await self._claim(self.batch)]
        if tasks:
            await asyncio.wait(tasks)
        return len(tasks)

    def _start(self, item: Claimed) -> asyncio.Task[None]:
        self._in_flight[item.endpoint_id] = self._in_flight.get(item.endpoint_id, 0) + 1
        task = asyncio.create_task(self._deliver(item), name=f"liveloop-webhook-{item.delivery_id}")
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            left = self._in_flight.pop(item.endpoint_id, 1) - 1
            if left > 0:
                self._in_flight[item.endpoint_id] = left
            self._wake.set()  # a slot is free: the deliveries loop looks for more work now
            if not done.cancelled() and done.exception() is not None:
                log.error(
                    "webhook delivery %s could not be recorded (%s); it is sent again once its lease expires",
                    item.delivery_id,
                    type(done.exception()).__name__,
                )

        task.add_done_callback(finished)
        return task

    async def _claim(self, limit: int | None = None) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries of active endpoints, none beyond an endpoint's free slots.

        Each endpoint's oldest due deliveries come first, the endpoints taking turns, so a backlog at one
        endpoint does not fill the batch.
        """
        limit = self.batch if limit is None else limit
        if limit <= 0:
            return []
        now = utc_now()
        full = [e for e, n in self._in_flight.items() if n >= self.endpoint_concurrency]
        async with transaction(self.sessions) as session:
            deliveries = WebhookDeliveryRepository(session)
            candidates = await deliveries.due_by_turn(
                now, per_endpoint=self.endpoint_concurrency, limit=limit * 2, skip_endpoints=full
            )
            taken: dict[str, int] = {}
            chosen: list[str] = []
            for delivery_id, endpoint_id in candidates:
                if self._in_flight.get(endpoint_id, 0) + taken.get(endpoint_id, 0) >= self.endpoint_concurrency:
                    continue
                taken[endpoint_id] = taken.get(endpoint_id, 0) + 1
                chosen.append(delivery_id)
                if len(chosen) >= limit:
                    break
            if not chosen:
                return []
            # Lock what is still due (another worker may have leased some meanwhile) and lease it.
            ids = await deliveries.lock_still_due(chosen, now)
            if not ids:
                return []
            await deliveries.lease(ids, now, now + self.lease)
            rows = await deliveries.to_send(ids)
            order = {delivery_id: i for i, delivery_id in enumerate(ids)}
            return sorted(
                (
                    Claimed(
                        delivery_id=r[0],
                        endpoint_id=r[1],
                        url=r[2],
                        secrets=tuple(signing_secrets(r[3], r[4], r[5], now)),
                        event_id=r[6].id,
                        event_type=r[6].type,
                        body=orjson.dumps(envelope(r[6])),
                    )
                    for r in rows
                ),
                key=lambda c: order[c.delivery_id],
            )

    async def _send(self, item: Claimed) -> Outcome:
        """One attempt: POST the event, read at most ``max_response_bytes`` of the answer, all within the deadline."""
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "liveloop-webhooks/1",
            "Accept-Encoding": "identity",  # the answer is counted as it arrives, never inflated
            "X-Liveloop-Event-Id": item.event_id,
            "X-Liveloop-Event-Type": item.event_type,
            "X-Liveloop-Timestamp": str(timestamp),
            # One v1= per valid secret: during a rotation's overlap both the new and the old one sign.
            "X-Liveloop-Signature": ",".join(timestamped_signature(s, timestamp, item.body) for s in item.secrets),
        }
        outcome = Outcome()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                async with self.client.stream("POST", item.url, content=item.body, headers=headers) as response:
                    outcome.status = response.status_code
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= self.max_response_bytes:
                            break  # enough: the connection is closed instead of drained
        except TimeoutError:
            if outcome.status is None:  # an answer whose status came in time counts, even if its body did not
                outcome.error_class = "DeadlineExceeded"
                outcome.error = (
                    f"DeadlineExceeded: no answer within {self.timeout_seconds:g} s (connect, send and read)."
                )
        except TargetRefused as refused:
            outcome.error_class = "ForbiddenTarget"
            outcome.error = f"forbidden_webhook_target: {refused.reason}"
        except httpx.HTTPError as exc:
            outcome.error_class = type(exc).__name__
            outcome.error = f"{outcome.error_class}: {exc}"[:500] if str(exc) else outcome.error_class
        if outcome.error is None and outcome.status is not None and not 200 <= outcome.status < 300:
            outcome.error_class = "HTTPStatus"
            outcome.error = f"HTTP {outcome.status}" + (
                " (redirects are not followed; register the final URL)" if 300 <= outcome.status < 400 else ""
            )
        return outcome

    async def _deliver(self, item: Claimed) -> None:
        try:
            outcome = await self._send(item)
        except Exception as exc:  # never lose the task to a surprise: record it like any failed attempt
            outcome = Outcome(error_class=type(exc).__name__, error=f"{type(exc).__name__} while sending")
        task = asyncio.current_task()
        assert task is not None
        self._recording.add(task)
        try:
            await self._record(item, outcome)
        finally:
            self._recording.discard(task)

    async def _record(self, item: Claimed, outcome: Outcome) -> None:
        async with transaction(self.sessions) as session:
            delivery = await WebhookDeliveryRepository(session).by_id(item.delivery_id)
            if delivery is None:  # the endpoint was deleted meanwhile, and its deliveries with it
                return
            delivery.last_status_code = outcome.status
            delivery.locked_until = None
            if outcome.error is None:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = utc_now()
                delivery.last_error = None
                return
            delivery.last_error = outcome.error
            final = delivery.attempts >= self.max_attempts
            if final:
                delivery.status = DeliveryStatus.FAILED
            else:
                delivery.next_attempt_at = utc_now() + backoff(delivery.attempts)
            attempts = delivery.attempts
        # Ids, status and the kind of error only: never the URL, a secret or a body.
        log.warning(
            "webhook delivery %s failed%s: endpoint=%s event=%s type=%s attempt=%d status=%s error=%s",
            item.delivery_id,
            " for good" if final else "; it will be retried",
            item.endpoint_id,
            item.event_id,
            item.event_type,
            attempts,
            outcome.status if outcome.status is not None else "-",
            outcome.error_class,
        )
