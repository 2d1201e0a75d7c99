"""The `liveloop` command, run as a user would, against a real SQLite file."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from typer.testing import CliRunner

from liveloop.cli import app as cli_app
from liveloop.client import free_port
from liveloop.kit.time import utc_now


def cli_env(**extra: str) -> dict[str, str]:
    """A bare environment (no LIVELOOP_* settings), with this source tree first on the path."""
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin", **extra}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def run(*args: str, db: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liveloop.cli", *args, "--database-url", f"sqlite+aiosqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or cli_env(),
    )


def test_migrate_shop_apikey_and_verify(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    migrated = run("migrate", db=db)
    assert migrated.returncode == 0
    assert "Applied 0001: foundation" in migrated.stdout
    assert "Applied 0010:" in migrated.stdout
    again = run("migrate", db=db)
    assert again.returncode == 0
    assert "already up to date" in again.stdout
    assert "Applied" not in again.stdout
    created = run("shop", "create", "acme", "--name", "Acme", "--timezone", "Asia/Jakarta", db=db)
    assert created.returncode == 0, created.stderr
    assert re.search(r"ll_[0-9a-f]{12}_\S+", created.stdout)
    again = run("shop", "create", "acme", db=db)
    assert again.returncode == 2
    assert "exists already" in again.stderr
    key = run("apikey", "create", "--shop", "acme", "--scope", "members:read", "--scope", "ledger:read", db=db)
    assert key.returncode == 0
    assert key.stdout.strip().startswith("ll_")
    bad = run("apikey", "create", "--shop", "acme", "--scope", "everything", db=db)
    assert bad.returncode == 2
    assert "Unknown scopes" in bad.stderr
    listed = run("apikey", "list", "--shop", "acme", db=db)
    assert "ledger:read members:read" in listed.stdout  # stored sorted
    verified = run("ledger", "verify", db=db)
    assert verified.returncode == 0
    assert "verified" in verified.stdout


def test_apikey_revoke_stops_a_key(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert run("migrate", db=db).returncode == 0
    assert run("shop", "create", "acme", db=db).returncode == 0
    key = run("apikey", "create", "--shop", "acme", "--scope", "members:read", "--name", "till", db=db).stdout.strip()
    prefix = "_".join(key.split("_")[:2])
    revoked = run("apikey", "revoke", prefix, "--shop", "acme", db=db)
    assert revoked.returncode == 0, revoked.stderr
    assert "Revoked key_" in revoked.stdout
    assert "(till)" in revoked.stdout
    rows = [line for line in run("apikey", "list", "--shop", "acme", db=db).stdout.splitlines() if prefix in line]
    assert len(rows) == 1
    assert "revoked" in rows[0]
    unknown = run("apikey", "revoke", "ll_000000000000", "--shop", "acme", db=db)
    assert unknown.returncode == 2
    assert "No such API key" in unknown.stderr


def commands(group: typer.Typer, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every command and subcommand of the Typer app, with the first line of its help."""
    for info in group.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        for prefix in ("shop-", "apikey-", "ledger-"):  # functions are named after their group
            name = name.removeprefix(prefix)
        yield (*path, name), (info.help or (info.callback.__doc__ if info.callback else "") or "").strip()
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        assert sub.name
        yield (*path, sub.name), str(sub.help or sub.typer_instance.info.help or "")
        yield from commands(sub.typer_instance, (*path, sub.name))


def test_every_command_has_its_own_help_without_placeholders_for_flags() -> None:
    found = list(commands(cli_app))
    names = {" ".join(path) for path, _ in found}
    assert {"serve", "migrate", "worker", "demo", "assets", "bench", "shop create", "shop list"} <= names
    assert {"apikey create", "apikey list", "apikey revoke", "ledger verify"} <= names
    runner = CliRunner(env={"COLUMNS": "200"})
    for path, doc in found:
        out = runner.invoke(cli_app, [*path, "--help"])
        assert out.exit_code == 0, (path, out.output)
        text = " ".join(out.stdout.split())
        first = " ".join(doc.split("\n\n", 1)[0].split())
        assert first, path
        assert first[:60] in text, (path, first)
        assert "<bool>" not in out.stdout, path
        assert "--help" in out.stdout


def wait_for_port(proc: subprocess.Popen[str], port: int, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"liveloop serve exited: {proc.stderr.read() if proc.stderr else ''}") from None
            time.sleep(0.1)
    raise AssertionError(f"liveloop serve did not listen on {port}")


