"""The gateway's fast path: one frame's WebSocket bytes, written straight to every viewer's socket.

Server-to-client WebSocket frames are not masked, so a frame encoded once is byte-for-byte the same for
every viewer. ``liveloop serve`` runs uvicorn with :class:`GatewayProtocol`, which hands the connection's
transport to the app (``scope["extensions"]["liveloop.transport"]``); the room then writes each frame to
each transport directly, and a transport's write buffer is the viewer's bounded queue. Under any other
server the gateway falls back to ASGI sends, with the same behaviour and less speed.
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

TRANSPORT_KEY = "liveloop.transport"


def binary_frame(payload: bytes) -> bytes:
    """A final, unmasked binary frame (RFC 6455 §5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n) + payload
    return struct.pack("!BBQ", 0x82, 127, n) + payload


class GatewayProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, telling the app which transport a connection uses."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and scope.get("type") == "websocket":
            scope["extensions"][TRANSPORT_KEY] = self.transport

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake is over: its request and response are not needed for the rest of the connection,
            # which may last hours (a few KB per viewer, times thousands of viewers).
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
