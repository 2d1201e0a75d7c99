"""One room in one gateway process: coalesces bus messages into frames and fans the bytes out.

Every ``frame_ms`` the room turns what arrived since the last frame into one frame, encodes it once and
hands the same bytes to every connection. Messages travel in two lanes: the priority lane (system
events, perks, pins, lottery and flash-offer results, order notices) is never dropped; the danmaku lane
is sampled when more comments arrive in one frame than a viewer can read, and the frame still carries
the true count. Each connection has a bounded queue: a viewer that falls too far behind is closed with
``CLOSE_TOO_SLOW`` and resumes from the last message number it saw when it reconnects.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from liveloop.live.protocol import (
    CARD_KINDS,
    CLOSE_TOO_SLOW,
    DANMAKU,
    LIKES,
    PRESENCE,
    SHARES,
    VOTE,
    seq_of,
)
from liveloop.live.transport import binary_frame

_NO_QUEUE: deque[bytes] = deque(maxlen=0)


class _NoWake:
    def set(self) -> None:
        return None


_NO_WAKE: Any = _NoWake()


class Connection:
    """What a room needs of a viewer's socket: a bounded queue of frames and a way to close it."""

    __slots__ = (
        "close_code",
        "closing",
        "key",
        "limit",
        "max_buffer",
        "on_close",
        "on_overflow",
        "queue",
        "transport",
        "wake",
    )

    def __init__(self, key: str, *, limit: int, transport: Any = None, max_buffer: int = 0) -> None:
        self.key = key
        # Only connections without a transport queue frames here (a deque and an Event cost ~1.5 KB each).
        self.queue: deque[bytes] = deque() if transport is None else _NO_QUEUE
        self.limit = limit
        self.wake = asyncio.Event() if transport is None else _NO_WAKE
        self.closing = False
        self.close_code = 1000
        self.on_overflow: Callable[[], Any] | None = None
        self.on_close: Callable[[int], Any] | None = None
        # With a transport, frames are written to it directly and its write buffer is the bounded queue.
        self.transport = transport
        self.max_buffer = max_buffer

    def push(self, data: bytes, wire: bytes | None = None) -> bool:
        """Queue a frame; False (and the connection marked to close) when the viewer is too far behind.

        ``wire`` is the same frame already encoded as WebSocket bytes, for connections with a transport.
        """
        if self.closing:
            return False
        transport = self.transport
        if transport is not None:
            if transport.is_closing():
                self.close(1006)
                return False
            if transport.get_write_buffer_size() > self.max_buffer:
                self.close(CLOSE_TOO_SLOW)
                return False
            transport.write(wire if wire is not None else binary_frame(data))
            return True
        if len(self.queue) >= self.limit:
            self.queue.clear()
            if self.on_overflow is not None:
                self.on_overflow()
            self.close(CLOSE_TOO_SLOW)
            return False
        self.queue.append(data)
        self.wake.set()
        return True

    def close(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        if self.transport is None:
            self.wake.set()
        if self.on_close is not None:
            self.on_close(code)


class Room:
    def __init__(
        self,
        room_id: str,
        *,
        frame_ms: int = 100,
        danmaku_per_frame: int = 20,
        history_size: int = 5000,
        floor: int = 0,
        contiguous: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = room_id
        self.frame_ms = frame_ms
        self.danmaku_per_frame = danmaku_per_frame
        self.connections: set[Connection] = set()
        self.frame_no = 0
        self.last_seq = 0  # the newest message number received
        self.delivered_seq = 0  # the newest message number already sent out in a frame
        # Messages numbered above ``floor`` that reached this process are all in ``history``.
        self.floor = floor
        self.contiguous = contiguous
        self.history: deque[tuple[int, bytes]] = deque(maxlen=history_size)
        self._priority: list[bytes] = []
        self._danmaku: list[bytes] = []
        self.likes = 0
        self.shares: dict[str, int] = {}
        self._presence: dict[str, tuple[float, int]] = {}  # process → (when, viewers it counts)
        self._changed = False
        self._clock = clock
        self.cards: dict[str, bytes] = {}  # active cards by id: the last message that set each
        self.cards_loaded = False  # whether the open interactions were read from the database
        self.votes: dict[str, list[int]] = {}  # running tallies of the open polls, by card and option
        self._mids: set[str] = set()  # ids of the recent durable messages (see live/notify.py)
        self._mid_order: deque[str] = deque(maxlen=2048)
        self.sampled_out = 0  # danmaku not shown because of sampling, since the room opened
        self.overflows = 0  # connections closed for being too slow
        self.last_active = clock()

    # --- from the bus ----------------------------------------------------------------------------------

    def on_message(self, seq: int, raw: bytes) -> None:
        if seq <= self.last_seq:
            return  # a duplicate delivery
        if self.contiguous and self.last_seq == 0 and seq > self.floor + 1:
            self.floor = seq - 1  # this process joined the room late: earlier numbers never reached it
        self.last_seq = seq
        self.last_active = self._clock()
        # A comment, the bulk of the traffic: no need to decode it (protocol.COMMENT_MARK before COMMENT_MARK_END).
        if raw.find(b'"k":"c",', 5, 32) != -1:
            self._danmaku.append(raw)
            return
        message = orjson.loads(raw)
        mid = message.get("mid")
        if mid is not None:
            if mid in self._mids:
                return  # published again by a relay after its first publisher died: shown once
            if len(self._mid_order) == self._mid_order.maxlen:
                self._mids.discard(self._mid_order[0])
            self._mid_order.append(mid)
            self._mids.add(mid)
        kind = message.get("k")
        if kind == DANMAKU:
            self._danmaku.append(raw)
            return
        if kind == LIKES:
            self.likes += int(message.get("n", 0))
            self._changed = True
            return
        if kind == PRESENCE:
            self._presence[str(message.get("p"))] = (self._clock(), int(message.get("n", 0)))
            self._changed = True
            return
        if kind == SHARES:
            channel = str(message.get("ch"))
            self.shares[channel] = self.shares.get(channel, 0) + 1
            return
        card = message.get("card")
        if card and kind in CARD_KINDS:
            if message.get("end"):
                self.cards.pop(str(card), None)
                self.votes.pop(str(card), None)
            else:
                self.cards[str(card)] = raw
        elif card and kind == VOTE:
            self._count_vote(str(card), message.get("o"))
        self._priority.append(raw)

    def _count_vote(self, card: str, option: Any) -> None:
        if not isinstance(option, int) or isinstance(option, bool) or not 0 <= option < 100:
            return
        votes = self.votes.setdefault(card, [])
        if option >= len(votes):
            votes.extend([0] * (option + 1 - len(votes)))
        votes[option] += 1

    # --- frames ----------------------------------------------------------------------------------------

    @property
    def viewers(self) -> int:
        cutoff = self._clock() - 5.0
        return sum(n for when, n in self._presence.values() if when >= cutoff)

    def build_frame(self) -> bytes | None:
        """The next frame's bytes, or None when nothing happened since the last one."""
        if not (self._priority or self._danmaku or self._changed):
            return None
        danmaku = self._danmaku
        total = len(danmaku)
        if total > self.danmaku_per_frame:
            step = total / self.danmaku_per_frame
            danmaku = [danmaku[int(i * step)] for i in range(self.danmaku_per_frame)]
            self.sampled_out += total - len(danmaku)
        messages = self._priority + danmaku
        history = self.history
        for raw in messages:
            if len(history) == history.maxlen:
                self.floor = max(self.floor, history[0][0])  # the oldest message is about to be forgotten
            history.append((seq_of(raw), raw))
        self.delivered_seq = self.last_seq
        self._priority = []
        self._danmaku = []
        self._changed = False
        self.frame_no += 1
        return b"".join(
            (
                b'{"t":"f","n":%d,"q":%d,"lk":%d,"v":%d,"dc":%d,"m":['
                % (self.frame_no, self.last_seq, self.likes, self.viewers, total),
                b",".join(messages),
                b"]}",
            )
        )

    def broadcast(self, frame: bytes) -> int:
        """Give the frame to every connection; returns how many were closed for being too slow."""
        slow = 0
        wire = binary_frame(frame)  # encoded once: the same bytes go to every socket
        for conn in self.connections:
            if not conn.closing and not conn.push(frame, wire) and conn.close_code == CLOSE_TOO_SLOW:
                slow += 1
        self.overflows += slow
        return slow

    def tick(self) -> bytes | None:
        frame = self.build_frame()
        if frame is not None:
            self.broadcast(frame)
        return frame

    # --- joining and resuming --------------------------------------------------------------------------

    def can_resume(self, since: int) -> bool:
        """Whether every message numbered above ``since`` that this room delivered is still here."""
        return since >= self.floor

    def since(self, since: int) -> list[bytes]:
        return [raw for seq, raw in self.history if seq > since]

    def resume_frame(self, since: int) -> bytes:
        """A frame with everything after ``since`` (``gap`` is true when some of it is gone)."""
        ok = self.can_resume(since)
        messages: Iterable[bytes] = self.since(since) if ok else self.cards.values()
        return b"".join(
            (
                b'{"t":"r","gap":%s,"q":%d,"lk":%d,"v":%d,"m":['
                % (b"false" if ok else b"true", self.delivered_seq, self.likes, self.viewers),
                b",".join(messages),
                b"]}",
            )
        )
