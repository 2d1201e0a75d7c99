"""The Shopify secret of an existing shop: set and rotated through the API and the CLI, never shown."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from liveloop.kit.db import transaction
from liveloop.kit.errors import Unprocessable
from liveloop.kit.time import utc_now
from liveloop.models import Shop
from liveloop.shops.service import set_shopify_secret
from tests.conftest import ShopCtx, make_shop
from tests.factories import ok
from tests.orders import shopify_payloads as shopify
from tests.orders.shopify_payloads import deliver

NEW_SECRET = "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"
NEXT_SECRET = "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"


async def test_a_shop_without_a_secret_gets_one_through_the_api(app: Any) -> None:
    ctx = await make_shop(app, "beta")
    try:
        assert ok(await ctx.api.get("/v1/shop"))["shopify_configured"] is False
        refused = await deliver(ctx.api, ctx.slug, shopify.order(1, "9.00"), "orders/paid", secret=NEW_SECRET)
        assert (refused.status_code, refused.json()["error"]["code"]) == (404, "shopify_not_configured")
        response = await ctx.api.put("/v1/shop/shopify-secret", json={"secret": NEW_SECRET})
        body = ok(response)
        assert body["shopify_configured"] is True
        assert body["slug"] == "beta"
        assert NEW_SECRET not in response.text
        shown = await ctx.api.get("/v1/shop")
        assert shown.json()["shopify_configured"] is True
        assert NEW_SECRET not in shown.text
        delivered = ok(await deliver(ctx.api, ctx.slug, shopify.order(1, "9.00"), "orders/paid", secret=NEW_SECRET))
        assert delivered["status"] == "paid"
    finally:
        await ctx.api.aclose()


async def test_after_a_rotation_the_previous_secret_verifies_only_during_the_grace(shop: ShopCtx) -> None:
    ok(await shop.api.put("/v1/shop/shopify-secret", json={"secret": NEW_SECRET, "grace_seconds": 3600}))
    # A delivery Shopify signed before the switch, and one signed after it: both are taken.
    assert ok(await deliver(shop.api, shop.slug, shopify.order(11, "9.00"), "orders/paid", secret="shpss_test"))
    assert ok(await deliver(shop.api, shop.slug, shopify.order(12, "9.00"), "orders/paid", secret=NEW_SECRET))
    async with transaction(shop.app.state.sessions) as session:
        await session.execute(
            update(Shop)
            .where(Shop.id == shop.shop.id)
            .values(shopify_previous_secret_expires_at=utc_now() - timedelta(seconds=1))
        )
    late = await deliver(shop.api, shop.slug, shopify.order(13, "9.00"), "orders/paid", secret="shpss_test")
    assert (late.status_code, late.json()["error"]["code"]) == (401, "invalid_signature")
    assert ok(await deliver(shop.api, shop.slug, shopify.order(13, "9.00"), "orders/paid", secret=NEW_SECRET))


async def test_a_rotation_without_grace_retires_the_previous_secret_at_once(shop: ShopCtx) -> None:
    ok(await shop.api.put("/v1/shop/shopify-secret", json={"secret": NEW_SECRET}))
    ok(await shop.api.put("/v1/shop/shopify-secret", json={"secret": NEXT_SECRET, "grace_seconds": 0}))
    for old in ("shpss_test", NEW_SECRET):
        response = await deliver(shop.api, shop.slug, shopify.order(21, "9.00"), "orders/paid", secret=old)
        assert response.status_code == 401
    assert ok(await deliver(shop.api, shop.slug, shopify.order(21, "9.00"), "orders/paid", secret=NEXT_SECRET))


async def test_a_bad_secret_or_grace_is_refused_and_changes_nothing(shop: ShopCtx) -> None:
    spaced = await shop.api.put("/v1/shop/shopify-secret", json={"secret": "shpss test with spaces"})
    assert (spaced.status_code, spaced.json()["error"]["code"]) == (422, "invalid_shopify_secret")
    too_long = await shop.api.put("/v1/shop/shopify-secret", json={"secret": NEW_SECRET, "grace_seconds": 10**7})
    assert too_long.status_code == 422
    assert ok(await deliver(shop.api, shop.slug, shopify.order(31, "9.00"), "orders/paid", secret="shpss_test"))


async def test_only_an_admin_key_sets_the_secret_and_a_replay_never_returns_it(shop: ShopCtx) -> None:
    key = ok(await shop.api.post("/v1/api-keys", json={"name": "ops", "scopes": ["members:write"]}), 201)["key"]
    async with shop.client(key) as api:
        refused = await api.put("/v1/shop/shopify-secret", json={"secret": NEW_SECRET})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "missing_scope")
    headers = {"Idempotency-Key": "rotate-2026-12"}
    first = await shop.api.put("/v1/shop/shopify-secret", json={"secret": NEW_SECRET}, headers=headers)
    again = await shop.api.put("/v1/shop/shopify-secret", json={"secret": NEW_SECRET}, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == again.json()
    assert NEW_SECRET not in again.text


async def test_the_grace_is_bounded_to_seven_days(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as session:
        row = await session.get(Shop, shop.shop.id)
        assert row is not None
        with pytest.raises(Unprocessable) as refused:
            await set_shopify_secret(session, row, NEW_SECRET, grace=timedelta(days=8))
    assert refused.value.code == "invalid_grace"


def cli(*args: str, db: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liveloop.cli", *args, "--database-url", f"sqlite+aiosqlite:///{db}"],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        # PYTHONPATH passes through, so the command runs the sources under test.
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}},
    )


def stored(db: Path) -> tuple[str | None, str | None, str | None]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT shopify_secret, shopify_previous_secret, shopify_previous_secret_expires_at FROM shops"
        ).fetchone()
    return row[0], row[1], row[2]


def test_the_cli_sets_and_rotates_the_secret_from_an_option_or_stdin(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert cli("migrate", db=db).returncode == 0
    assert cli("shop", "create", "acme", db=db).returncode == 0
    first = cli("shop", "set-shopify-secret", "acme", "--secret", NEW_SECRET, db=db)
    assert first.returncode == 0, first.stderr
    assert "set" in first.stdout
    assert NEW_SECRET not in first.stdout
    assert stored(db) == (NEW_SECRET, None, None)
    rotated = cli("shop", "set-shopify-secret", "acme", "--grace-seconds", "600", db=db, stdin=NEXT_SECRET + "\n")
    assert rotated.returncode == 0, rotated.stderr
    assert "rotated" in rotated.stdout
    assert "600 s" in rotated.stdout
    assert NEXT_SECRET not in rotated.stdout
    current, previous, expires = stored(db)
    assert (current, previous) == (NEXT_SECRET, NEW_SECRET)
    assert expires is not None
    bad = cli("shop", "set-shopify-secret", "acme", "--secret", "short", db=db)
    assert bad.returncode == 2
    assert "8 to 128" in bad.stderr
    forever = cli("shop", "set-shopify-secret", "acme", "--secret", NEW_SECRET, "--grace-seconds", "9999999", db=db)
    assert forever.returncode == 2
    assert "0 to 604800" in forever.stderr
    unknown = cli("shop", "set-shopify-secret", "nope", "--secret", NEW_SECRET, db=db)
    assert unknown.returncode == 2
    assert "No shop" in unknown.stderr
    assert stored(db)[0] == NEXT_SECRET
