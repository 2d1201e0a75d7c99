"""The room's wire protocol, written down in one place: message kinds, close codes and the byte-level facts.

Three kinds of messages travel:

- **client → server** (a viewer's socket, text or binary frames of one JSON object): the ``"t"`` of each is a
  :class:`ClientKind`; the gateway dispatches on it.
- **server → client** (binary frames of UTF-8 JSON): the ``"t"`` of each is a :class:`ServerKind`.
- **bus messages** (between gateway processes, over memory, Redis or NATS, and embedded as they are in frames'
  ``"m"``): the ``"k"`` of each is a :class:`BusKind`.

The fast paths never decode most of what they carry, so they rely on facts about the bytes. Each of them is
named below and tested in ``tests/live/test_protocol.py``:

1. Every bus message, as a room receives it, starts with ``{"q":N,`` (:data:`SEQ_HEAD`): the bus numbers the
   publisher's bytes by splicing the number in front (:func:`with_seq`), and a room reads it back from there
   (:func:`seq_of`) to keep its history, without decoding the message.
2. A comment (:func:`encode_comment`) puts ``"k"`` first: ``{"q":N,"k":"c","u":…,"a":…,"x":…}``, so the room
   knows a comment (the bulk of the traffic) by finding :data:`COMMENT_MARK` within the first
   :data:`COMMENT_MARK_END` bytes, and samples it into frames without decoding it.
3. Every value that comes from a user (a comment's text, a viewer's name, a team name…) reaches the wire only
   through ``orjson.dumps``, which escapes ``"``, ``\\`` and control characters: no user byte is spliced into a
   frame raw. So a frame is always one JSON object with exactly the messages it was built from, and the
   gateway's substring checks (:data:`SHOW_MARK`, :data:`RESTRICT_MARK`, :data:`CARD_MARK`) cannot be triggered by
   what a viewer writes.
4. Frames are built by joining bytes: ``{"t":"f","n":…,"q":…,"lk":…,"v":…,"dc":…,"m":[`` + the messages joined
   by ``,`` + ``]}`` (:data:`FRAME_HEAD`), so a frame's first ``"q":`` is its own (the newest message number,
   which load generators read without decoding); a resume says whether it has a gap in its first bytes
   (:data:`RESUME_HEAD`). The hello is ``orjson.dumps`` of its head with the closing ``}`` cut and the room's
   state appended, which works because orjson writes no whitespace and ends an object with ``}``.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any, Final, NotRequired, TypedDict

import orjson

from liveloop.models.live import InteractionKind


class ClientKind(StrEnum):
    """The ``"t"`` of a message a viewer's socket sends."""

    HEARTBEAT = "hb"  # {"t":"hb"}: every 15 s; presence and watch time come from these
    COMMENT = "c"  # {"t":"c","x":"text"}: a comment (danmaku)
    LIKES = "l"  # {"t":"l","n":5}: likes, batched by the client (1-50 per message)
    SHARE = "s"  # {"t":"s","ch":"whatsapp"}: the viewer shared the room on a channel
    ANSWER = "a"  # {"t":"a","i":card,"o":index}: a quiz answer
    VOTE = "v"  # {"t":"v","i":card,"o":index}: a poll vote
    TEAM = "team"  # {"t":"team","i":card,"team":name}: join a team of a team PK (no name: assigned)
    CLAIM = "claim"  # {"t":"claim","i":card}: claim a place of a flash offer
    COHOST = "cohost"  # {"t":"cohost"}: ask to join the host on video


# The refusal of an input whose "t" is none of the above (the connection stays open).
UNKNOWN_TYPE_MESSAGE: Final = "t is one of " + ", ".join(f'"{kind.value}"' for kind in ClientKind) + "."

# Which interaction kinds each mechanic input takes part in.
TAKES_PART_IN: Final[dict[str, tuple[str, ...]]] = {
    ClientKind.ANSWER.value: (InteractionKind.QUIZ.value,),
    ClientKind.VOTE.value: (InteractionKind.POLL.value,),
    ClientKind.TEAM.value: (InteractionKind.TEAM_PK.value,),
    ClientKind.CLAIM.value: (InteractionKind.FLASH_OFFER.value,),
}


