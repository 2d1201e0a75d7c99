"""Migration 0011 keeps what existing coupons meant: old percent coupons stay valid in any currency, and
orders that carry coupons already keep their stacking state."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from liveloop.migrate import downgrade, upgrade
from tests.conftest import PG_ENV, _in_thread, _pg_admin_url, _pg_exec

NOW = "2026-11-30 10:00:00+00:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    if not os.environ.get(PG_ENV):
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    admin = _pg_admin_url()
    name = f"liveloop_mig_{uuid.uuid4().hex[:12]}"
    _in_thread(asyncio.run, _pg_exec(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        _in_thread(asyncio.run, _pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _run(url: str, *statements: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            rows: list[tuple[object, ...]] = []
            for sql in statements:
                result = await conn.execute(text(sql))
                if result.returns_rows:
                    rows = [tuple(r) for r in result.all()]
            return rows
    finally:
        await engine.dispose()


LEGACY = [
    "INSERT INTO shops (id, slug, name, landing_url, reporting_timezone, default_market, webhook_secret, created_at)"
    f" VALUES ('shp_1', 'old', 'Old', 'https://old.test/', 'UTC', 'sea', 'secret', '{NOW}')",
    "INSERT INTO members (id, shop_id, market, locale, timezone, referral_code, created_at)"
    f" VALUES ('mem_1', 'shp_1', 'sea', 'en', 'UTC', 'OLD1234', '{NOW}')",
]


def _batch(batch_id: str, kind: str, currency: str | None, stackable: bool) -> str:
    cur = f"'{currency}'" if currency else "NULL"
    amount = "100" if kind == "fixed" else "NULL"
    percent = "1000" if kind == "percent" else "NULL"
    return (
        "INSERT INTO coupon_batches (id, shop_id, name, pattern, kind, amount_minor, currency, percent_bp, "
        "min_spend_minor, max_uses_per_coupon, max_uses_per_member, stackable, created_at) VALUES "
        f"('{batch_id}', 'shp_1', 'b', '####-####', '{kind}', {amount}, {cur}, {percent}, 0, 1, 9, "
        f"{'true' if stackable else 'false'}, '{NOW}')"
    )


def _redeemed(n: int, batch_id: str, order_ref: str) -> list[str]:
    return [
        "INSERT INTO coupons (id, shop_id, batch_id, code, uses, max_uses, created_at) VALUES "
        f"('cpn_{n}', 'shp_1', '{batch_id}', 'CODE-{n}', 1, 1, '{NOW}')",
        "INSERT INTO coupon_redemptions (id, shop_id, coupon_id, member_id, idempotency_key, order_ref, "
        "order_total_minor, discount_minor, currency, status, created_at) VALUES "
        f"('red_{n}', 'shp_1', 'cpn_{n}', 'mem_1', 'k{n}', '{order_ref}', 5000, 100, 'USD', 'redeemed', '{NOW}')",
    ]


async def test_existing_coupons_keep_their_meaning_across_the_migration(empty_database: str) -> None:
    url = empty_database
    _in_thread(upgrade, url, "0006")
    await _run(
        url,
        *LEGACY,
        _batch("cpb_pct", "percent", None, False),
        _batch("cpb_thb", "percent", "THB", False),
        _batch("cpb_fix", "fixed", "USD", False),
        _batch("cpb_stk", "fixed", "USD", True),
        *_redeemed(1, "cpb_fix", "solo-order"),
        *_redeemed(2, "cpb_stk", "stacked-order"),
        *_redeemed(3, "cpb_stk", "stacked-order"),
    )
    _in_thread(upgrade, url, "0011")
    batches = await _run(url, "SELECT id, currency_free, status FROM coupon_batches ORDER BY id")
    assert [(b[0], bool(b[1]), b[2]) for b in batches] == [
        ("cpb_fix", False, "ready"),
        ("cpb_pct", True, "ready"),  # made before currencies were checked: valid in any currency, as it was
        ("cpb_stk", False, "ready"),
        ("cpb_thb", False, "ready"),
    ]
    orders = await _run(url, "SELECT order_ref, redeemed, non_stackable FROM coupon_orders ORDER BY order_ref")
    assert [(o[0], o[1], bool(o[2])) for o in orders] == [("solo-order", 1, True), ("stacked-order", 2, False)]
    _in_thread(downgrade, url, "0006")
    _in_thread(upgrade, url, "head")
