"""The ASGI application: routers, error handlers, and a lifespan that owns the database and the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import Depends, FastAPI
from pydantic import BaseModel
from starlette.types import ASGIApp, Scope

from liveloop import __version__
from liveloop.config import Settings, get_settings
from liveloop.coupons.endpoints import router as coupons_router
from liveloop.coupons.tasks import GENERATOR_KEY, BatchGenerator
from liveloop.database import session_factory
from liveloop.events.endpoints import router as events_router
from liveloop.events.worker import Worker
from liveloop.jobs import JOBS
from liveloop.kit import openapi
from liveloop.kit.db import create_engine, ping, transaction
from liveloop.kit.edge import Edge
from liveloop.kit.http import install_error_handlers
from liveloop.kit.ratelimit import Rate, RateLimiter, RateLimitMiddleware, RateRule, create_buckets, document_limits
from liveloop.kit.schemas import clean_parameters
from liveloop.ledger.endpoints import members as ledger_members
from liveloop.ledger.endpoints import router as ledger_router
from liveloop.live.aliases import SECRET_INFO_KEY
from liveloop.live.bus import create_bus
from liveloop.live.endpoints import public as live_public
from liveloop.live.endpoints import router as live_router
from liveloop.live.gateway import Gateway, RoomSockets
from liveloop.live.notify import RELAY_KEY, RoomRelay
from liveloop.live.presence import EffectiveView
from liveloop.live.service import apply_effective_view
from liveloop.markets.endpoints import routes as markets_routes
from liveloop.members import devices
from liveloop.members.endpoints import router as members_router
from liveloop.orders.endpoints import router as orders_router
from liveloop.referral.clicks import ClickRecorder, InviteLinkMiddleware
from liveloop.referral.endpoints import members as referral_members
from liveloop.referral.endpoints import public as public_router
from liveloop.referral.endpoints import router as referral_router
from liveloop.shops.auth import requires
from liveloop.shops.endpoints import router as shops_router
from liveloop.web.docs import docs as web_docs
from liveloop.web.errors import router as error_codes_router
from liveloop.web.pages import pages as web_pages
from liveloop.web.pages import share as web_share
from liveloop.web.pages import static_files

log = logging.getLogger("liveloop")

DESCRIPTION = """
The growth engine for cross-border live commerce. This API covers shops and their API keys, markets,
members and their consents, orders in by signed webhook (generic JSON and Shopify), the points, tickets and
store-credit ledger, coupons, referral campaigns (invite links, attribution, two-sided rewards, milestones,
lottery draws, VIP groups, fraud review), events out by signed webhook, and **the live room**: shows, viewer
and host tokens, interactions (polls, quizzes, lotteries, like sprints, flash offers, team PK), moderation and
the co-host queue. The viewer page (`/live/{show}`, embeddable with `/embed.js`) and the host console
(`/console/{show}`) run on this API. Lifecycle messaging and analytics come in later releases.

Operators authenticate with an API key (`Authorization: Bearer ll_…`) whose scopes limit what it may do.
Every write accepts an `Idempotency-Key` header: a retry with the same key and body returns the first answer
(bodies compare as JSON: key order and whitespace do not matter). An answer that showed a secret once (an API
key, a signing secret, a token) is never kept, so its replay answers 409 `secret_shown_once`.

Every error has the body `{"error": {"code", "message", "details"}}`: a stable `code` to branch on and a
`message` that says how to fix the request. Bodies are JSON (`Content-Type: application/json`, else 415) of
at most 1 MB by default (else 413). Every response carries an `X-Request-Id`, also found in the server's logs.

Bodies are parsed strictly (no string for a number, no unknown field) and every input is bounded.
Lists answer `{"items": [...], "next_cursor": "…" | null}`: `limit` 1-200 (50 by default), and
`cursor=<next_cursor>` for the next page.

**Invite links** are `GET /r/{shop}/{code}?ch={channel}&show={show}&host={host}` (public). They record the
click and answer 302 to the shop's landing page with `ll_ref`, `ll_click`, `ll_ch` (and `ll_show`,
`ll_host`) in the query, plus a device cookie for first-touch attribution. Pass `ll_click` as
`referral.click_id` when creating the member. An unknown code answers 404 `unknown_invite_code`.

**Devices** are issued by the server: the `ll_did` cookie holds a value liveloop signed, and the invite link
and the room's join give a browser without a valid one a fresh device (never the value it sent). Where the
shop's backend passes a browser's device (`device_id`), it passes that cookie's value as it is; any other
value answers 422 `invalid_device`.

**Public endpoints** (invite links and everything under `/v1/public/` but provider webhooks) are rate limited
per client address and per verified device: beyond the limit they answer 429 `rate_limited` with `Retry-After`.

**Error codes** are a catalogue: [/docs/errors](/docs/errors) lists each `code` with its status, what it means
and how to fix the request, grouped by domain (the same as JSON: `GET /v1/error-codes`).
"""


# Abuse limits of the public endpoints (kit/ratelimit.py), checked before routing; the first match counts.
PUBLIC_PREFIXES = ("/r/", "/v1/public/")
PUBLIC_LIMITS = [
    RateRule(r"^/r/[^/]+/[^/]+$", "click"),
    RateRule(r"^/v1/public/shows/[^/]+/join$", "join"),
    RateRule(r"^/v1/public/draws/verify$", "verify", cost=50),  # up to 100,000 tickets to recompute
    RateRule(r"^/v1/public/webhooks/", None),  # signed by the video provider, which sends bursts from few addresses
    RateRule(r"^/v1/public/", "public"),
]


def _verified_device(scope: Scope, cookie_header: str) -> str | None:
    """The device a public request's ``ll_did`` cookie proves (per-device rate limits count only those)."""
    return devices.from_cookie_header(scope["app"].state.settings.secret_key, cookie_header)


