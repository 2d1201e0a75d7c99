"""Fixtures: each test runs against SQLite and, when LIVELOOP_TEST_DATABASE_URL is set, PostgreSQL.

PostgreSQL tests create a database with a unique name, migrate it, and drop it at the end. When the URL is
set but the server cannot be reached, the tests fail instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from liveloop.client import client_for, running_app
from liveloop.config import Settings
from liveloop.kit.db import transaction
from liveloop.migrate import upgrade
from liveloop.models import Base, Shop
from liveloop.shops.service import create_api_key, create_shop
from tests.error_codes import (  # every catalogued error code is produced by some test (see there)
    pytest_configure,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_unconfigure,
)

__all__ = ["pytest_configure", "pytest_sessionfinish", "pytest_terminal_summary", "pytest_unconfigure"]

PG_ENV = "LIVELOOP_TEST_DATABASE_URL"


def _in_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking function that calls asyncio.run() from outside the test event loop."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _pg_admin_url() -> str:
    url = make_url(os.environ[PG_ENV])
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


async def _pg_exec(admin_url: str, sql: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'liveloop.db'}"
        _in_thread(upgrade, url)
        yield url
        return
    if not os.environ.get(PG_ENV):
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV}=postgresql://user@host:port/db (a server where the user "
            "may create databases)"
        )
    admin = _pg_admin_url()
    name = f"liveloop_test_{uuid.uuid4().hex[:12]}"
    try:
        _in_thread(asyncio.run, _pg_exec(admin, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # set but unreachable: fail, do not skip
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}")
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        _in_thread(upgrade, url)
        yield url
    finally:
        _in_thread(asyncio.run, _pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


async def empty_database(url: str) -> None:
    """Empty every table before the app starts, so nothing it resumes at start-up (a half-made coupon batch,
    undelivered outbox events) is left over from an earlier test, and nothing it starts races the cleaning."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            if is_postgres(url):
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
            else:
                for name in tables:
                    await conn.execute(text(f"DELETE FROM {name}"))
    finally:
        await engine.dispose()


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Any]:
    settings = Settings(
        database_url=database_url,
        run_worker=False,
        public_base_url="http://live.test",
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        database_pool_size=20,
    )
    await empty_database(database_url)
    async with running_app(settings) as application:
        yield application


@dataclass
class ShopCtx:
    shop: Shop
    key: str
    api: httpx.AsyncClient
    app: Any

    @property
    def slug(self) -> str:
        return self.shop.slug

    @property
    def secret(self) -> str:
        return self.shop.webhook_secret

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        return client_for(self.app, key if key is not None else self.key)


async def make_shop(app: Any, slug: str = "acme", **kwargs: Any) -> ShopCtx:
    async with transaction(app.state.sessions) as session:
        shop = await create_shop(
            session,
            slug=slug,
            name=slug.title(),
            landing_url="https://shop.test/welcome",
            reporting_timezone=kwargs.pop("reporting_timezone", "Asia/Singapore"),
            default_market=kwargs.pop("default_market", "sea"),
            **kwargs,
        )
        _, key = await create_api_key(session, shop, name="admin", scopes=["admin"])
    return ShopCtx(shop=shop, key=key, api=client_for(app, key), app=app)


@pytest.fixture
async def shop(app: Any) -> AsyncIterator[ShopCtx]:
    ctx = await make_shop(app, shopify_secret="shpss_test")
    try:
        yield ctx
    finally:
        await ctx.api.aclose()


@pytest.fixture
def private_targets(shop: ShopCtx) -> Iterator[None]:
    """Let this test register its receivers on 127.0.0.1, as a self-hosted setup would."""
    settings = shop.app.state.settings
    shop.app.state.settings = settings.model_copy(update={"webhook_allow_private_targets": True})
    try:
        yield
    finally:
        shop.app.state.settings = settings


ROOT = Path(__file__).resolve().parents[1]


def _service_url(env: str, what: str) -> str:
    """The URL in ``env``; skip when unset (a laptop), and let the test fail when it is set but unreachable."""
    url = os.environ.get(env)
    if not url:
        pytest.skip(f"{env} is not set: no {what} to run this test against (set it to run it)")
    return url


@pytest.fixture
def redis_url() -> str:
    url = _service_url("LIVELOOP_TEST_REDIS_URL", "Redis")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()  # unreachable: this raises, and the test errors instead of skipping
    finally:
        client.close()
    return url


@pytest.fixture
def nats_url() -> str:
    url = _service_url("LIVELOOP_TEST_NATS_URL", "NATS")
    parsed = make_url_parts(url)
    with socket.create_connection(parsed, timeout=3) as conn:  # unreachable: this raises
        assert conn.recv(4) == b"INFO", f"{url} does not answer like a NATS server"
    return url


def make_url_parts(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 4222
