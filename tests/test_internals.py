"""The library internals liveloop's fast paths rely on are still there, in the shape they are used.

``live/transport.py`` subclasses uvicorn's sans-I/O WebSocket protocol and replaces parts of its state, and
``kit/batching.py`` encodes rows with SQLAlchemy's cached bind processors. An upgrade that renames or reshapes
any of these would otherwise break the room or the batch writer quietly; here it fails by name.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
from sqlalchemy import DateTime, Integer, String
from sqlalchemy.dialects import postgresql, sqlite
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol

# What GatewayProtocol reads or replaces on the base protocol, set by its __init__ or its handshake.
PROTOCOL_ATTRIBUTES = (
    "self.conn",
    "self.queue",
    "self.writable",
    "self.read_paused",
    "self.transport",
    "self.handshake_complete",
    "self.close_sent",
    "self.request",
    "self.response",
    "self.scope",
)
PROTOCOL_METHODS = ("data_received", "handle_connect", "send", "receive")


def test_uvicorn_sansio_protocol_keeps_the_state_the_gateway_replaces() -> None:
    source = inspect.getsource(WebSocketsSansIOProtocol)
    missing = [name for name in PROTOCOL_ATTRIBUTES if name not in source]
    assert missing == [], f"uvicorn's WebSocketsSansIOProtocol no longer has {missing}: revisit live/transport.py"
    for name in PROTOCOL_METHODS:
        assert callable(getattr(WebSocketsSansIOProtocol, name, None)), f"uvicorn no longer defines {name}"
    assert "self.disconnected" in source or hasattr(WebSocketsSansIOProtocol, "disconnected")


def test_uvicorn_queue_and_writable_are_used_as_the_gateway_replaces_them() -> None:
    """The gateway swaps the queue for its own inbox (put_nowait/get/empty) and the flag for set/clear/wait."""
    source = inspect.getsource(WebSocketsSansIOProtocol)
    for use in ("self.queue.put_nowait(", "await self.queue.get()", "self.writable.set()", "self.writable.clear()"):
        assert use in source, f"uvicorn no longer calls {use!r}: revisit _Inbox/_Flag in live/transport.py"


def test_websockets_parser_can_be_restarted_after_the_handshake() -> None:
    conn = ServerProtocol()
    assert hasattr(conn, "parser")
    assert hasattr(conn, "logger")
    assert hasattr(conn, "state")
    parser = Protocol.parse(conn)
    next(parser)  # a generator primed to read the first frame, as transport.py installs it
    conn.parser = parser
    assert State.OPEN.name == "OPEN"


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.asyncpg.dialect()], ids=["sqlite", "postgresql"])
def test_sqlalchemy_cached_bind_processor_encodes_rows(dialect: object) -> None:
    for column_type in (String(), Integer(), DateTime(timezone=True)):
        processor = getattr(column_type, "_cached_bind_processor", None)
        assert callable(processor), "SQLAlchemy's TypeEngine._cached_bind_processor is gone: revisit kit/batching.py"
        encode = processor(dialect)
        assert encode is None or callable(encode)


def test_asyncio_transport_buffer_size_is_there() -> None:
    """Connection.push measures how far behind a viewer is by the transport's write buffer."""
    assert callable(getattr(asyncio.WriteTransport, "get_write_buffer_size", None))
