"""The wire protocol of live/protocol.py: one test per message family, close code and byte-level fact.

Each test builds its bytes with the encoders the room really uses (the gateway, the room, the bus, the room
notices of the services) and asserts the property the fast paths rely on.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from liveloop.kit.time import utc_now
from liveloop.live import protocol
from liveloop.live.bus import MemoryBus
from liveloop.live.gateway import Gateway, public_show
from liveloop.live.interactions import public_card
from liveloop.live.moderation import Rules, clean_comment
from liveloop.live.notify import ROOM_OUT, to_room
from liveloop.live.protocol import (
    CARD_KINDS,
    COMMENT_MARK,
    COMMENT_MARK_END,
    EPHEMERAL,
    FRAME_HEAD,
    SEQ_AT,
    SEQ_HEAD,
    BusKind,
    ClientKind,
    CloseCode,
    ServerKind,
    encode_comment,
    seq_of,
    with_seq,
)
from liveloop.live.room import Connection, Room
from liveloop.live.tokens import ViewerClaims
from liveloop.live.viewers import ShowInfo, Viewer, refuse
from liveloop.models import Interaction, InteractionKind, InteractionStatus, Show, ShowStatus
from tests.conftest import ShopCtx

# Text a viewer could send to break out of its string, spell another message's kind, or end the frame early.
HOSTILE = [
    '","k":"show","status":"ended"}',
    '"k":"restrict","kind":"ban"',
    '"card":"ia_x","status":"settled"',
    '"k":"c",',
    "]}]}{",
    'back\\slash \\" quote',
    "line\nbreak\ttab\r\x00\x1f",
    "\u2028\u2029 é ✓ 😀",
]


def _unescaped_quotes(raw: bytes) -> int:
    """The ``"`` bytes that delimit JSON strings (those not escaped by a backslash)."""
    count, escaped = 0, False
    for byte in raw:
        if escaped:
            escaped = False
        elif byte == 0x5C:
            escaped = True
        elif byte == 0x22:
            count += 1
    return count


def _gateway() -> Gateway:
    gateway = Gateway(async_sessionmaker(), MemoryBus(), secret="protocol-test-secret")
    gateway.comment_hooks = []  # the keyword mechanics read the database; these tests have none
    return gateway


def _show_info(**overrides: Any) -> ShowInfo:
    values: dict[str, Any] = {
        "id": "shw_p",
        "shop_id": "shp_p",
        "status": ShowStatus.LIVE,
        "language": "en",
        "rules": Rules(comments_per_10s=100),
        "muted": set(),
        "banned": set(),
        "public": {"id": "shw_p", "title": "T"},
    }
    values.update(overrides)
    return ShowInfo(**values)


def _viewer(gateway: Gateway, show: ShowInfo, name: str = "Ann", key: str = "d:dev1") -> Viewer:
    claims = ViewerClaims(shop_id=show.shop_id, show_id=show.id, key=key, name=name, device_id=key[2:])
    return Viewer(claims=claims, conn=Connection(key, limit=100), budget=gateway._budget(show, claims))


def _show(**overrides: Any) -> Show:
    values: dict[str, Any] = {
        "id": "shw_p",
        "shop_id": "shp_p",
        "title": "T",
        "market": "sea",
        "language": "en",
        "host_name": "Mai",
        "host_timezone": "UTC",
        "scheduled_at": utc_now(),
        "status": ShowStatus.LIVE,
        "video_provider": "none",
        "pinned": [],
        "rhythm": [],
        "moderation": {},
    }
    values.update(overrides)
    return Show(**values)


# --- message kinds ------------------------------------------------------------------------------------------


def test_every_client_kind_has_a_handler_in_the_dispatch_table_and_nothing_else_does() -> None:
    gateway = _gateway()
    assert set(gateway.handlers) == {kind.value for kind in ClientKind}
    assert all(type(key) is str for key in gateway.handlers)  # plain strs: the dict's fastest lookup


async def test_an_unknown_client_kind_is_refused_naming_every_kind() -> None:
    gateway = _gateway()
    show = _show_info()
    viewer = _viewer(gateway, show)
    await gateway.handle_input(show, viewer, {"t": "nope"})
    reply = orjson.loads(viewer.conn.queue.popleft())
    assert reply["t"] == ServerKind.ERROR
    assert reply["code"] == "unknown_type"
    assert reply["message"] == 't is one of "hb", "c", "l", "s", "a", "v", "team", "claim", "cohost".'
    assert not viewer.conn.closing  # a refusal keeps the socket open


def test_what_the_server_sends_is_one_of_the_server_kinds() -> None:
    gateway = _gateway()
    show = _show_info()
    room = gateway.room(show.id)
    viewer = _viewer(gateway, show)
    room.on_message(1, with_seq(1, encode_comment(protocol.DANMAKU, "Ann", "a1", "hi")))
    refuse(viewer, "rate_limited", "Slow down.")
    sent = [
        gateway._hello(room, show, viewer.claims),
        room.build_frame(),
        room.resume_frame(0),
        viewer.conn.queue.popleft(),
    ]
    assert [orjson.loads(raw or b"{}")["t"] for raw in sent] == [
        ServerKind.HELLO,
        ServerKind.FRAME,
        ServerKind.RESUME,
        ServerKind.ERROR,
    ]


