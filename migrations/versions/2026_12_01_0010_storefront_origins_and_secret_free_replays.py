"""shops list their storefront origins; idempotency records keep no secrets

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 08:00:00

The viewer page may be framed only by the origins in ``shops.storefront_origins``. Answers that showed a
secret once (an API key, a webhook signing secret, a viewer or host token) were kept whole in
``idempotency_records``; the secret is removed from them here, and a replay of such a request now answers
409 ``secret_shown_once`` (see ``liveloop.kit.http.ShownOnce``). The downgrade cannot bring secrets back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

# Requests whose answer shows a secret once ("METHOD /path" as stored in the record's scope), and the fields.
SHOWN_ONCE = (
    (re.compile(r"^POST /v1/api-keys$"), ("key",)),
    (re.compile(r"^POST /v1/webhook-endpoints(/[^/]+/[a-z-]+)?$"), ("secret",)),
    (re.compile(r"^POST /v1/shows/[^/]+/(viewer-tokens|host-token)$"), ("token",)),
)
SCOPE_PREFIXES = ("POST /v1/api-keys", "POST /v1/webhook-endpoints%", "POST /v1/shows/%")


def scrubbed(scope: str, body: Any) -> Any | None:
    """The stored answer without its secrets, or None when it holds none."""
    stored = body.get("json") if isinstance(body, dict) else None
    if not isinstance(stored, dict):
        return None
    for pattern, fields in SHOWN_ONCE:
        if pattern.match(scope) and any(field in stored for field in fields):
            return {**body, "json": {k: v for k, v in stored.items() if k not in fields}}
    return None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite too), so existing shops get [] without the table being rebuilt.
    op.add_column("shops", sa.Column("storefront_origins", JSON, nullable=False, server_default="[]"))

    records = sa.table(
        "idempotency_records",
        sa.column("id", sa.String),
        sa.column("scope", sa.String),
        sa.column("response_body", JSON),
    )
    bind = op.get_bind()
    candidates = sa.or_(*(records.c.scope.like(prefix) for prefix in SCOPE_PREFIXES))
    rows = bind.execute(sa.select(records.c.id, records.c.scope, records.c.response_body).where(candidates)).all()
    for record_id, scope, body in rows:
        clean = scrubbed(scope, body)
        if clean is not None:
            bind.execute(records.update().where(records.c.id == record_id).values(response_body=clean))


def downgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_column("storefront_origins")
