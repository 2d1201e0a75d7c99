"""Settings: one object, read from the environment with the ``LIVELOOP_`` prefix."""

from __future__ import annotations

import secrets
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
        description="Signs click ids and viewer tokens. Set it in production; a random one is used otherwise.",
    )
    run_worker: bool = Field(True, description="Run the outbox and scheduled-job worker inside the API process.")
    worker_poll_seconds: float = Field(0.5, description="How often the worker looks for due work.")
    webhook_tolerance_seconds: int = Field(
        300, description="Incoming webhooks with a timestamp further off than this are refused."
    )
    webhook_timeout_seconds: float = Field(10.0, description="Timeout of one outgoing webhook delivery.")
    webhook_max_attempts: int = Field(12, description="Outgoing deliveries are retried up to this many times.")
    log_level: str = Field("INFO", description="Python logging level.")
    bus_url: str = Field(
        "memory://",
        description="Room bus between gateway processes: memory:// (one process), redis://…, nats://….",
    )
    frame_ms: int = Field(100, ge=20, le=1000, description="Live-room messages are sent in frames this often.")
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
        120, ge=0, description="Public requests per minute per device (its ll_did cookie), per route group; 0: off."
    )
    rate_limit_device_burst: int = Field(30, ge=0, description="Public requests a device may send at once.")
    rate_limit_max_keys: int = Field(
        100_000, ge=100, description="Buckets kept in memory (memory://); the least recently used go first."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
