"""Rooms, moderation, watch time and viewer tokens, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from liveloop.kit.errors import Unauthorized
from liveloop.live import tokens
from liveloop.live.bus import with_seq
from liveloop.live.moderation import Rejected, Rules, TokenBucket, clean_comment, contains_keyword
from liveloop.live.presence import watch_seconds
from liveloop.live.room import CLOSE_TOO_SLOW, Connection, Room


def msg(seq: int, **body: object) -> bytes:
    return with_seq(seq, orjson.dumps(body))


def frame(data: bytes | None) -> dict:
    assert data is not None
    return orjson.loads(data)


def test_a_frame_carries_every_message_once_and_is_the_same_bytes_for_everyone() -> None:
    room = Room("r")
    a, b = Connection("a", limit=10), Connection("b", limit=10)
    room.connections |= {a, b}
    room.on_message(1, msg(1, k="c", x="hi"))
    room.on_message(2, msg(2, k="pin", card="pinned"))
    room.on_message(2, msg(2, k="pin", card="pinned"))  # delivered twice by the bus: kept once
    room.on_message(3, msg(3, k="lk", n=7))
    sent = room.tick()
    assert a.queue[0] is sent
    assert b.queue[0] is sent
    body = frame(sent)
    assert [m["q"] for m in body["m"]] == [2, 1]  # priority lane first
    assert body["lk"] == 7
    assert body["q"] == 3
    assert body["dc"] == 1
    assert room.tick() is None  # nothing new, no frame


def test_danmaku_is_sampled_under_load_but_priority_messages_never_are() -> None:
    room = Room("r", danmaku_per_frame=10)
    for i in range(1, 101):
        room.on_message(i, msg(i, k="c", x=str(i)))
    room.on_message(101, msg(101, k="lottery", card="l1", winners=["m1"]))
    body = frame(room.tick())
    kinds = [m["k"] for m in body["m"]]
    assert kinds.count("lottery") == 1
    assert kinds.count("c") == 10
    assert body["dc"] == 100  # the true count is still shown
    assert room.sampled_out == 90


def test_a_viewer_that_falls_behind_is_closed_with_its_own_code() -> None:
    room = Room("r")
    slow, fast = Connection("slow", limit=3), Connection("fast", limit=100)
    aborted = []
    slow.on_overflow = lambda: aborted.append(True)
    room.connections |= {slow, fast}
    for i in range(1, 6):
        room.on_message(i, msg(i, k="c", x="x"))
        room.tick()
        fast.queue.clear()  # the fast viewer reads everything
    assert slow.closing
    assert slow.close_code == CLOSE_TOO_SLOW
    assert aborted == [True]
    assert not fast.closing
    assert room.overflows == 1


def test_resume_returns_what_was_missed_or_reports_a_gap() -> None:
    room = Room("r", history_size=5)
    for i in range(1, 5):
        room.on_message(i, msg(i, k="c", x=str(i)))
        room.tick()
    body = frame(room.resume_frame(2))
    assert body["gap"] is False
    assert [m["q"] for m in body["m"]] == [3, 4]
    for i in range(5, 12):
        room.on_message(i, msg(i, k="c", x=str(i)))
        room.tick()
    assert frame(room.resume_frame(9))["gap"] is False
    assert frame(room.resume_frame(3))["gap"] is True  # 4..6 are no longer kept
    late = Room("late")
    late.on_message(40, msg(40, k="c", x="first seen here"))
    late.tick()
    assert frame(late.resume_frame(38))["gap"] is True  # 39 never reached this process
    assert frame(late.resume_frame(39))["gap"] is False


def test_the_hello_snapshot_keeps_active_cards_only() -> None:
    room = Room("r")
    room.on_message(1, msg(1, k="poll", card="p1", question="Next?"))
    room.on_message(2, msg(2, k="quiz", card="q1"))
    room.on_message(3, msg(3, k="poll", card="p1", end=True))
    assert list(room.cards) == ["q1"]


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=0.5, burst=3, now=0.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.allow(1.0)
    assert bucket.allow(2.0)


def test_comments_are_escaped_limited_and_checked_for_blocked_words() -> None:
    rules = Rules(max_length=20, blocked_words={"*": ["spam"], "th": ["คำหยาบ"]})
    assert clean_comment("  <b>hi</b> & bye ", "en", rules) == "&lt;b&gt;hi&lt;/b&gt; &amp; bye"
    for text, lang, code in [
        ("", "en", "empty_comment"),
        ("x" * 21, "en", "comment_too_long"),
        ("SPAM here", "en", "blocked_word"),
        ("นี่คำหยาบนะ", "th-TH", "blocked_word"),
    ]:
        with pytest.raises(Rejected) as err:
            clean_comment(text, lang, rules)
        assert err.value.code == code
    assert clean_comment("นี่คำหยาบนะ", "en", rules)  # only blocked for Thai
    assert clean_comment("a\u202eb\u0000c", "en", rules) == "abc"  # no direction overrides or control chars


def test_keywords_match_whole_words() -> None:
    assert contains_keyword("I want it 666!", "666")
    assert not contains_keyword("6666", "666")
    assert contains_keyword("ขอ รับของขวัญ ค่ะ", "รับของขวัญ")
    assert contains_keyword("WIN big", "win")


def test_watch_time_is_the_union_of_segments_inside_the_show() -> None:
    t0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def at(s: int) -> datetime:
        return t0 + timedelta(seconds=s)

    show = (at(0), at(600))
    assert watch_seconds([(at(10), at(70))], *show) == 60
    assert watch_seconds([(at(10), at(70)), (at(40), at(100))], *show) == 90  # two tabs overlap
    assert watch_seconds([(at(-100), at(30)), (at(590), at(900))], *show) == 40  # clipped to the show
    assert watch_seconds([(at(-10), at(10_000))], *show) == 600  # capped at the show's length
    assert watch_seconds([], *show) == 0


K1 = "a-secret-key-of-thirty-two-bytes!!"
K2 = "another-secret-key-of-thirty-two-b"


def test_viewer_tokens_refuse_forgery_expiry_and_other_shows() -> None:
    token = tokens.mint(K1, shop_id="s", show_id="show1", name="Ann", member_id="m1")
    claims = tokens.verify(K1, token, show_id="show1")
    assert claims.key == "m:m1"
    assert claims.member_id == "m1"
    assert not claims.is_host
    for secret, show, code in [(K2, "show1", "invalid_token"), (K1, "show2", "wrong_show")]:
        with pytest.raises(Unauthorized) as err:
            tokens.verify(secret, token, show_id=show)
        assert err.value.code == code
    old = tokens.mint(K1, shop_id="s", show_id="show1", name="A", device_id="d", ttl=timedelta(seconds=-5))
    with pytest.raises(Unauthorized) as err:
        tokens.verify(K1, old)
    assert err.value.code == "token_expired"
    with pytest.raises(Unauthorized):
        tokens.verify(K1, token[:-3] + "abc")


def test_frames_are_encoded_once_as_websocket_bytes() -> None:
    from liveloop.live.transport import binary_frame

    assert binary_frame(b"x" * 125)[:2] == b"\x82\x7d"
    assert binary_frame(b"x" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert binary_frame(b"x" * 70_000)[:10] == b"\x82\x7f" + (70_000).to_bytes(8, "big")
    room = Room("r")
    sent: list[bytes] = []

    class Transport:
        def is_closing(self) -> bool:
            return False

        def get_write_buffer_size(self) -> int:
            return 0

        def write(self, data: bytes) -> None:
            sent.append(data)

    room.connections |= {Connection(str(i), limit=5, transport=Transport(), max_buffer=1000) for i in range(3)}
    room.on_message(1, msg(1, k="c", x="hi"))
    room.tick()
    assert len(sent) == 3
    assert sent[0] is sent[1] is sent[2]
