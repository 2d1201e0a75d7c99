"""outbox fan-out by the worker

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 19:14:25.516156
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import liveloop.models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fanned_out_at", liveloop.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_outbox_events_pending_fanout",
            ["created_at"],
            unique=False,
            sqlite_where=sa.text("fanned_out_at IS NULL"),
            postgresql_where=sa.text("fanned_out_at IS NULL"),
        )
    # Events written before this version got their deliveries when they were emitted.
    op.execute("UPDATE outbox_events SET fanned_out_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_events_pending_fanout",
            sqlite_where=sa.text("fanned_out_at IS NULL"),
            postgresql_where=sa.text("fanned_out_at IS NULL"),
        )
        batch_op.drop_column("fanned_out_at")
