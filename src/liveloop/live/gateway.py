"""The gateway: viewers' WebSockets, the rooms of this process, and the bus that joins processes.

Joining: ``/v1/live/{show}/ws[?since=N]``, with the viewer's (or host's) token as the WebSocket subprotocol, never
in the URL (servers and proxies log URLs)::

    new WebSocket(url, ["liveloop.v1", token])       // Sec-WebSocket-Protocol: liveloop.v1, <token>

The server accepts with the subprotocol ``liveloop.v1``. A token in the query string is refused (4401).

The messages, their kinds, the close codes and the byte-level facts the fast paths rely on are written down in
``live/protocol.py``. In short: the client sends JSON objects ({"t":"hb"}, {"t":"c","x":"text"}, {"t":"l","n":5},
{"t":"s","ch":"whatsapp"}, and the mechanics' inputs), the server answers with binary frames of UTF-8 JSON (the
hello, a resume, frames every ``frame_ms``, ``ok`` and ``err`` replies). This module keeps the connections, parses
each input and dispatches it by its ``"t"`` through a table (:attr:`Gateway.handlers`); the mechanics' inputs are
handled in ``live/participation.py``, and every statement it runs is in ``live/repository.py``.

A viewer appears to others by its alias in the show ("a", see live/aliases.py) and display name ("u"), never by
its viewer key, member id or device id: nothing a frame carries grants anything.

Budgets are per verified viewer, not per socket: a viewer's sockets in a show share one comment, like and
input budget. Inputs that write to the database (answers, votes, team joins, claims, lottery entries, co-host
requests) are queued and written for many viewers at once, in one short transaction (~10 ms) every ~50 ms;
the reply (``{"t":"ok",…}`` or ``{"t":"err",…}``) comes after the commit. When the queue is full the input is
refused with ``try_again``. A viewer over a budget is not read from for a moment, so a flood waits in its own
socket's buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from liveloop.kit.batching import TransactionBatcher, TTLCache
from liveloop.kit.db import transaction
from liveloop.kit.errors import Unauthorized
from liveloop.kit.ids import new_id
from liveloop.kit.ratelimit import address_key
from liveloop.kit.time import utc_now
from liveloop.live import interactions, moderation, repository, service, tokens
from liveloop.live.aliases import alias
from liveloop.live.bus import Bus
from liveloop.live.participation import CHALLENGE_PER_VIEWER, OpenInteraction, Participation
from liveloop.live.presence import Presence
from liveloop.live.protocol import (
    CLOSE_BAD_FRAME,
    CLOSE_BANNED,
    CLOSE_GOING_AWAY,
    CLOSE_SHOW_ENDED,
    CLOSE_TOO_MANY_SOCKETS,
    CLOSE_UNAUTHORIZED,
    DANMAKU,
    HOST_DANMAKU,
    LIKES,
    PRESENCE,
    SHARES,
    UNKNOWN_TYPE_MESSAGE,
    ClientKind,
    PublicShow,
    encode_comment,
)
from liveloop.live.repository import ShowRepository
from liveloop.live.room import Connection, Room
from liveloop.live.transport import SUBPROTOCOL, TRANSPORT_KEY, scrub_scope
from liveloop.live.viewers import HOLD_SECONDS, Budget, ShowInfo, Viewer
from liveloop.live.viewers import refuse as _refuse  # the name the error-code scan knows a room refusal by
from liveloop.models import RestrictionKind, Show, ShowStatus
from liveloop.referral.links import CHANNELS

log = logging.getLogger(__name__)

__all__ = [  # moved to their own modules, still importable from here
    "CHALLENGE_PER_VIEWER",
    "CLOSE_TOO_MANY_SOCKETS",
    "HOLD_SECONDS",
    "Budget",
    "Gateway",
    "OpenInteraction",
    "RoomSockets",
    "ShowInfo",
    "Viewer",
    "public_show",
]

MAX_INPUT_BYTES = 2048
MAX_LIKES_PER_MESSAGE = 50
INPUTS_PER_SECOND = 2.0  # answers, votes, team joins, claims and co-host requests per viewer, after a burst of
INPUTS_BURST = 10
BUDGET_KEEP_SECONDS = 60.0  # a viewer's budget outlives its last socket this long: reconnecting does not refill it


# Called with (show id, viewer, text) for each accepted comment: keyword mechanics listen here.
CommentHook = Callable[[str, Viewer, str], Awaitable[None]]
# Handles one parsed input of a kind (see live/protocol.py, ClientKind); returns what to await, if anything.
InputHandler = Callable[[ShowInfo, Viewer, dict[str, Any]], Awaitable[None] | None]


class Gateway:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        secret: str,
        frame_ms: int = 100,
        queue_frames: int = 100,
        flush_seconds: float = 3.0,
        history_size: int = 5000,
        max_buffer: int = 512 * 1024,
        sockets_per_ip: int = 100,
        sockets_per_viewer: int = 5,
        key_check_seconds: float = 3.0,
        write_interval: float = 0.05,  # at most one transaction of room writes this often,
        write_hold: float = 0.01,  # taking inputs for at most this long: SQLite's connection stays mostly free
        max_pending_writes: int = 5000,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.secret = secret
        self.frame_ms = frame_ms
        self.queue_frames = queue_frames
        self.flush_seconds = flush_seconds
        self.history_size = history_size
        self.max_buffer = max_buffer  # bytes a viewer may have unread before it is closed as too slow
        self.sockets_per_ip = sockets_per_ip  # 0: no cap
        self.sockets_per_viewer = sockets_per_viewer  # 0: no cap
        self._sockets_by_address: dict[str, int] = {}
        self._budgets: dict[tuple[str, str], Budget] = {}  # (show, viewer key) → its budget
        self._budgets_pruned = time.monotonic()
        # API key id → still in force; a host token minted by a revoked key stops working within this TTL.
        self.active_keys: TTLCache[str, bool] = TTLCache(key_check_seconds)
        self._keyed: set[Viewer] = set()  # sockets of tokens that name an API key (hosts)
        self.writes = TransactionBatcher(
            sessions,
            interval=write_interval,
            max_hold=write_hold,
            max_pending=max_pending_writes,
            name="liveloop-room-writes",
        )
        self.process = f"{os.getpid()}-{new_id('gw')[-6:]}"
        self.rooms: dict[str, Room] = {}
        self.viewers: dict[str, set[Viewer]] = {}
        self.presence = Presence(secret=secret)
        self._shows: TTLCache[str, ShowInfo] = TTLCache(2.0)
        self._loading: dict[str, asyncio.Future[ShowInfo | None]] = {}
        self._likes: dict[str, int] = {}  # not yet published, per show
        self._counts: dict[tuple[str, str], int] = {}  # not yet written: (show, counter) → increment
        self._interacted: dict[str, set[str]] = {}  # not yet written: show → viewer keys
        self._last_presence: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._aliases: dict[str, dict[str, str]] = {}  # show → alias → viewer key, of viewers who joined here
        self.on_effective_view: Callable[[Any], Awaitable[None]] | None = None
        self.clock: Callable[[], datetime] = utc_now  # heartbeats are stamped with it
        self.mechanics = Participation(sessions, self.writes, self._count, lambda: self.clock())
        self._team_score = self.mechanics.team_score
        self.comment_hooks: list[CommentHook] = [self.mechanics.on_comment]
        # The dispatch table: a viewer's input by its "t" (plain str keys: the dict's fastest lookup).
        self.handlers: dict[str, InputHandler] = {
            ClientKind.HEARTBEAT.value: self._heartbeat,
            ClientKind.COMMENT.value: self._comment,
            ClientKind.LIKES.value: self._like,
            ClientKind.SHARE.value: self._share,
            ClientKind.ANSWER.value: self.mechanics.take_part,
            ClientKind.VOTE.value: self.mechanics.take_part,
            ClientKind.TEAM.value: self.mechanics.take_part,
            ClientKind.CLAIM.value: self.mechanics.take_part,
            ClientKind.COHOST.value: self.mechanics.ask_to_cohost,
        }

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self._on_bus)
        self._tasks = [
            asyncio.create_task(self._ticker(), name="liveloop-frames"),
            asyncio.create_task(self._presence_loop(), name="liveloop-presence"),
            asyncio.create_task(self._flush_loop(), name="liveloop-live-flush"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.writes.close()  # what viewers sent is written (and answered) before the sockets close
        with contextlib.suppress(Exception):
            await self.flush()
        for viewers in self.viewers.values():
            for viewer in viewers:
                viewer.conn.close(CLOSE_GOING_AWAY)
        await self.bus.close()

    def room(self, show_id: str) -> Room:
        room = self.rooms.get(show_id)
        if room is None:
            room = Room(
                show_id,
                frame_ms=self.frame_ms,
                history_size=self.history_size,
                floor=self.bus.start_seq,
                contiguous=self.bus.contiguous,
            )
            self.rooms[show_id] = room
        return room

    def _on_bus(self, room_id: str, seq: int, raw: bytes) -> None:
        room = self.room(room_id)
        room.on_message(seq, raw)
        # The byte-level checks of live/protocol.py (CARD_MARK, STATUS_MARK, SHOW_MARK, RESTRICT_MARK).
        if b'"card":"ia_' in raw and b'"status":' in raw:  # an interaction was launched or settled
            self.mechanics.forget(room_id)
        if b'"k":"show"' in raw or b'"k":"restrict"' in raw:
            self._shows.forget(room_id)
            change = orjson.loads(raw)
            banned = None
            if change.get("kind") == RestrictionKind.BAN and not change.get("lifted"):
                banned = self.connected_key(room_id, str(change.get("a")))
            for viewer in self.viewers.get(room_id, ()):
                if change.get("status") == ShowStatus.ENDED:
                    viewer.conn.close(CLOSE_SHOW_ENDED)
                elif banned is not None and viewer.claims.key == banned and not viewer.claims.is_host:
                    viewer.conn.close(CLOSE_BANNED)

    def alias(self, show_id: str, claims: tokens.ViewerClaims) -> str:
        """What the room shows of this viewer in this show (its key stays with the server)."""
        return alias(self.secret, show_id, claims.key)

    def connected_key(self, show_id: str, alias_: str) -> str | None:
        """The verified key of a viewer who joined the show through this process with alias ``alias_``."""
        return self._aliases.get(show_id, {}).get(alias_)

    # --- background loops ------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        interval = self.frame_ms / 1000
        next_at = time.monotonic()
        while True:
            next_at += interval
            try:
                for show_id, n in list(self._likes.items()):
                    del self._likes[show_id]
                    await self.bus.publish(show_id, b'{"k":"%s","n":%d}' % (LIKES.encode(), n))
                for room in list(self.rooms.values()):
                    room.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("frame tick failed")
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()  # running late: do not try to catch up with a burst
                delay = 0
            await asyncio.sleep(delay)

    async def _presence_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                counts = self.presence.counts(self.clock())
                for show_id in set(counts) | set(self._last_presence):
                    n = counts.get(show_id, 0)
                    if n or self._last_presence.get(show_id):
                        await self.bus.publish(
                            show_id, b'{"k":"%s","p":"%s","n":%d}' % (PRESENCE.encode(), self.process.encode(), n)
                        )
                    self._last_presence[show_id] = n
                    if not n:
                        self._last_presence.pop(show_id, None)
                self._evict_idle_rooms()
                self._prune_budgets()
                await self._close_revoked()
                await self.mechanics.apply_progress()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("presence update failed")

    def _evict_idle_rooms(self) -> None:
        cutoff = time.monotonic() - 900
        for show_id, room in list(self.rooms.items()):
            if not room.connections and room.last_active < cutoff:
                del self.rooms[show_id]
                self._aliases.pop(show_id, None)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing presence and counters failed; retrying on the next pass")

    async def flush(self) -> None:
        """Write heartbeats, counters and interactions gathered since the last flush, in one transaction."""
        counts, self._counts = self._counts, {}
        interacted, self._interacted = self._interacted, {}
        now = self.clock()
        try:
            async with transaction(self.sessions) as session:
                batch = await self.presence.flush(session)
                if counts:
                    await repository.add_counts(session, counts)
                for show_id, keys in interacted.items():
                    await repository.mark_interacted(session, show_id, keys, now)
        except BaseException:
            for key, value in counts.items():  # keep them for the next pass
                self._counts[key] = self._counts.get(key, 0) + value
            for show_id, keys in interacted.items():
                self._interacted.setdefault(show_id, set()).update(keys)
            raise
        self.presence.flushed(batch, now)
        if self.on_effective_view is not None:
            for view in batch.effective:
                if view.member_id:
                    try:
                        await self.on_effective_view(view)
                    except Exception:
                        log.exception("effective view of show %s could not be applied", view.show_id)

    def add_likes(self, show_id: str, n: int) -> None:
        """Likes are summed in memory, published once per frame and written in batches."""
        self._likes[show_id] = self._likes.get(show_id, 0) + n
        self._count(show_id, repository.LIKES_COUNTER, n)

    def _count(self, show_id: str, name: str, n: int = 1) -> None:
        key = (show_id, name)
        self._counts[key] = self._counts.get(key, 0) + n

    # --- shows -----------------------------------------------------------------------------------------

    async def show_info(self, show_id: str) -> ShowInfo | None:
        info = self._shows.get(show_id)
        if info is not None:
            return info
        loading = self._loading.get(show_id)
        if loading is None:  # one query for everyone who joins while it runs
            loading = asyncio.ensure_future(self._load_show(show_id))
            self._loading[show_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(show_id, None))
        return await asyncio.shield(loading)

    async def _load_show(self, show_id: str) -> ShowInfo | None:
        async with self.sessions() as session:
            show = await ShowRepository(session).by_id(show_id)
            if show is None:
                return None
            limits = await service.restrictions(session, show_id)
            info = ShowInfo(
                id=show.id,
                shop_id=show.shop_id,
                status=show.status,
                language=show.language,
                rules=moderation.Rules.of(show.moderation),
                muted=limits[RestrictionKind.MUTE],
                banned=limits[RestrictionKind.BAN],
                public=public_show(show),
            )
        self._shows.put(show_id, info)
        return info

    # --- a viewer's connection -------------------------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send, show_id: str) -> None:
        """One viewer's socket, as a plain ASGI WebSocket (no framework objects held per connection)."""
        if (await receive())["type"] != "websocket.connect":
            return
        scrub_scope(scope)  # before the accept, which servers log with the path and query string
        offered = [str(p) for p in scope.get("subprotocols") or ()]
        speaks = SUBPROTOCOL in offered
        token = next((p for p in offered if p != SUBPROTOCOL), "") if speaks else ""
        del offered
        scope["subprotocols"] = []
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        since = _int(query.get("since", [None])[0])
        token_in_query = bool(scope.get("extensions", {}).get("liveloop.token_in_query"))
        del query
        await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL} if speaks else {"type": "websocket.accept"})
        client = scope.get("client")
        address = self._address(str(client[0])) if client else ""
        scope["headers"] = []  # not needed past the handshake; a connection may last for hours
        if token_in_query:
            await _close(send, CLOSE_UNAUTHORIZED, "token_in_query: send it as the subprotocol: liveloop.v1, <token>")
            return
        if not token:
            await _close(send, CLOSE_UNAUTHORIZED, "missing_token: send it as the subprotocol: liveloop.v1, <token>")
            return
        try:
            claims = tokens.verify(self.secret, token, show_id=show_id)
        except Unauthorized as exc:
            await _close(send, CLOSE_UNAUTHORIZED, exc.code)
            return
        del token
        show = await self.show_info(show_id)
        if show is None or show.shop_id != claims.shop_id:
            await _close(send, CLOSE_UNAUTHORIZED, "show_not_found")
            return
        if show.status == ShowStatus.ENDED:
            await _close(send, CLOSE_SHOW_ENDED, "show_ended")
            return
        if claims.key in show.banned:
            await _close(send, CLOSE_BANNED, "banned")
            return
        if claims.key_id is not None and not await self.key_active(claims.key_id):
            await _close(send, CLOSE_UNAUTHORIZED, "token_revoked")
            return
        room = self.room(show_id)
        if not room.cards_loaded:
            await self._load_cards(room)
        # From here to the registration below nothing awaits, so the caps cannot be raced past.
        budget = self._budget(show, claims)
        if self.sockets_per_viewer and budget.sockets >= self.sockets_per_viewer:
            await _close(send, CLOSE_TOO_MANY_SOCKETS, "too_many_sockets: this viewer has too many open; close one")
            return
        if self.sockets_per_ip and address and self._sockets_by_address.get(address, 0) >= self.sockets_per_ip:
            await _close(send, CLOSE_TOO_MANY_SOCKETS, "too_many_sockets: this address has too many open; close one")
            return
        transport = scope.get("extensions", {}).get(TRANSPORT_KEY)
        conn = Connection(claims.key, limit=self.queue_frames, transport=transport, max_buffer=self.max_buffer)
        viewer = Viewer(claims=claims, conn=conn, budget=budget, address=address)
        budget.sockets += 1
        if address:
            self._sockets_by_address[address] = self._sockets_by_address.get(address, 0) + 1
        if claims.key_id is not None:
            self._keyed.add(viewer)
        try:
            await send({"type": "websocket.send", "bytes": self._hello(room, show, claims)})
            if since is not None:
                await send({"type": "websocket.send", "bytes": room.resume_frame(since)})
            closing: list[asyncio.Task[None]] = []
            # Closing (too slow, banned, show over) is an ASGI close from wherever it is decided; the server then
            # hands this loop a disconnect, which ends it.
            conn.on_close = lambda code: closing.append(
                asyncio.get_running_loop().create_task(_close(send, code, viewer.close_reason))
            )
            writer = None if transport is not None else asyncio.create_task(self._write(send, conn))
            if writer is not None:
                conn.on_overflow = writer.cancel  # a send stuck on a slow viewer must not hold the close
            room.connections.add(conn)
            self.viewers.setdefault(show_id, set()).add(viewer)
            self.presence.beat(show.shop_id, show_id, claims.key, claims.member_id, claims.device_id, self.clock())
            try:
                while not conn.closing:
                    message = await receive()
                    if message["type"] != "websocket.receive":
                        break
                    data = message.get("bytes")
                    if data is None:
                        data = (message.get("text") or "").encode()
                    parsed = _parse_input(data)
                    if parsed is None:
                        conn.close(CLOSE_BAD_FRAME)
                        break
                    await self.handle_input(await self.show_info(show_id) or show, viewer, parsed)
                    hold = budget.hold_until - time.monotonic()
                    if hold > 0:  # a flood waits in its own socket's buffers, not in this process
                        await asyncio.sleep(hold)
            finally:
                room.connections.discard(conn)
                self.viewers.get(show_id, set()).discard(viewer)
                if writer is not None:
                    writer.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await writer
                for task in closing:
                    with contextlib.suppress(Exception):
                        await task
        finally:
            self._release(viewer)

    def _address(self, host: str) -> str:
        """What counts as one client address (IPv6: its /64), as a keyed hash: no address is kept in memory."""
        key = address_key(host).encode()
        return hashlib.blake2b(key, key=self.secret.encode()[:64], digest_size=12).hexdigest()

    def _budget(self, show: ShowInfo, claims: tokens.ViewerClaims) -> Budget:
        key = (show.id, claims.key)
        budget = self._budgets.get(key)
        if budget is None:
            now, rules = time.monotonic(), show.rules
            budget = Budget(
                comments=moderation.TokenBucket(rules.comments_per_10s / 10, rules.comments_per_10s, now),
                likes=moderation.TokenBucket(rules.likes_per_second, rules.likes_per_second * 2, now),
                inputs=moderation.TokenBucket(INPUTS_PER_SECOND, INPUTS_BURST, now),
            )
            self._budgets[key] = budget
        return budget

    def _release(self, viewer: Viewer) -> None:
        viewer.budget.sockets -= 1
        viewer.budget.idle_since = time.monotonic()
        self._keyed.discard(viewer)
        if viewer.address:
            left = self._sockets_by_address.get(viewer.address, 1) - 1
            if left > 0:
                self._sockets_by_address[viewer.address] = left
            else:
                self._sockets_by_address.pop(viewer.address, None)

    def _prune_budgets(self) -> None:
        """Forget the budgets of viewers gone for a while (a viewer back later starts afresh)."""
        now = time.monotonic()
        if now - self._budgets_pruned < 10:
            return
        self._budgets_pruned = now
        cutoff = now - BUDGET_KEEP_SECONDS
        for key, budget in list(self._budgets.items()):
            if budget.sockets <= 0 and budget.idle_since < cutoff:
                del self._budgets[key]

    # --- API keys behind host tokens -------------------------------------------------------------------

    async def key_active(self, key_id: str, session: AsyncSession | None = None) -> bool:
        """Whether the API key is still in force (cached for a few seconds)."""
        cached = self.active_keys.get(key_id)
        if cached is not None:
            return cached
        return (await self._check_keys({key_id}, session))[key_id]

    async def check_key(self, claims: tokens.ViewerClaims, session: AsyncSession | None = None) -> None:
        """``Unauthorized`` (``token_revoked``) when the token names an API key that has been revoked."""
        if claims.key_id is not None and not await self.key_active(claims.key_id, session):
            raise Unauthorized(
                "The API key that minted this host token has been revoked; mint a new host token with a key in force.",
                code="token_revoked",
            )

    async def _check_keys(self, key_ids: set[str], session: AsyncSession | None = None) -> dict[str, bool]:
        if session is not None:
            active = await repository.active_keys(session, key_ids)
        else:
            async with self.sessions() as own:
                active = await repository.active_keys(own, key_ids)
        found = {key_id: key_id in active for key_id in key_ids}
        for key_id, ok in found.items():
            self.active_keys.put(key_id, ok)
        return found

    async def _close_revoked(self) -> None:
        """Close the open sockets of host tokens whose API key was revoked (checked once per cache TTL)."""
        if not self._keyed:
            return
        key_ids = {v.claims.key_id for v in self._keyed if v.claims.key_id is not None}
        stale = {k for k in key_ids if self.active_keys.get(k) is None}
        if stale:
            await self._check_keys(stale)
        for viewer in list(self._keyed):
            key_id = viewer.claims.key_id
            if key_id is not None and self.active_keys.get(key_id) is False and not viewer.conn.closing:
                viewer.close_reason = "token_revoked"
                viewer.conn.close(CLOSE_UNAUTHORIZED)

    async def _load_cards(self, room: Room) -> None:
        """A room new to this process starts with the show's open interactions, read from the database."""
        room.cards_loaded = True
        async with self.sessions() as session:
            open_now = await interactions.open_in_show(session, room.id)
            for interaction in open_now:
                room.cards.setdefault(interaction.id, orjson.dumps(interactions.public_card(interaction)))
            for poll_id, votes in (await interactions.poll_tallies(session, open_now)).items():
                room.votes.setdefault(poll_id, votes)

    def _hello(self, room: Room, show: ShowInfo, claims: tokens.ViewerClaims) -> bytes:
        own = self.alias(show.id, claims)
        self._aliases.setdefault(show.id, {})[own] = claims.key  # the host may name this viewer by it
        you = {
            "a": own,
            "name": claims.name,
            "member": bool(claims.member_id),
            "role": claims.role,
        }
        head = orjson.dumps({"t": "hello", "show": show.public, "you": you, "process": self.process})
        return b"".join(
            (
                head[:-1],
                b',"q":%d,"lk":%d,"v":%d,"cards":[' % (room.delivered_seq, room.likes, room.viewers),
                b",".join(room.cards.values()),
                b'],"votes":',
                orjson.dumps(room.votes),
                b"}",
            )
        )

    async def _write(self, send: Send, conn: Connection) -> None:
        """Without a transport to write to, frames leave one by one through ASGI sends."""
        while not conn.closing:
            await conn.wake.wait()
            conn.wake.clear()
            while conn.queue and not conn.closing:
                await send({"type": "websocket.send", "bytes": conn.queue.popleft()})

    # --- a viewer's inputs: the dispatch table's handlers (the mechanics' are in live/participation.py) ---------

    async def handle_input(self, show: ShowInfo, viewer: Viewer, message: dict[str, Any]) -> None:
        handler = self.handlers.get(message["t"])
        if handler is None:
            _refuse(viewer, "unknown_type", UNKNOWN_TYPE_MESSAGE)
            return
        pending = handler(show, viewer, message)
        if pending is not None:
            await pending

    def _heartbeat(self, show: ShowInfo, viewer: Viewer, message: dict[str, Any]) -> None:
        claims = viewer.claims
        self.presence.beat(show.shop_id, show.id, claims.key, claims.member_id, claims.device_id, self.clock())

    def _like(self, show: ShowInfo, viewer: Viewer, message: dict[str, Any]) -> None:
        n = message.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= MAX_LIKES_PER_MESSAGE:
            _refuse(viewer, "invalid_likes", f"n is a whole number from 1 to {MAX_LIKES_PER_MESSAGE}.")
            return
        now = time.monotonic()
        if not viewer.likes.allow(now, n):
            viewer.budget.hold_until = now + HOLD_SECONDS
            return  # likes beyond the rate are dropped silently: the button keeps working
        self.add_likes(show.id, n)
        self._team_score(show.id, viewer, n)
        self._interacted.setdefault(show.id, set()).add(viewer.claims.key)

    async def _share(self, show: ShowInfo, viewer: Viewer, message: dict[str, Any]) -> None:
        channel = message.get("ch")
        if channel not in CHANNELS:
            _refuse(viewer, "unknown_channel", f"ch is one of {', '.join(CHANNELS)}.")
            return
        if not viewer.comments.allow(time.monotonic()):
            _refuse(viewer, "rate_limited", "Slow down a little and try again.")
            return
        await self.bus.publish(show.id, orjson.dumps({"k": SHARES, "ch": channel}))
        self._count(show.id, f"share:{channel}")
        self._interacted.setdefault(show.id, set()).add(viewer.claims.key)

    async def _comment(self, show: ShowInfo, viewer: Viewer, message: dict[str, Any]) -> None:
        text = message.get("x")
        now = time.monotonic()
        claims = viewer.claims
        if not isinstance(text, str):
            _refuse(viewer, "invalid_comment", "x is the comment's text.")
            return
        if claims.key in show.muted:
            _refuse(viewer, "muted", "The host has muted you in this show.")
            return
        rules = show.rules
        if rules.slow_mode_seconds and now - viewer.last_comment < rules.slow_mode_seconds:
            _refuse(viewer, "slow_mode", f"Slow mode: one comment every {rules.slow_mode_seconds:g} s.")
            return
        if not viewer.comments.allow(now):
            _refuse(viewer, "rate_limited", "You are commenting too fast; wait a few seconds.")
            return
        try:
            clean = moderation.clean_comment(text, show.language, rules)
        except moderation.Rejected as exc:
            _refuse(viewer, exc.code, exc.message)
            return
        viewer.last_comment = now
        kind = HOST_DANMAKU if claims.is_host else DANMAKU
        await self.bus.publish(
            show.id, encode_comment(kind, claims.name or "Guest", self.alias(show.id, claims), clean)
        )
        self._count(show.id, "comments")
        self._team_score(show.id, viewer, 1)
        self._interacted.setdefault(show.id, set()).add(claims.key)
        for hook in self.comment_hooks:
            try:
                await hook(show.id, viewer, clean)
            except Exception:
                log.exception("a comment hook failed in show %s", show.id)

    async def open_interactions(self, show_id: str) -> list[OpenInteraction]:
        """The show's open interactions, as this process caches them for a couple of seconds."""
        return await self.mechanics.open_interactions(show_id)