async def start_services(app: FastAPI, settings: Settings, *, worker: bool) -> Callable[[], Awaitable[None]]:
    """Open the database, the room bus and gateway, the click recorder and (optionally) the worker.

    Returns the function that stops them again, in reverse order.
    """
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    app.state.engine = engine
    bus = create_bus(settings.bus_url)
    app.state.sessions = session_factory(engine)
    relay = RoomRelay(app.state.sessions, bus)
    coupon_batches = BatchGenerator(app.state.sessions)
    app.state.sessions.configure(
        info={RELAY_KEY: relay, GENERATOR_KEY: coupon_batches, SECRET_INFO_KEY: settings.secret_key}
    )
    app.state.clicks = ClickRecorder(app.state.sessions)
    app.state.rate_limiter = RateLimiter(
        create_buckets(settings.rate_limit_url, max_keys=settings.rate_limit_max_keys),
        secret=settings.secret_key,
        per_ip=Rate(settings.rate_limit_ip_per_minute, settings.rate_limit_ip_burst),
        per_device=Rate(settings.rate_limit_device_per_minute, settings.rate_limit_device_burst),
    )
    gateway = Gateway(
        app.state.sessions,
        bus,
        secret=settings.secret_key,
        frame_ms=settings.frame_ms,
        sockets_per_ip=settings.room_sockets_per_ip,
        sockets_per_viewer=settings.room_sockets_per_viewer,
    )

    async def effective_view(view: EffectiveView) -> None:
        async with transaction(app.state.sessions) as session:
            await apply_effective_view(session, view.shop_id, view.member_id or "")

    gateway.on_effective_view = effective_view
    await gateway.start()
    await relay.start()  # after the gateway: it publishes on the bus the gateway started
    app.state.gateway = gateway
    app.state.relay = relay
    app.state.coupon_batches = coupon_batches
    coupon_batches.kick()  # finish any batch a stopped process left half-made
    runner: Worker | None = None
    task: asyncio.Task[None] | None = None
    if worker:
        runner = Worker.from_settings(app.state.sessions, settings, jobs=JOBS)
        task = asyncio.create_task(runner.run_forever(), name="liveloop-worker")

    audience: asyncio.Task[None] | None = None
    if settings.demo_show_id:
        from liveloop.live import simulator

        audience = asyncio.create_task(simulator.run(gateway, settings.demo_show_id), name="liveloop-demo-audience")

    async def stop() -> None:
        if audience is not None:
            audience.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await audience
        if runner is not None and task is not None:
            runner.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await runner.close()
        await coupon_batches.close()
        await relay.close()
        await gateway.close()
        await app.state.clicks.close()
        await app.state.rate_limiter.close()
        await engine.dispose()

    return stop


class LiveloopAPI(FastAPI):
    """The application, with :class:`~liveloop.kit.edge.Edge` in front of everything else in it.

    Edge wraps even the framework's outermost error middleware, so a 500 gets a request id and an access-log
    line too, and the body limit holds before any other middleware (invite links, sockets) sees the request.
    """

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        return Edge(super().build_middleware_stack(), max_body_bytes=settings.max_body_bytes)


class Health(BaseModel):
    """The answer of ``/healthz``: the process serves, and its database answered."""

    status: Literal["ok"]
    version: str


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = await start_services(app, settings, worker=settings.run_worker)
        try:
            yield
        finally:
            await stop()

    app = LiveloopAPI(
        title="liveloop",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by web/docs.py from local files, with a Content-Security-Policy
        redoc_url=None,
        # Ahead of every route: a NUL or lone surrogate in a path or query parameter is a 422.
        dependencies=[Depends(clean_parameters)],
    )
    app.state.settings = settings
    install_error_handlers(app)
    openapi.install(app)
    # Invite links are the busiest public URL: served ahead of the router (see InviteLinkMiddleware).
    app.add_middleware(InviteLinkMiddleware)
    # Viewers' sockets, likewise: each holds only what the room needs (see RoomSockets).
    app.add_middleware(RoomSockets)
    # Outermost of the middleware (only Edge is in front): a flood is refused before anything else reads it.
    app.add_middleware(RateLimitMiddleware, rules=PUBLIC_LIMITS, prefixes=PUBLIC_PREFIXES, device_of=_verified_device)
    for router in (
        shops_router,
        markets_routes(requires),
        events_router,
        members_router,
        referral_members,
        ledger_members,
        orders_router,
        ledger_router,
        coupons_router,
        referral_router,
        public_router,
        live_router,
        live_public,
        web_pages,
        web_share,
        web_docs,
        error_codes_router,
    ):
        app.include_router(router)
    app.mount("/static/live", static_files(), name="live-static")
    document_limits(app, PUBLIC_LIMITS)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Health:
        await ping(app.state.engine)
        return Health(status="ok", version=__version__)

    return app


def create_server_app() -> RoomSockets:
    """What `liveloop serve` runs: the application, with viewers' sockets answered in front of it."""
    return RoomSockets(create_app())
