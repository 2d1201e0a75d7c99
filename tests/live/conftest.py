"""A real HTTP/WebSocket server (uvicorn, in this event loop) around the test app, and a viewer client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from liveloop import client
from liveloop.client import free_port
from liveloop.kit.time import utc_now
from liveloop.live.transport import SUBPROTOCOL, GatewayProtocol
from tests.conftest import ShopCtx
from tests.factories import ok


@dataclass
class LiveServer:
    base: str
    ws_base: str


async def serve(app: Any, protocol: Any, **options: Any) -> AsyncIterator[LiveServer]:
    """uvicorn around ``app`` on a free local port, until the caller is done (``options``: more of its config)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", ws=protocol, **{"log_level": "warning", **options}
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield LiveServer(base=f"http://127.0.0.1:{port}", ws_base=f"ws://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def live_server(shop: ShopCtx, request: pytest.FixtureRequest) -> AsyncIterator[LiveServer]:
    """The server as `liveloop serve` runs it: frames go straight to each socket's transport.

    Parametrized indirectly with "plain", it runs a server that does not hand over transports, where the
    gateway sends through ASGI instead.
    """
    protocol = "websockets-sansio" if getattr(request, "param", "fast") == "plain" else GatewayProtocol
    async for server in serve(shop.app, protocol):
        yield server


@dataclass
class ViewerClient:
    """A viewer's socket that keeps every message it received, in order."""

    ws: ClientConnection
    hello: dict[str, Any]
    frames: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    last_q: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for f in self.frames for m in f.get("m", [])]

    async def send(self, **message: Any) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def pump(self, seconds: float = 0.3) -> None:
        """Read whatever arrives for ``seconds``."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except (TimeoutError, ConnectionClosed):
                return
            self._keep(orjson.loads(raw))

    async def until(self, predicate: Any, within: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not predicate(self):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"timed out; frames: {self.frames[-3:]}, errors: {self.errors}")
            raw = await asyncio.wait_for(self.ws.recv(), left)
            self._keep(orjson.loads(raw))

    def _keep(self, data: dict[str, Any]) -> None:
        if data.get("t") == "err":
            self.errors.append(data)
            return
        self.frames.append(data)
        for m in data.get("m", []):
            self.last_q = max(self.last_q, m["q"])

    def comments(self) -> list[str]:
        return [m["x"] for m in self.messages if m.get("k") in ("c", "hc")]

    async def close(self) -> None:
        await self.ws.close()


async def until_closed(ws: ClientConnection, *, within: float = 5.0, seen: list[Any] | None = None) -> None:
    """Read (frames may still arrive, kept in ``seen``) until the server closes the socket.

    A socket still open after ``within`` seconds fails the test with a TimeoutError.
    """
    async with asyncio.timeout(within):
        try:
            while True:
                message = await ws.recv()
                if seen is not None:
                    seen.append(message)
        except ConnectionClosed:
            return


def room_url(server: LiveServer, show_id: str, since: int | None = None) -> str:
    return client.room_url(server.ws_base, show_id, since)


def room_protocols(token: str) -> list[Subprotocol]:
    """What a viewer offers: the protocol, then its token (the way the viewer page does)."""
    return [Subprotocol(p) for p in client.room_subprotocols(token)]


async def join(server: LiveServer, token: str, show_id: str, since: int | None = None) -> ViewerClient:
    ws = await connect(room_url(server, show_id, since), subprotocols=room_protocols(token), max_size=2**20)
    assert ws.subprotocol == SUBPROTOCOL
    hello = orjson.loads(await ws.recv())
    return ViewerClient(ws=ws, hello=hello)


async def create_show(shop: ShopCtx, **overrides: Any) -> dict[str, Any]:
    body = {
        "title": "Autumn drop",
        "host_name": "Mai",
        "scheduled_at": (utc_now() + timedelta(hours=1)).isoformat(),
        **overrides,
    }
    return ok(await shop.api.post("/v1/shows", json=body), 201)


async def live_show(shop: ShopCtx, **overrides: Any) -> dict[str, Any]:
    show = await create_show(shop, **overrides)
    return ok(await shop.api.post(f"/v1/shows/{show['id']}/start"))


async def anonymous_token(shop: ShopCtx, show_id: str, name: str | None = None) -> dict[str, Any]:
    shop.api.cookies.clear()
    response = await shop.api.post(f"/v1/public/shows/{show_id}/join", json={"name": name} if name else None)
    body = ok(response)
    body["device_cookie"] = response.cookies.get("ll_did")  # the signed value this browser now holds
    shop.api.cookies.clear()
    return body
