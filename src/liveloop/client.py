"""An in-process client for the API: used by the demo, the benchmarks and the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
from fastapi import FastAPI

from liveloop.app import create_app, start_services
from liveloop.config import Settings
from liveloop.kit.signing import timestamped_signature
from liveloop.live.transport import SUBPROTOCOL


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its database and live gateway wired up, without the background worker."""
    app = create_app(settings)
    stop = await start_services(app, settings, worker=False)
    try:
        yield app
    finally:
        await stop()


def client_for(app: FastAPI, api_key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 5000)),
        base_url="http://testserver",
        headers=headers,
        follow_redirects=False,
    )


def signed_order_headers(shop_slug: str, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Liveloop-Shop": shop_slug,
        "X-Liveloop-Timestamp": str(ts),
        "X-Liveloop-Signature": timestamped_signature(secret, ts, body),
        "Content-Type": "application/json",
    }


def order_event(
    event_id: str,
    kind: str,
    order_id: str,
    customer_id: str,
    total_minor: int,
    *,
    currency: str = "USD",
    refunded_minor: int = 0,
    fingerprint: str | None = None,
    email: str | None = None,
    market: str | None = None,
) -> bytes:
    customer: dict[str, object] = {"id": customer_id}
    if email:
        customer["email"] = email
    if market:
        customer["market"] = market
    return orjson.dumps(
        {
            "id": event_id,
            "type": f"order.{kind}",
            "order": {
                "id": order_id,
                "currency": currency,
                "total_minor": total_minor,
                "refunded_minor": refunded_minor,
                "payment_fingerprint": fingerprint,
                "customer": customer,
            },
        }
    )


def room_url(base: str, show_id: str, since: int | None = None) -> str:
    """A show's room socket URL on ``base`` (http(s)://… or ws(s)://…); the token never goes in it."""
    url = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/") + f"/v1/live/{show_id}/ws"
    return url if since is None else f"{url}?since={since}"


def room_subprotocols(token: str) -> list[str]:
    """What a client offers as ``Sec-WebSocket-Protocol``: the room protocol, then its token.

    The server answers with ``liveloop.v1``; a token in the URL is refused (4401).
    """
    return [SUBPROTOCOL, token]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int, *, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """`liveloop serve` in a child process (no migration), returned once it accepts connections."""
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "liveloop.cli", "serve", "--port", str(port), "--no-migrate"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server exited") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"liveloop serve did not listen on port {port} within {timeout:.0f} s")
