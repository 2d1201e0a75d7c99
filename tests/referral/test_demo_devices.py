"""The demo plays its referral day with devices the server issued, and its abuse attempts are still caught."""

from __future__ import annotations

import io

from rich.console import Console

from liveloop.client import running_app
from liveloop.config import Settings
from liveloop.demo import run_demo
from tests.conftest import empty_database


async def test_the_demo_attributes_through_signed_device_cookies(database_url: str) -> None:
    settings = Settings(database_url=database_url, run_worker=False)
    async with running_app(settings):
        pass  # the schema exists
    await empty_database(database_url)
    console = Console(file=io.StringIO(), width=120)
    summary = await run_demo(database_url, console, base_url="http://127.0.0.1:8000", inviters=6, seed=3)
    assert summary["referrals"].get("converted", 0) > 0  # friends' cookies from the invite link verified
    assert {"same_device", "disposable_email", "similar_email"} <= set(summary["reasons"])
    assert summary["ledger_ok"]
