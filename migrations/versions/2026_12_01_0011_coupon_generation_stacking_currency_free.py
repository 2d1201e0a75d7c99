"""coupon batches generated in chunks, currency-free percent coupons, one stacking row per order

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import liveloop.models.base
from liveloop.kit.ids import new_id
from liveloop.kit.time import utc_now

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only added columns and an index: SQLite alters the table in place (no copy, which its foreign keys refuse).
    with op.batch_alter_table("coupon_batches", schema=None) as batch_op:
        # A literal default ('0' is false on both backends): an expression would make SQLite copy the table.
        batch_op.add_column(sa.Column("currency_free", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="ready", nullable=False))
        batch_op.add_column(sa.Column("codes_total", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("codes_generated", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index("ix_coupon_batches_status", ["status"], unique=False)
    # Percent coupons made before currencies were checked had none and applied to any order: keep that.
    batches = sa.table("coupon_batches", sa.column("kind"), sa.column("currency"), sa.column("currency_free"))
    op.execute(
        batches.update()
        .where(batches.c.kind == "percent", batches.c.currency.is_(None))
        .values(currency_free=sa.true())
    )

    op.create_table(
        "coupon_orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("order_ref", sa.String(length=255), nullable=False),
        sa.Column("redeemed", sa.Integer(), nullable=False),
        sa.Column("non_stackable", sa.Boolean(), nullable=False),
        sa.Column("created_at", liveloop.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "redeemed >= 0 AND (NOT non_stackable OR redeemed = 1)", name=op.f("ck_coupon_orders_stacking_rule")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_coupon_orders_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_orders")),
        sa.UniqueConstraint("shop_id", "order_ref", name=op.f("uq_coupon_orders_shop_id_order_ref")),
    )
    # Orders that already carry redemptions: one row each, counting them, marked when one is non-stackable.
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            """
            SELECT r.shop_id, r.order_ref, COUNT(*) AS redeemed,
                   SUM(CASE WHEN b.stackable THEN 0 ELSE 1 END) AS non_stackable
            FROM coupon_redemptions r
            JOIN coupons c ON c.id = r.coupon_id
            JOIN coupon_batches b ON b.id = c.batch_id
            WHERE r.status = 'redeemed' AND r.order_ref IS NOT NULL
            GROUP BY r.shop_id, r.order_ref
            """
        )
    ).all()
    if rows:
        orders = sa.table(
            "coupon_orders",
            sa.column("id"),
            sa.column("shop_id"),
            sa.column("order_ref"),
            sa.column("redeemed"),
            sa.column("non_stackable"),
            sa.column("created_at", liveloop.models.base.UTCDateTime(timezone=True)),
        )
        bind.execute(
            orders.insert(),
            [
                {
                    "id": new_id("cpo"),
                    "shop_id": row.shop_id,
                    "order_ref": row.order_ref,
                    "redeemed": row.redeemed,
                    # An order that a past race left with a non-stackable coupon beside others keeps them.
                    "non_stackable": bool(row.non_stackable) and row.redeemed == 1,
                    "created_at": utc_now(),
                }
                for row in rows
            ],
        )


def downgrade() -> None:
    op.drop_table("coupon_orders")
    with op.batch_alter_table("coupon_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_batches_status")
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch would copy the table, which its foreign keys refuse.
    for column in ("codes_generated", "codes_total", "status", "currency_free"):
        op.drop_column("coupon_batches", column)
