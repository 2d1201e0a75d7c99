"""coupon codes read in batch order: the batch index also covers the id

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A batch's codes are paged and exported in id order; (batch_id, id) makes each page one range scan.
    op.drop_index("ix_coupons_batch", table_name="coupons")
    op.create_index("ix_coupons_batch", "coupons", ["batch_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_coupons_batch", table_name="coupons")
    op.create_index("ix_coupons_batch", "coupons", ["batch_id"], unique=False)
