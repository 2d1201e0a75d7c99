"""The `liveloop` command, run as a user would, against a real SQLite file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def run(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liveloop.cli", *args, "--database-url", f"sqlite+aiosqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_migrate_shop_apikey_and_verify(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert run("migrate", db=db).returncode == 0
    created = run("shop", "create", "acme", "--name", "Acme", "--timezone", "Asia/Jakarta", db=db)
    assert created.returncode == 0, created.stderr
    assert re.search(r"ll_[0-9a-f]{12}_\S+", created.stdout)
    again = run("shop", "create", "acme", db=db)
    assert again.returncode == 2 and "exists already" in again.stderr
    key = run("apikey", "create", "--shop", "acme", "--scope", "members:read", "--scope", "ledger:read", db=db)
    assert key.returncode == 0 and key.stdout.strip().startswith("ll_")
    bad = run("apikey", "create", "--shop", "acme", "--scope", "everything", db=db)
    assert bad.returncode == 2 and "Unknown scopes" in bad.stderr
    listed = run("apikey", "list", "--shop", "acme", db=db)
    assert "ledger:read members:read" in listed.stdout  # stored sorted
    verified = run("ledger", "verify", db=db)
    assert verified.returncode == 0 and "verified" in verified.stdout


def test_help_describes_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "liveloop.cli", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    ).stdout
    for command in ("serve", "migrate", "worker", "demo", "shop", "apikey", "ledger", "bench"):
        assert command in out
