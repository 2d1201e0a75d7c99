"""Room tokens: never in a URL, never in a log line, and a host token dies with the API key that minted it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from liveloop.kit.db import transaction
from liveloop.live import tokens
from liveloop.live.transport import GatewayProtocol
from liveloop.shops.service import revoke_api_key
from tests.conftest import ShopCtx
from tests.factories import ok
from tests.live.conftest import (
    LiveServer,
    anonymous_token,
    join,
    live_show,
    room_protocols,
    room_url,
    serve,
    until_closed,
)

LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.asgi", "uvicorn.access", "websockets", "liveloop")
CLIENTS = ("websockets.client", "httpx", "httpcore")  # the test's own clients, which log what they send


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENTS):
            self.lines.append(self.format(record))


@contextlib.contextmanager
def every_log_line() -> Iterator[Keep]:
    """Every log line of the server and its libraries, at every level down to uvicorn's TRACE."""
    keep = Keep()
    keep.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(1)
        logger.addHandler(keep)
    try:
        yield keep
    finally:
        for logger, level in saved:
            logger.removeHandler(keep)
            logger.setLevel(level)


@contextlib.asynccontextmanager
async def chatty_server(app: Any) -> AsyncIterator[LiveServer]:
    """The server as `liveloop serve` runs it (its WebSocket protocol), logging everything it can."""
    async for server in serve(app, GatewayProtocol, log_level="trace", log_config=None):
        yield server


async def refused(url: str, **kwargs: Any) -> tuple[int | None, str | None]:
    """The close code and reason of a socket the server closes right after the handshake."""
    async with connect(url, **kwargs) as ws:
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        return ws.close_code, ws.close_reason


async def test_a_join_logs_no_token_at_any_level_and_a_token_in_the_url_is_refused(shop: ShopCtx) -> None:
    show = await live_show(shop)
    token = (await anonymous_token(shop, show["id"], "Ann"))["token"]
    stray = (await anonymous_token(shop, show["id"], "Bob"))["token"]
    with every_log_line() as logs:
        async with chatty_server(shop.app) as server:
            ann = await join(server, token, show["id"])
            await ann.send(t="c", x="hello")
            await ann.until(lambda v: "hello" in v.comments())
            await ann.close()
            again = await join(server, token, show["id"], since=ann.last_q)  # ?since stays in the query
            await again.close()
            # The token in the URL, as clients did before: refused, with the way to do it instead.
            code, reason = await refused(f"{room_url(server, show['id'], since=0)}&token={stray}")
            assert code == 4401
            assert reason
            assert "subprotocol" in reason
            assert "liveloop.v1" in reason
            code, reason = await refused(room_url(server, show["id"]))
            assert code == 4401
            assert reason
            assert reason.startswith("missing_token")
            # The video-token endpoint takes the token from its header only, never from the query.
            answer = await shop.api.post(
                f"/v1/public/shows/{show['id']}/video-token?token={stray}", headers={"Authorization": ""}
            )
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "missing_token"
            assert (
                await shop.api.get(f"/v1/shows?access_token={shop.key}", headers={"Authorization": ""})
            ).status_code == 401
    text = "\n".join(logs.lines)
    # The capture did see the handshakes: uvicorn's request lines, the library's headers, the ASGI scope.
    assert '"WebSocket /v1/live/' in text
    assert "Sec-WebSocket-Protocol" in text
    assert "Started scope" in text
    for secret in (token, stray, token.split(".")[2], stray.split(".")[2]):
        assert secret not in text


async def test_a_revoked_key_ends_its_host_tokens_and_their_open_sockets(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop)
    gateway = shop.app.state.gateway
    gateway.active_keys.ttl = 0.5  # how long a revoked key may still be taken for one in force
    console = ok(await shop.api.post("/v1/api-keys", json={"name": "console", "scopes": ["live:write"]}), 201)
    grant = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/host-token", json={}, headers={"Authorization": f"Bearer {console['key']}"}
        ),
        201,
    )
    assert tokens.verify(shop.app.state.settings.secret_key, grant["token"]).key_id == console["id"]
    host = await join(live_server, grant["token"], show["id"])
    assert host.hello["you"]["role"] == "host"
    video = await shop.api.post(
        f"/v1/public/shows/{show['id']}/video-token", headers={"Authorization": f"Bearer {grant['token']}"}
    )
    assert video.json()["error"]["code"] == "video_not_configured"  # past the token: no provider here
    viewer = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])

    async with transaction(shop.app.state.sessions) as session:  # what `liveloop apikey revoke` does
        await revoke_api_key(session, shop.shop.id, console["id"])

    await until_closed(host.ws)  # closed within the cache's time, by the presence loop
    assert host.ws.close_code == 4401
    assert host.ws.close_reason == "token_revoked"
    assert await refused(room_url(live_server, show["id"]), subprotocols=room_protocols(grant["token"])) == (
        4401,
        "token_revoked",
    )
    video = await shop.api.post(
        f"/v1/public/shows/{show['id']}/video-token", headers={"Authorization": f"Bearer {grant['token']}"}
    )
    assert video.status_code == 401
    assert video.json()["error"]["code"] == "token_revoked"
    await viewer.send(t="c", x="still watching")  # viewers' tokens name no key: unaffected
    await viewer.until(lambda v: "still watching" in v.comments())
    # A host token that names no key cannot be revoked, so it is not taken at all.
    legacy = jwt.encode(
        {
            "iss": tokens.ISSUER,
            "aud": tokens.AUDIENCE,
            "sub": "d:host-old",
            "shop": shop.shop.id,
            "show": show["id"],
            "role": "host",
            "exp": 2_000_000_000,
        },
        shop.app.state.settings.secret_key,
        algorithm="HS256",
    )
    assert await refused(room_url(live_server, show["id"]), subprotocols=room_protocols(legacy)) == (
        4401,
        "invalid_token",
    )