def serve(db: Path, port: int, **env: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liveloop.cli",
            "serve",
            "--port",
            str(port),
            "--database-url",
            f"sqlite+aiosqlite:///{db}",
        ],
        env=cli_env(LIVELOOP_RUN_WORKER="false", **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_port(proc, port)
    return proc


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, stderr = proc.communicate(timeout=30)
    return stderr


def share_status(base: str, show_id: str, token: str) -> int:
    r = httpx.get(f"{base}/v1/public/shows/{show_id}/share", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def test_serve_keeps_a_generated_secret_key_so_tokens_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    port = free_port()
    first = serve(db, port)
    try:
        shop = run("shop", "create", "acme", db=db)
        assert shop.returncode == 0, shop.stderr
        key = re.search(r"ll_[0-9a-f]{12}_\S+", shop.stdout)
        assert key
        base = f"http://127.0.0.1:{port}"
        body: dict[str, Any] = {
            "title": "T",
            "host_name": "M",
            "scheduled_at": (utc_now() + timedelta(hours=1)).isoformat(),
        }
        show = httpx.post(f"{base}/v1/shows", json=body, headers={"Authorization": f"Bearer {key.group(0)}"}).json()
        token = httpx.post(f"{base}/v1/public/shows/{show['id']}/join", json={"name": "Ann"}).json()["token"]
        assert share_status(base, show["id"], token) == 200
    finally:
        said = stop(first)
    secret_file = tmp_path / "live.db.secret"
    assert f"Generated a secret key into {secret_file}" in said
    # The access log: one line per request, by route template; the token and the API key never appear.
    assert re.search(r"GET /v1/public/shows/\{show_id\}/share 200 [0-9.]+ms", said), said
    assert token not in said
    assert key.group(0) not in said
    assert show["id"] not in said
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_text().strip()) >= 32

    second = serve(db, port)
    try:
        assert share_status(base, show["id"], token) == 200  # the same key after the restart
    finally:
        said = stop(second)
    assert "Generated" not in said

    other = serve(
        db, port, LIVELOOP_SECRET_KEY="another-secret-key-that-is-long-enough-0123", LIVELOOP_LOG_FORMAT="json"
    )
    try:
        assert share_status(base, show["id"], token) == 401  # what a random key per start would have done
    finally:
        said = stop(other)
    lines = [orjson.loads(line) for line in said.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "liveloop.access"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("GET", "/v1/public/shows/{show_id}/share", 401)
    ]
    assert access[0]["request_id"]
    assert access[0]["duration_ms"] >= 0
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # the server's own lines are JSON too
    assert token not in said


def test_without_a_key_serve_and_worker_refuse_to_start_on_postgresql(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/none"  # never reached: the key is checked first
    for command in ("serve", "worker"):
        out = subprocess.run(
            [sys.executable, "-m", "liveloop.cli", command, "--database-url", url],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=60,
        )
        assert out.returncode == 2, (command, out.stderr)
        assert "LIVELOOP_SECRET_KEY is not set" in out.stderr
        assert "export LIVELOOP_SECRET_KEY=" in out.stderr
        assert "LIVELOOP_SECRET_KEY_FILE" in out.stderr


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "open.db"
    secret = tmp_path / "open.db.secret"
    secret.write_text("k" * 48)
    secret.chmod(0o644)
    out = subprocess.run(
        [sys.executable, "-m", "liveloop.cli", "serve", "--database-url", f"sqlite+aiosqlite:///{db}"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert out.returncode == 2
    assert f"chmod 600 {secret}" in " ".join(out.stderr.split())


def test_the_demo_runs_with_no_setup(tmp_path: Path) -> None:
    out = run("demo", "--no-serve", db=tmp_path / "demo.db")
    assert out.returncode == 0, out.stderr
    assert "/live/shw_" in out.stdout
    kept = tmp_path / "demo.db.secret"
    assert kept.exists()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_a_configured_key_file_serves_postgresql_too(tmp_path: Path) -> None:
    from liveloop.config import Settings, persistent_secret_key

    path = tmp_path / "keys" / "liveloop.key"
    settings = Settings(database_url="postgresql+asyncpg://db.internal/liveloop", secret_key_file=path)
    key, notice = persistent_secret_key(settings)
    assert notice
    assert str(path) in notice
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert persistent_secret_key(settings) == (key, None)  # the next start reads it back
    assert persistent_secret_key(Settings(secret_key="s" * 40, secret_key_file=path)) == ("s" * 40, None)