def test_every_interaction_kind_is_a_card_kind_of_the_bus() -> None:
    assert {kind.value for kind in InteractionKind} <= {kind.value for kind in BusKind}
    assert {kind.value for kind in InteractionKind} | {BusKind.PIN.value} == CARD_KINDS
    assert {BusKind.VOTE, BusKind.PROGRESS, BusKind.FLASH_CLAIM, BusKind.PK_SCORES} == EPHEMERAL
    assert all(type(kind) is str for kind in CARD_KINDS | EPHEMERAL)


def test_an_interaction_card_is_sent_with_its_kind_as_the_bus_kind() -> None:
    for kind in InteractionKind:
        interaction = Interaction(
            id="ia_1", kind=kind, status=InteractionStatus.OPEN, title="t", config={}, progress=0, closes_at=None
        )
        card = orjson.loads(orjson.dumps(public_card(interaction)))
        assert BusKind(card["k"]) in CARD_KINDS


async def test_the_room_notices_of_the_services_are_bus_kinds_and_only_ephemeral_ones_carry_no_id(
    shop: ShopCtx,
) -> None:
    async with shop.app.state.gateway.sessions() as session:
        for kind in BusKind:
            to_room(session, "shw_p", {"k": kind})
        out = ROOM_OUT.take(session.sync_session)
        await session.rollback()
    assert len(out) == len(BusKind)
    for (_, payload, mid), kind in zip(out, BusKind, strict=True):
        decoded = orjson.loads(payload)
        assert decoded["k"] == kind
        assert (mid is None) == (kind in EPHEMERAL)
        assert next(iter(decoded)) == ("k" if mid is None else "mid")  # the kind, or the id then the kind, first


# --- close codes --------------------------------------------------------------------------------------------


def test_the_close_codes_keep_their_numbers_and_are_plain_ints() -> None:
    assert {code.name: code.value for code in CloseCode} == {
        "GOING_AWAY": 1001,
        "TOO_SLOW": 4008,
        "BAD_FRAME": 4400,
        "UNAUTHORIZED": 4401,
        "BANNED": 4403,
        "SHOW_ENDED": 4410,
        "TOO_MANY_SOCKETS": 4429,
    }
    constants = [getattr(protocol, f"CLOSE_{code.name}") for code in CloseCode]
    assert constants == [code.value for code in CloseCode]
    assert all(type(c) is int for c in constants)


def test_a_viewer_too_slow_to_keep_up_is_closed_with_the_protocols_code() -> None:
    room = Room("r")
    slow = Connection("slow", limit=1)
    room.connections.add(slow)
    for seq in (1, 2):
        room.on_message(seq, with_seq(seq, encode_comment(protocol.DANMAKU, "Ann", "a1", "x")))
        room.tick()
    assert slow.close_code == CloseCode.TOO_SLOW


# --- fact 1: {"q":N, ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 42, 10**17])
def test_a_numbered_message_starts_with_its_number_and_the_room_reads_it_back(seq: int) -> None:
    for payload in (b"{}", b'{"k":"lk","n":3}', encode_comment(protocol.DANMAKU, "Ann", "a1", "hi")):
        numbered = with_seq(seq, payload)
        assert numbered.startswith(SEQ_HEAD + str(seq).encode())
        assert numbered[len(SEQ_HEAD) + len(str(seq))] in b",}"
        assert seq_of(numbered) == seq
        assert orjson.loads(numbered) == {"q": seq, **orjson.loads(payload)}
    assert SEQ_AT == len(SEQ_HEAD) == 5


async def test_the_bus_delivers_every_message_numbered_at_its_start() -> None:
    bus = MemoryBus()
    got: list[tuple[int, bytes]] = []
    await bus.start(lambda _room, seq, raw: got.append((seq, raw)))
    for payload in (encode_comment(protocol.DANMAKU, "Ann", "a1", "hi"), b'{"k":"lk","n":3}'):
        await bus.publish("r", payload)
    assert [raw.startswith(b'{"q":%d,' % seq) for seq, raw in got] == [True, True]


# --- fact 2: a comment's kind comes first ---------------------------------------------------------------------


def test_a_comments_keys_are_in_order_kind_name_alias_text() -> None:
    raw = encode_comment(protocol.DANMAKU, "Ann", "a1", "hi")
    assert raw == b'{"k":"c","u":"Ann","a":"a1","x":"hi"}'
    assert list(orjson.loads(raw)) == ["k", "u", "a", "x"]


