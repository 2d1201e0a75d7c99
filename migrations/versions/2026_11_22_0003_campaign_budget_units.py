"""campaigns list the units that have a budget

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 21:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget_units", JSON, nullable=False, server_default="[]"))
    bind = op.get_bind()
    units: dict[str, list[str]] = {}
    for campaign_id, unit in bind.execute(sa.text("SELECT campaign_id, unit FROM campaign_budgets ORDER BY unit")):
        units.setdefault(campaign_id, []).append(unit)
    campaigns = sa.table("campaigns", sa.column("id", sa.String), sa.column("budget_units", JSON))
    for campaign_id, listed in units.items():
        bind.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(budget_units=listed))
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.alter_column("budget_units", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("budget_units")
