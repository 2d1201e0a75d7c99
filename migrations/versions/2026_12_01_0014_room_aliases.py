"""room aliases: a show viewer's alias (indexed per show) and the name an entry was made under

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before this revision have no alias; the server fills it in when a host first names one.
    with op.batch_alter_table("show_viewers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alias", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_show_viewers_show_alias", ["show_id", "alias"], unique=False)
    with op.batch_alter_table("interaction_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interaction_entries", schema=None) as batch_op:
        batch_op.drop_column("name")
    with op.batch_alter_table("show_viewers", schema=None) as batch_op:
        batch_op.drop_index("ix_show_viewers_show_alias")
        batch_op.drop_column("alias")