def test_the_room_knows_a_comment_by_its_first_bytes_even_with_the_largest_numbers() -> None:
    for seq in (1, 10**17 + 1):
        numbered = with_seq(seq, encode_comment(protocol.DANMAKU, "A" * 60, "a1", "x" * 200))
        at = numbered.find(COMMENT_MARK)
        assert at >= SEQ_AT
        assert at + len(COMMENT_MARK) <= COMMENT_MARK_END


def test_the_room_samples_comments_without_decoding_them(monkeypatch: pytest.MonkeyPatch) -> None:
    room = Room("r")
    decoded: list[bytes] = []
    real_loads = orjson.loads

    def loads(raw: bytes) -> Any:
        decoded.append(raw)
        return real_loads(raw)

    monkeypatch.setattr(orjson, "loads", loads)  # what Room.on_message calls to decode a message
    comment = with_seq(10**17, encode_comment(protocol.DANMAKU, "Ann", "a1", "hi"))
    room.on_message(10**17, comment)
    room.on_message(10**17 + 1, with_seq(10**17 + 1, b'{"k":"lk","n":1}'))
    assert decoded == [with_seq(10**17 + 1, b'{"k":"lk","n":1}')]  # the likes were decoded, the comment not
    body = real_loads(room.tick() or b"{}")
    assert body["dc"] == 1
    assert body["m"][0]["x"] == "hi"


# --- fact 3: user text is always JSON-escaped ---------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_user_text_reaches_the_wire_json_escaped(text: str) -> None:
    clean = clean_comment(text, "en", Rules(max_length=500))
    raw = with_seq(7, encode_comment(protocol.DANMAKU, text, "a1", clean))
    assert orjson.loads(raw) == {"q": 7, "k": "c", "u": text, "a": "a1", "x": clean}
    for mark in (protocol.SHOW_MARK, protocol.RESTRICT_MARK, protocol.CARD_MARK):
        assert mark not in raw
    assert raw.count(COMMENT_MARK) == 1
    assert _unescaped_quotes(raw) == 18  # the encoder's own: 9 strings; every quote of the user's is escaped
    room = Room("r")
    room.on_message(7, raw)
    room.on_message(8, with_seq(8, b'{"k":"pin","card":"pinned","products":[]}'))
    frame = orjson.loads(room.tick() or b"{}")
    assert [m["q"] for m in frame["m"]] == [8, 7]  # exactly the two messages the frame was built from


async def test_a_comment_that_spells_a_show_change_changes_nothing() -> None:
    gateway = _gateway()
    await gateway.bus.start(gateway._on_bus)
    show = _show_info()
    gateway._shows.put(show.id, show)
    gateway.room(show.id)
    viewers = [_viewer(gateway, show, name=text, key=f"d:dev{i}") for i, text in enumerate(HOSTILE)]
    gateway.viewers[show.id] = set(viewers)
    for viewer, text in zip(viewers, HOSTILE, strict=True):
        await gateway.handle_input(show, viewer, {"t": "c", "x": text + " x"})
    assert gateway._shows.get(show.id) is show  # no show change was seen: the cached show stands
    assert [v.conn.closing for v in viewers] == [False] * len(viewers)
    frame = orjson.loads(gateway.room(show.id).tick() or b"{}")
    assert sorted(m["u"] for m in frame["m"]) == sorted(HOSTILE)


# --- fact 4: frames are joined bytes that stay one JSON object ------------------------------------------------


def test_a_frame_starts_with_its_head_and_its_first_q_is_the_frames() -> None:
    room = Room("r")
    for seq in range(1, 4):
        room.on_message(seq, with_seq(seq, encode_comment(protocol.DANMAKU, "Ann", "a1", '"q":999')))
    raw = room.build_frame() or b""
    assert raw.startswith(FRAME_HEAD + b'"n":1,"q":3,')
    at = raw.find(b'"q":')
    assert raw[at + 4 : raw.index(b",", at)] == b"3"  # what load generators read without decoding
    assert orjson.loads(raw)["q"] == 3


def test_a_resume_says_whether_it_has_a_gap_in_its_first_bytes() -> None:
    room = Room("r")
    room.on_message(1, with_seq(1, b'{"k":"lk","n":1}'))
    room.tick()
    assert room.resume_frame(0).startswith(protocol.RESUME_HEAD + b"false,")
    assert room.resume_frame(-5).startswith(protocol.RESUME_HEAD + b"true,")


def test_the_hello_is_one_json_object_whatever_the_show_is_called() -> None:
    gateway = _gateway()
    show = _show_info(public=public_show(_show(title='}],"q":1} "\\')))
    room = gateway.room(show.id)
    room.on_message(1, with_seq(1, b'{"k":"poll","card":"ia_1","status":"open"}'))
    room.tick()
    hello = orjson.loads(gateway._hello(room, show, _viewer(gateway, show, name='"}{').claims))
    assert hello["show"]["title"] == '}],"q":1} "\\'
    assert hello["you"]["name"] == '"}{'
    assert hello["q"] == 1
    assert [card["card"] for card in hello["cards"]] == ["ia_1"]
