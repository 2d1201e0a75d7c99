"""The gateway's fast path: one frame's WebSocket bytes, written straight to every viewer's socket.

Server-to-client WebSocket frames are not masked, so a frame encoded once is byte-for-byte the same for
every viewer. ``liveloop serve`` runs uvicorn with :class:`GatewayProtocol`, which hands the connection's
transport to the app (``scope["extensions"]["liveloop.transport"]``); the room then writes each frame to
each transport directly, and a transport's write buffer is the viewer's bounded queue. Under any other
server the gateway falls back to ASGI sends, with the same behaviour and less speed.

Tokens never reach a log line. A viewer's token travels as the WebSocket subprotocol
(``Sec-WebSocket-Protocol: liveloop.v1, <token>``), not in the URL, and :class:`GatewayProtocol` keeps it out
of what the server logs: uvicorn prints the path with its query string, the websockets library prints every
handshake header at DEBUG, and uvicorn's TRACE message log prints the ASGI scope. A token someone still puts
in the query string is blanked before any of them runs (the gateway then refuses the socket).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State

TRANSPORT_KEY = "liveloop.transport"
SUBPROTOCOL = "liveloop.v1"  # offered first; the token is the other value offered
TOKEN_PARAMS = frozenset({"token", "access_token", "jwt"})  # query parameters that would carry a token
REDACTED = "redacted"
READ_SLICE = 4096  # bytes of a viewer's input parsed at a time; the rest waits until the app has taken it
_SECRET_HEADERS = frozenset({"sec-websocket-protocol", "authorization", "cookie"})


class Redacted(str):
    """A string whose ``repr`` hides it: a token in the ASGI scope, which uvicorn logs at TRACE with ``%s``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


def scrub_query(query: bytes) -> tuple[bytes, bool]:
    """The query string with any token parameter's value blanked, and whether there was one."""
    if not query or not any(name.encode() in query for name in TOKEN_PARAMS):
        return query, False
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    found = any(name in TOKEN_PARAMS for name, _ in pairs)
    if not found:
        return query, False
    kept = [(name, REDACTED if name in TOKEN_PARAMS else value) for name, value in pairs]
    return urlencode(kept).encode("latin-1"), True


def scrub_scope(scope: MutableMapping[str, Any]) -> None:
    """Blank a token in the query string and hide the offered subprotocols' token, in place (idempotent)."""
    query, found = scrub_query(scope.get("query_string", b""))
    if found:
        scope["query_string"] = query
        scope["extensions"] = {**(scope.get("extensions") or {}), "liveloop.token_in_query": True}
    offered = scope.get("subprotocols")
    if offered:
        scope["subprotocols"] = [p if p == SUBPROTOCOL else Redacted(p) for p in offered]


class _HandshakeLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The websockets library's logger, with the handshake's token-bearing header values and query blanked."""

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            self.logger.log(level, msg, *_redact(args), **kwargs)

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)


def _redact(args: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in _SECRET_HEADERS:
        return (args[0], "<redacted>")
    out = []
    for arg in args:
        if isinstance(arg, str) and "?" in arg:
            path, _, query = arg.partition("?")
            arg = path + "?" + scrub_query(query.encode("latin-1"))[0].decode("latin-1")
        out.append(arg)
    return tuple(out)


def binary_frame(payload: bytes) -> bytes:
    """A final, unmasked binary frame (RFC 6455 §5.2) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n) + payload
    return struct.pack("!BBQ", 0x82, 127, n) + payload


class _Inbox:
    """The part of asyncio.Queue that the protocol uses for incoming events, in a fraction of its memory."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class _Flag:
    """The part of asyncio.Event that the protocol uses for write flow control."""

    __slots__ = ("_is_set", "_waiters")

    def __init__(self) -> None:
        self._is_set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self._is_set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._is_set = False

    def is_set(self) -> bool:
        return self._is_set

    async def wait(self) -> bool:
        if not self._is_set:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            await waiter
        return True


class GatewayProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, telling the app which transport a connection uses.

    It also keeps less per connection: an idle viewer costs the queue and event of every connection, and a
    room has thousands of them.

    And it parses a viewer's input a slice at a time: a socket flooding the room (thousands of small frames in
    one read) is parsed as fast as the app takes its messages, not all at once in one callback that would hold
    the event loop for everyone else. While bytes wait unparsed, the socket is not read from, so TCP pushes
    back on the sender.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.logger = _HandshakeLog(self.conn.logger, {})
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        self.unread = bytearray()

    def data_received(self, data: bytes) -> None:
        if not self.handshake_complete or self.close_sent:
            super().data_received(data)
            return
        self.unread += data
        if not self.queue.empty():  # the app has messages to take first
            self._pause()
            return
        self._parse_some()

    def _parse_some(self) -> None:
        """Parse slices of what is unread until a message is queued for the app or nothing is left."""
        while self.unread and self.queue.empty() and not self.disconnected:
            chunk = bytes(self.unread[:READ_SLICE])
            del self.unread[:READ_SLICE]
            super().data_received(chunk)
        if self.unread:
            self._pause()
        elif self.read_paused and self.queue.empty():
            self.read_paused = False
            self.transport.resume_reading()

    def _pause(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> Any:
        if self.unread and self.queue.empty():
            self._parse_some()
        message = await self.queue.get()
        if self.queue.empty():
            if self.unread:
                self._parse_some()
            elif self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
        return message

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and scope.get("type") == "websocket":
            # The app's task is created, not run yet: nothing has logged the scope so far.
            scrub_scope(scope)
            scope["extensions"][TRANSPORT_KEY] = self.transport

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake is over: its request and response are not needed for the rest of the connection,
            # which may last hours (a few KB per viewer, times thousands of viewers).
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            # The handshake parser keeps the request alive in its frame; frames from here on are parsed by
            # the base protocol's parser, which is where the handshake parser delegates to anyway. Nothing is
            # buffered mid-frame at this point: the client has only just been told the handshake succeeded.
            if self.conn.state is State.OPEN:
                parser = Protocol.parse(self.conn)
                next(parser)
                self.conn.parser = parser