class ServerKind(StrEnum):
    """The ``"t"`` of a message the server sends on a viewer's socket."""

    HELLO = "hello"  # on join: the show, you ({"a","name","member","role"}), the active cards, counters, votes
    RESUME = "r"  # on join with ?since=N: {"t":"r","gap":bool,"q","lk","v","m":[…]}, everything after N
    FRAME = "f"  # {"t":"f","n","q","lk","v","dc","m":[…]}: the messages, likes, viewers and comments of a tick
    OK = "ok"  # the answer to a queued input, once written: {"t":"ok","card",…} or {"t":"ok","cohost":status}
    ERROR = "err"  # {"t":"err","code","message"}: a refused input (the connection stays open)


class BusKind(StrEnum):
    """The ``"k"`` of a room message on the bus (and in frames' ``"m"``)."""

    COMMENT = "c"  # a viewer's comment: {"k":"c","u":name,"a":alias,"x":text}, in the danmaku lane
    HOST_COMMENT = "hc"  # the host's comment, same shape, in the danmaku lane
    LIKES = "lk"  # {"k":"lk","n":N}: likes summed by one process over one frame
    PRESENCE = "pr"  # {"k":"pr","p":process,"n":N}: viewers one process counts, every second
    SHARES = "sh"  # {"k":"sh","ch":channel}: a share, counted per channel
    VOTE = "vote"  # {"k":"vote","card","o"}: one poll vote, tallied by each room (ephemeral)
    PROGRESS = "progress"  # {"k":"progress","card","progress"}: a danmaku challenge's count (ephemeral)
    FLASH_CLAIM = "flash_claim"  # {"k":"flash_claim","card","left"}: places left of a flash offer (ephemeral)
    PK_SCORES = "pk_scores"  # {"k":"pk_scores","card","scores"}: a team PK's scoreboard (ephemeral)
    SHOW = "show"  # a show change: started, ended (viewers are closed), moderation rules changed
    RESTRICT = "restrict"  # {"k":"restrict","a":alias,"kind":"mute"|"ban"[,"lifted":true]}
    PIN = "pin"  # {"k":"pin","card":"pinned","products":[…]}: the pinned products, a card
    RHYTHM = "rhythm"  # {"k":"rhythm","rhythm":[…]}: the show's planned high points changed
    VIDEO = "video"  # {"k":"video","provider","hls_url"}: the video source changed
    CUE = "cue"  # a high point announced ahead ("phase":"announce") and fired ("phase":"fire")
    DRAW = "draw"  # a referral draw's winners, announced in the room
    COHOST_QUEUE = "cohost_queue"  # the co-host queue changed: {"change":"asked"|"approved"|"declined",…}
    # An interaction's card (set in the room's snapshot; "end": true removes it, with its result).
    KEYWORD_LOTTERY = InteractionKind.KEYWORD_LOTTERY.value
    LIKE_SPRINT = InteractionKind.LIKE_SPRINT.value
    DANMAKU_CHALLENGE = InteractionKind.DANMAKU_CHALLENGE.value
    QUIZ = InteractionKind.QUIZ.value
    POLL = InteractionKind.POLL.value
    TEAM_PK = InteractionKind.TEAM_PK.value
    FLASH_OFFER = InteractionKind.FLASH_OFFER.value


# Plain strings (not enum members) for the rooms' per-message comparisons, which are fastest between exact strs.
DANMAKU: Final = BusKind.COMMENT.value
HOST_DANMAKU: Final = BusKind.HOST_COMMENT.value
LIKES: Final = BusKind.LIKES.value
PRESENCE: Final = BusKind.PRESENCE.value
SHARES: Final = BusKind.SHARES.value
VOTE: Final = BusKind.VOTE.value
# Messages that set (or, with "end", remove) a card in the room's snapshot for viewers who join later.
CARD_KINDS: Final = frozenset({BusKind.PIN.value, *(kind.value for kind in InteractionKind)})
# Messages only published (not kept in room_messages): the next one supersedes them (see live/notify.py).
EPHEMERAL: Final = frozenset(
    {BusKind.VOTE.value, BusKind.PROGRESS.value, BusKind.FLASH_CLAIM.value, BusKind.PK_SCORES.value}
)


class ShowVideo(TypedDict):
    provider: str  # none, hls, livekit
    hls_url: str | None


class PublicShow(TypedDict):
    """The show as the room and the viewer page show it (the hello's ``"show"``)."""

    id: str
    title: str
    status: str
    language: str
    market: str
    host: str
    scheduled_at: str
    started_at: str | None
    video: ShowVideo
    pinned: list[Any]
    rhythm: list[Any]
    replay_url: str | None


