"""Shops, markets and API keys: what an operator is told when a request or a command breaks a rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from liveloop.kit import errors
from tests.conftest import ShopCtx
from tests.test_cli import cli_env


def error(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]  # type: ignore[attr-defined]


def rows(body: Any) -> list[Any]:
    """The rows of a list answer: the list itself, or the items of one page of it."""
    return list(body["items"] if isinstance(body, dict) else body)


def cli(*args: str, db: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`liveloop …` as an operator runs it (recording the codes it answers, like the servers of the suite)."""
    recording = {errors.RECORD_ENV: os.environ[errors.RECORD_ENV]} if os.environ.get(errors.RECORD_ENV) else {}
    return subprocess.run(
        [sys.executable, "-m", "liveloop.cli", *args, "--database-url", f"sqlite+aiosqlite:///{db}"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(**recording),
    )


def test_the_shop_commands_name_the_rule_a_value_breaks(tmp_path: Path) -> None:
    db = tmp_path / "shops.db"
    assert cli("migrate", db=db).returncode == 0
    refused = {
        "invalid_slug": cli("shop", "create", "Acme Beauty!", db=db),
        "invalid_timezone": cli("shop", "create", "acme", "--timezone", "Mars/Olympus", db=db),
        "unknown_market": cli("shop", "create", "acme", "--market", "moon", db=db),
    }
    assert cli("shop", "create", "acme", db=db).returncode == 0
    refused["shop_exists"] = cli("shop", "create", "acme", db=db)
    refused["invalid_grace"] = cli(
        "shop", "set-shopify-secret", "acme", "--grace-seconds", "700000", db=db, stdin="shpss_0123456789\n"
    )
    refused["invalid_shopify_secret"] = cli("shop", "set-shopify-secret", "acme", db=db, stdin="short\n")
    refused["shop_not_found"] = cli("apikey", "create", "--shop", "nope", "--scope", "admin", db=db)
    for code, run in refused.items():
        assert run.returncode == 2, (code, run.stderr)
        assert f"({code})" in run.stderr, (code, run.stderr)  # the message, then the code to look up
    assert "shop list" in refused["shop_not_found"].stderr  # …and how to fix it


async def test_api_keys_and_markets_that_do_not_exist(shop: ShopCtx) -> None:
    r = await shop.api.delete("/v1/api-keys/key_nope")
    assert error(r) == (404, "api_key_not_found")
    r = await shop.api.patch("/v1/markets/moon", json={"currency": "USD"})
    assert error(r) == (404, "market_not_found")
