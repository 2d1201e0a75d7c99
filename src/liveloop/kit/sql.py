"""Small dialect-portable SQL helpers."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_conflicts(
    session: AsyncSession, table: Any, values: dict[str, Any] | list[dict[str, Any]] | None = None
) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's backend.

    Without ``values`` the statement takes its rows as execute parameters (an executemany, compiled once).
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table) if values is None else insert(table).values(values)
    return stmt.on_conflict_do_nothing()


def table(model: Any) -> Table:
    """The Core table of a mapped class, typed as one (``Model.__table__`` is typed as a FromClause)."""
    return cast(Table, model.__table__)


def increment_counters(session: AsyncSession, table: Any, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET value = value + excluded.value`` for the session's backend."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(rows)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={"value": table.c.value + stmt.excluded.value})