class Card(TypedDict):
    """An interaction's card on the bus (``"k"`` is its kind) and at ``GET /v1/public/interactions/{id}``."""

    k: str
    card: str  # the interaction's id
    title: str
    config: dict[str, Any]  # without what stays secret until it is settled
    progress: int
    status: str
    closes_at: str | None
    seed_hash: NotRequired[str]  # a keyword lottery's commitment
    result: NotRequired[dict[str, Any]]  # once settled
    end: NotRequired[bool]  # the card leaves the room's snapshot


class CloseCode(IntEnum):
    """WebSocket close codes of the room (the close reason names the cause)."""

    GOING_AWAY = 1001  # the server is shutting down; reconnect (to another process)
    TOO_SLOW = 4008  # the viewer's connection could not keep up; reconnect with ?since=<last q>
    BAD_FRAME = 4400  # malformed or oversized input from this connection
    # A missing, forged, expired or revoked token ("token_revoked": the API key that minted a host token was
    # revoked), a token in the query string, or a show of another shop.
    UNAUTHORIZED = 4401
    BANNED = 4403  # the host banned this viewer from the show
    SHOW_ENDED = 4410  # the show is over
    # Too many sockets open at once from one client address or for one viewer (LIVELOOP_ROOM_SOCKETS_PER_IP,
    # LIVELOOP_ROOM_SOCKETS_PER_VIEWER): close some, then reconnect.
    TOO_MANY_SOCKETS = 4429


# Plain ints, as the ASGI server is handed them.
CLOSE_GOING_AWAY: Final = CloseCode.GOING_AWAY.value
CLOSE_TOO_SLOW: Final = CloseCode.TOO_SLOW.value
CLOSE_BAD_FRAME: Final = CloseCode.BAD_FRAME.value
CLOSE_UNAUTHORIZED: Final = CloseCode.UNAUTHORIZED.value
CLOSE_BANNED: Final = CloseCode.BANNED.value
CLOSE_SHOW_ENDED: Final = CloseCode.SHOW_ENDED.value
CLOSE_TOO_MANY_SOCKETS: Final = CloseCode.TOO_MANY_SOCKETS.value


# --- the byte-level facts --------------------------------------------------------------------------------

SEQ_HEAD: Final = b'{"q":'  # fact 1: how every numbered bus message starts
SEQ_AT: Final = len(SEQ_HEAD)  # where the number starts
COMMENT_MARK: Final = b'"k":"%s",' % DANMAKU.encode()  # fact 2: a comment's kind, right after the number
COMMENT_MARK_END: Final = 32  # …found before this byte (numbers of up to 18 digits)
FRAME_HEAD: Final = b'{"t":"%s",' % ServerKind.FRAME.value.encode()  # fact 4: how every frame starts
RESUME_HEAD: Final = b'{"t":"%s","gap":' % ServerKind.RESUME.value.encode()  # …and every resume
# Fact 3: what the gateway looks for in every bus message, which no user text can produce.
SHOW_MARK: Final = b'"k":"%s"' % BusKind.SHOW.value.encode()  # a show change: reload the show's state
RESTRICT_MARK: Final = b'"k":"%s"' % BusKind.RESTRICT.value.encode()  # a mute or ban: reload, maybe close
CARD_MARK: Final = b'"card":"ia_'  # with STATUS_MARK: an interaction was launched or settled
STATUS_MARK: Final = b'"status":'


def with_seq(seq: int, payload: bytes) -> bytes:
    """``{"a":1}`` numbered ``7`` becomes ``{"q":7,"a":1}`` (fact 1)."""
    if payload == b"{}":
        return b'{"q":%d}' % seq
    return b'{"q":%d,' % seq + payload[1:]


def seq_of(raw: bytes) -> int:
    """The number of a numbered bus message, read from its first bytes without decoding it (fact 1)."""
    # 5 is SEQ_AT, written out: this runs for every message of every frame.
    end = raw.find(b",", 5)
    if end < 0:
        end = raw.find(b"}", 5)
    return int(raw[5:end])


def encode_comment(kind: str, name: str, alias: str, text: str) -> bytes:
    """A comment's bus message: ``{"k":kind,"u":name,"a":alias,"x":text}``, in this key order (facts 2 and 3).

    Kept small: this is most of every frame's bytes. ``a`` (the writer's alias in the show, which grants
    nothing) is what the host's mute and ban buttons name; the server maps it back to the viewer.
    """
    return orjson.dumps({"k": kind, "u": name, "a": alias, "x": text})
