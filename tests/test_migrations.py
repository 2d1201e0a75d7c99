from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from liveloop.migrate import alembic_config, downgrade, upgrade
from liveloop.models import Base
from tests.conftest import PG_ENV, _in_thread, _pg_admin_url, _pg_exec


def schema_diff(sync: Any) -> list[Any]:
    # compare_type: a column whose type differs between models and migrations (e.g. INTEGER vs BIGINT) counts.
    return list(compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata))


async def test_migrations_match_the_models(app: Any) -> None:
    """The migrated schema is exactly what the models declare: no table, column, type or index missing."""
    async with app.state.engine.connect() as conn:
        diff = await conn.run_sync(schema_diff)
    assert diff == []


async def test_health(app: Any) -> None:
    from liveloop.client import client_for

    async with client_for(app) as api:
        response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    if not os.environ.get(PG_ENV):
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    admin = _pg_admin_url()
    name = f"liveloop_fresh_{uuid.uuid4().hex[:12]}"
    _in_thread(asyncio.run, _pg_exec(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        _in_thread(asyncio.run, _pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


async def _execute(url: str, *statements: tuple[str, dict[str, Any]]) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            results = [await conn.execute(text(sql), params) for sql, params in statements]
            return [r.all() if r.returns_rows else [] for r in results]
    finally:
        await engine.dispose()


def test_every_migration_downgrades_to_nothing_and_upgrades_again(fresh_database: str) -> None:
    url = fresh_database
    applied = [revision for revision, _ in _in_thread(upgrade, url)]
    assert applied[-1] == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    _in_thread(downgrade, url, "base")
    tables = _in_thread(asyncio.run, _inspect(url, lambda sync: inspect(sync).get_table_names()))
    assert set(tables) <= {"alembic_version"}
    _in_thread(upgrade, url)
    assert _in_thread(asyncio.run, _inspect(url, schema_diff)) == []
    assert _in_thread(upgrade, url) == []  # nothing left to apply


def test_migration_0010_removes_secrets_kept_in_idempotency_records(fresh_database: str) -> None:
    url = fresh_database
    _in_thread(upgrade, url, "0006")
    key, secret, token = "ll_0123456789ab_" + "k" * 40, "whsec_" + "s" * 40, "eyJ" + "t" * 60
    records = {
        "POST /v1/api-keys": {"id": "key_1", "name": "pos", "key": key},
        "POST /v1/webhook-endpoints": {"id": "whe_1", "url": "https://x.example/h", "secret": secret},
        "POST /v1/shows/shw_1/viewer-tokens": {"token": token, "viewer_key": "m:mem_1", "expires_in": 60},
        "POST /v1/members": {"id": "mem_1", "name": "Ann", "key": "not a secret here"},
    }
    now = datetime(2026, 11, 30, 10, tzinfo=UTC)
    statements: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO shops (id, slug, name, reporting_timezone, default_market, landing_url, webhook_secret, "
            "created_at) VALUES ('shop_1', 'acme', 'Acme', 'UTC', 'na', 'https://acme.example/', 'whsec_x', :now)",
            {"now": now},
        )
    ]
    for n, (scope, body) in enumerate(records.items()):
        statements.append(
            (
                "INSERT INTO idempotency_records (id, shop_id, scope, key, request_hash, status_code, response_body, "
                "created_at) VALUES (:id, 'shop_1', :scope, :key, 'h', 201, :body, :now)",
                {
                    "id": f"idem_{n}",
                    "scope": scope,
                    "key": f"k{n}",
                    "body": orjson.dumps({"json": body}).decode(),
                    "now": now,
                },
            )
        )
    _in_thread(asyncio.run, _execute(url, *statements))
    _in_thread(upgrade, url)
    (rows,) = _in_thread(
        asyncio.run, _execute(url, ("SELECT scope, response_body FROM idempotency_records ORDER BY id", {}))
    )
    kept = {scope: body if isinstance(body, dict) else orjson.loads(body) for scope, body in rows}
    text_of_all = orjson.dumps(kept).decode()
    for value in (key, secret, token):
        assert value not in text_of_all
    assert kept["POST /v1/api-keys"]["json"] == {"id": "key_1", "name": "pos"}
    assert kept["POST /v1/webhook-endpoints"]["json"] == {"id": "whe_1", "url": "https://x.example/h"}
    assert kept["POST /v1/members"]["json"] == records["POST /v1/members"]  # holds no secret: untouched
    (shops,) = _in_thread(asyncio.run, _execute(url, ("SELECT storefront_origins FROM shops", {})))
    assert [orjson.loads(v) if isinstance(v, str) else v for (v,) in shops] == [[]]

    # Down and up again: rebuilding the shops table (SQLite) must not cascade into the rows that reference it.
    _in_thread(downgrade, url, "0006")
    _in_thread(upgrade, url)
    (count,) = _in_thread(asyncio.run, _execute(url, ("SELECT count(*) FROM idempotency_records", {})))
    assert count == [(len(records),)]
