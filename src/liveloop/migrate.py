"""Apply Alembic migrations programmatically (used by the CLI and the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> list[tuple[str, str]]:
    """Upgrade to ``revision``; returns the migrations applied, oldest first, as (revision, title)."""
    config = alembic_config(database_url)
    applied: list[tuple[str, str]] = []

    def record(*, step: Any, **_: Any) -> None:
        if step.is_upgrade:
            applied.append((step.up_revision_id, (step.up_revision.doc or "").strip()))

    config.attributes["on_version_apply"] = record
    command.upgrade(config, revision)
    return applied


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
