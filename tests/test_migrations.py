from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from liveloop.models import Base


async def test_migrations_match_the_models(app: Any) -> None:
    """The migrated schema is exactly what the models declare: no table, column or index missing."""
    async with app.state.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": False}), Base.metadata)
        )
    assert diff == []


async def test_health(app: Any) -> None:
    from liveloop.client import client_for

    async with client_for(app) as api:
        response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