def public_show(show: Show) -> PublicShow:
    return {
        "id": show.id,
        "title": show.title,
        "status": show.status,
        "language": show.language,
        "market": show.market,
        "host": show.host_name,
        "scheduled_at": show.scheduled_at.isoformat(),
        "started_at": show.started_at.isoformat() if show.started_at else None,
        "video": {"provider": show.video_provider, "hls_url": show.hls_url},
        "pinned": show.pinned,
        "rhythm": show.rhythm,
        "replay_url": show.replay_url,
    }


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return max(int(value), 0)
    except ValueError:
        return None


async def _close(send: Send, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # the viewer may be gone already
        await send({"type": "websocket.close", "code": code, "reason": reason})


def _parse_input(data: bytes) -> dict[str, Any] | None:
    """A viewer's message, or None when it is oversized or malformed (the connection is then closed)."""
    if len(data) > MAX_INPUT_BYTES:
        return None
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("t"), str):
        return None
    return parsed


class RoomSockets:
    """Answers ``/v1/live/{show}/ws`` itself, so a viewer's socket holds no framework objects.

    Added as the app's middleware it runs ahead of the router; `liveloop serve` also puts it in front of the
    whole application (``create_server_app``), so a socket holds no frame of the app's middleware either.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        show_id = _room_of(scope) if scope["type"] == "websocket" else None
        if show_id is None:
            await self.app(scope, receive, send)
            return
        state = getattr(self.app, "state", None) or scope["app"].state  # in front of the app, or inside it
        await state.gateway.serve(scope, receive, send, show_id)


def _room_of(scope: Scope) -> str | None:
    parts = scope.get("path", "").split("/")
    if len(parts) == 5 and parts[1] == "v1" and parts[2] == "live" and parts[4] == "ws" and parts[3]:
        return str(parts[3])
    return None
