"""Settings: one object, read from the environment with the ``LIVELOOP_`` prefix."""

from __future__ import annotations

import os
import secrets
import stat
import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIVELOOP_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite+aiosqlite:///./liveloop.db",
        description="SQLAlchemy URL. SQLite (aiosqlite) by default; postgresql+asyncpg://… in production.",
    )
    database_pool_size: int = Field(10, description="Connections kept open per process (PostgreSQL).")
    host: str = Field("127.0.0.1", description="Address `liveloop serve` binds to.")
    port: int = Field(8000, description="Port `liveloop serve` binds to.")
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Where viewers reach this server; invite links and QR codes are built on it.",
    )
    secret_key: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        min_length=32,
        description="Signs click ids and viewer tokens and keys hashed IPs. `liveloop serve` and `liveloop worker` "
        "never run on a random one: see `secret_key_file`.",
    )
    secret_key_file: Path | None = Field(
        None,
        description="Where `liveloop serve`, `worker` and `demo` keep a generated secret key when "
        "LIVELOOP_SECRET_KEY is not set (created readable only by its owner, reused on every start). Default: next "
        "to a SQLite database "
        "(`<database file>.secret`); with PostgreSQL and neither setting, they refuse to start.",
    )
    run_worker: bool = Field(True, description="Run the outbox and scheduled-job worker inside the API process.")
    worker_poll_seconds: float = Field(0.5, description="How often the worker looks for due work.")
    webhook_tolerance_seconds: int = Field(
        300, description="Incoming webhooks with a timestamp further off than this are refused."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Deadline of one outgoing delivery attempt: connect, send and read together."
    )
    webhook_max_attempts: int = Field(12, ge=1, description="Outgoing deliveries are retried up to this many times.")
    webhook_max_response_bytes: int = Field(
        64 * 1024, ge=0, description="At most this much of an endpoint's answer is read; the rest is not."
    )
    webhook_concurrency: int = Field(
        32, ge=1, le=1000, description="Deliveries in flight at once per worker process, over all endpoints."
    )
    webhook_endpoint_concurrency: int = Field(
        4, ge=1, le=100, description="Deliveries in flight at once per endpoint and worker process."
    )
    webhook_allow_private_targets: bool = Field(
        False,
        description="Let webhook endpoints be on loopback or private networks (a self-hosted receiver). "
        "Link-local (cloud metadata), multicast and reserved addresses stay refused.",
    )
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per log line (access log included), for log shippers."
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Request bodies larger than this are refused with 413 before parsing."
    )
    bus_url: str = Field(
        "memory://",
        description="Room bus between gateway processes: memory:// (one process), redis://…, nats://….",
    )
    frame_ms: int = Field(100, ge=20, le=1000, description="Live-room messages are sent in frames this often.")
    room_sockets_per_ip: int = Field(
        100,
        ge=0,
        description="Room sockets one client address (IPv6: its /64) may hold open at once, per process; more are "
        "closed with 4429. 0: off. Generous, as a carrier's NAT can put many viewers behind one address.",
    )
    room_sockets_per_viewer: int = Field(
        5,
        ge=0,
        description="Room sockets one verified viewer (a member, a device, the host) may hold open in a show at "
        "once, per process; more are closed with 4429. 0: off.",
    )
    demo_show_id: str | None = Field(None, description="Simulate an audience in this show (set by `liveloop demo`).")
    livekit_url: str | None = Field(
        None, description="LiveKit server URL (wss://…) for video; none: HLS or a test card."
    )
    livekit_api_key: str | None = Field(None, description="LiveKit API key.")
    livekit_api_secret: str | None = Field(None, description="LiveKit API secret (never logged).")
    rate_limit_url: str = Field(
        "memory://",
        description="Where public rate limits count: memory:// (this process) or redis://… (shared by processes).",
    )
    rate_limit_ip_per_minute: int = Field(
        1200,
        ge=0,
        description="Public requests per minute per client address (IPv6: per /64), per route group; 0: off. "
        "Generous, as a carrier's NAT can put many viewers of one show behind one address.",
    )
    rate_limit_ip_burst: int = Field(300, ge=0, description="Public requests a client address may send at once.")
    rate_limit_device_per_minute: int = Field(
        120,
        ge=0,
        description="Public requests per minute per device (its ll_did cookie, when the server signed it; a "
        "forged one counts only against its address), per route group; 0: off.",
    )
    rate_limit_device_burst: int = Field(30, ge=0, description="Public requests a device may send at once.")
    rate_limit_max_keys: int = Field(
        100_000, ge=100, description="Buckets kept in memory (memory://); the least recently used go first."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


class SecretKeyMissing(Exception):
    """No secret key is configured and none can be kept for this setup; the message says how to set one."""


SECRET_KEY_HELP = (
    "Set LIVELOOP_SECRET_KEY to 32 or more random characters, the same in every process, e.g.\n"
    "  export LIVELOOP_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\n"
    "or set LIVELOOP_SECRET_KEY_FILE to a path where liveloop may generate one and keep it."
)


def secret_key_path(settings: Settings) -> Path | None:
    """The file that keeps a generated secret key: the configured one, else next to a SQLite database file."""
    if settings.secret_key_file is not None:
        return settings.secret_key_file
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
        return database.with_name(database.name + ".secret")
    return None


def persistent_secret_key(settings: Settings) -> tuple[str, str | None]:
    """The secret key a server process must use, and a sentence to tell the operator (or None).

    LIVELOOP_SECRET_KEY wins. Otherwise the key is read from :func:`secret_key_path`, or generated there on
    the first start (mode 0600), so viewer tokens, signed ids and keyed hashes survive a restart. With no
    such path (PostgreSQL and no LIVELOOP_SECRET_KEY_FILE), :class:`SecretKeyMissing` says how to set one.
    """
    if "secret_key" in settings.model_fields_set:
        return settings.secret_key, None
    path = secret_key_path(settings)
    if path is None:
        raise SecretKeyMissing(
            "LIVELOOP_SECRET_KEY is not set. With a database other than a SQLite file liveloop will not invent "
            "one: every process must share it, and tokens signed with it must survive a restart.\n" + SECRET_KEY_HELP
        )
    try:
        return _read_key_file(path), None
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it a moment ago
        return _read_key_file(path), None
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(key + "\n")
    return key, (
        f"Generated a secret key into {path} (readable only by you); it is reused on every start. "
        "Keep it with the database, or set LIVELOOP_SECRET_KEY instead."
    )


def _read_key_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretKeyMissing(
            f"The secret key file {path} may be read by other users (mode {stat.S_IMODE(mode):o}); "
            f"make it private with `chmod 600 {path}` and start again."
        )
    for _ in range(50):  # a file another process is still writing is empty for a moment
        key = path.read_text(encoding="utf-8").strip()
        if key:
            break
        time.sleep(0.02)
    if len(key) < 32:
        raise SecretKeyMissing(
            f"The secret key file {path} holds {len(key)} characters; a key has 32 or more. "
            f"Delete the file to have a new one generated, or write a longer key into it.\n" + SECRET_KEY_HELP
        )
    return key
