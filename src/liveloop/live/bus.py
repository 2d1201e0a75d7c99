"""The room bus: carries room messages between processes, each with a sequence number.

Every message published to a room gets a number greater than the room's previous one, and every gateway
process receives every room's messages in that order. A viewer who reconnects to another gateway process
resumes from the last number it saw, because the numbers are the same everywhere.

- ``memory``: one process (the default with SQLite).
- ``redis``: Redis pub/sub. A Lua script increments the room's counter and publishes in one step, so the
  numbers of a room are 1, 2, 3… and arrive in that order.
- ``nats``: NATS JetStream. All rooms are subjects of one in-memory stream and the stream's sequence
  numbers them (increasing per room, with gaps that belong to other rooms).

Payloads are JSON objects as bytes, encoded once by the publisher; the bus prefixes the number
(``{"q":N,…``) so gateways embed the bytes in frames without decoding and re-encoding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from liveloop.live.protocol import with_seq

log = logging.getLogger(__name__)

__all__ = ["Bus", "MemoryBus", "NatsBus", "RedisBus", "create_bus", "with_seq"]

Handler = Callable[[str, int, bytes], None]  # (room, number, numbered payload)
# A bus started without a handler only publishes (a worker process that has no rooms of its own).


class Bus(Protocol):
    name: str
    # True when a room's numbers are 1, 2, 3… (a gap means a missed message).
    contiguous: bool
    # Messages numbered above this were all received by this process (for non-contiguous numbering).
    start_seq: int

    async def start(self, handler: Handler | None) -> None: ...

    async def publish(self, room: str, payload: bytes) -> int: ...

    async def close(self) -> None: ...


class MemoryBus:
    """All rooms in this process; the handler runs synchronously, in publish order."""

    name = "memory"
    contiguous = True
    start_seq = 0

    def __init__(self) -> None:
        self._seq: dict[str, int] = {}
        self._handler: Handler | None = None

    async def start(self, handler: Handler | None) -> None:
        self._handler = handler

    async def publish(self, room: str, payload: bytes) -> int:
        seq = self._seq.get(room, 0) + 1
        self._seq[room] = seq
        if self._handler is not None:
            self._handler(room, seq, with_seq(seq, payload))
        return seq

    async def close(self) -> None:
        self._handler = None


_PUBLISH_LUA = """
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 172800)
redis.call('PUBLISH', KEYS[2], seq .. ' ' .. ARGV[1])
return seq
"""


class RedisBus:
    """Redis pub/sub with one pattern subscription for all rooms."""

    name = "redis"
    contiguous = True
    start_seq = 0

    def __init__(self, url: str, *, prefix: str = "liveloop:room:") -> None:
        from redis import asyncio as aioredis

        self._redis = aioredis.from_url(url)
        self._prefix = prefix
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._script: Any = None
        self._handler: Handler | None = None

    async def start(self, handler: Handler | None) -> None:
        self._handler = handler
        await self._redis.ping()
        self._script = self._redis.register_script(_PUBLISH_LUA)
        if handler is None:
            return
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.psubscribe(self._prefix + "*")
        self._reader = asyncio.create_task(self._read(), name="liveloop-redis-bus")

    async def publish(self, room: str, payload: bytes) -> int:
        return int(await self._script(keys=[self._prefix + "seq:" + room, self._prefix + room], args=[payload]))

    async def _read(self) -> None:
        cut = len(self._prefix)
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None or message["type"] != "pmessage":
                    continue
                room = message["channel"].decode()[cut:]
                head, _, payload = message["data"].partition(b" ")
                seq = int(head)
                if self._handler is not None:
                    self._handler(room, seq, with_seq(seq, payload))
            except asyncio.CancelledError:
                raise
            except Exception:  # logged without payloads; redis-py reconnects on the next read
                log.exception("room bus (redis) read failed; retrying")
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._redis.aclose()


class NatsBus:
    """NATS JetStream: one memory stream holds every room's recent messages; its sequence numbers them."""

    name = "nats"
    contiguous = False

    def __init__(self, url: str, *, stream: str = "LIVELOOP_ROOMS", prefix: str = "liveloop.room.") -> None:
        self._url = url
        self._stream = stream
        self._prefix = prefix
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self.start_seq = 0

    async def start(self, handler: Handler | None) -> None:
        import nats
        from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig

        self._nc = await nats.connect(self._url, max_reconnect_attempts=-1)
        self._js = self._nc.jetstream()
        config = StreamConfig(
            name=self._stream,
            subjects=[self._prefix + ">"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.MEMORY,
            max_age=600.0,  # resume needs minutes of history, never more
        )
        try:
            info = await self._js.add_stream(config)
        except Exception:
            info = await self._js.update_stream(config)
        if handler is None:
            return
        cut = len(self._prefix)

        async def on_message(msg: Any) -> None:
            seq = int(msg.metadata.sequence.stream)
            handler(msg.subject[cut:], seq, with_seq(seq, msg.data))

        self.start_seq = int(info.state.last_seq)
        self._sub = await self._js.subscribe(
            self._prefix + ">",
            cb=on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.start_seq + 1),
        )

    async def publish(self, room: str, payload: bytes) -> int:
        ack = await self._js.publish(self._prefix + room, payload)
        return int(ack.seq)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()


def create_bus(url: str | None) -> Bus:
    """``None`` or ``memory://`` → in-process; ``redis://…`` → Redis; ``nats://…`` → NATS JetStream."""
    if not url or url.startswith("memory"):
        return MemoryBus()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBus(url)
    if url.startswith(("nats://", "tls://")):
        return NatsBus(url)
    raise ValueError(f"Unknown bus URL {url!r}; use memory://, redis://host:6379/0 or nats://host:4222.")
