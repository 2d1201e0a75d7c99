"""Alembic environment: runs migrations over the same async engine the app uses."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection

from liveloop.config import get_settings
from liveloop.kit.db import create_engine, is_sqlite
from liveloop.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("database_url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        on_version_apply=config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(_url(), pool_size=1)
    if is_sqlite(_url()):
        # Batch migrations rebuild a SQLite table (copy, drop, rename). With foreign keys on, dropping it
        # would cascade: dropping `shops` would delete every shop's members, orders and ledger. Off while
        # migrating, as Alembic's batch mode documentation advises; the app's connections keep them on.
        @event.listens_for(engine.sync_engine, "connect")
        def _foreign_keys_off(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()

    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(run_migrations_online())
