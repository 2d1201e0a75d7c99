"""Room messages that carry state survive a process that dies between its commit and its publish."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from liveloop.database import session_factory
from liveloop.kit.db import transaction
from liveloop.kit.time import utc_now
from liveloop.live.bus import with_seq
from liveloop.live.notify import to_room
from liveloop.live.room import Room
from liveloop.models import RoomMessage
from tests.conftest import ShopCtx
from tests.live.conftest import LiveServer, ViewerClient, anonymous_token, join, live_show


async def watched_show(shop: ShopCtx, server: LiveServer) -> tuple[dict[str, Any], ViewerClient]:
    """A live show with a viewer in its room, and no row left from the show's own start messages."""
    show = await live_show(shop)
    viewer = await join(server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    await shop.app.state.relay.forget_published()
    assert await waiting_rows(shop) == 0
    return show, viewer


async def waiting_rows(shop: ShopCtx) -> int:
    async with transaction(shop.app.state.sessions) as s:
        return int((await s.execute(select(func.count()).select_from(RoomMessage))).scalar_one())


def test_a_message_published_twice_is_shown_once() -> None:
    room = Room("r")
    first = b'{"mid":"rm_1","k":"draw","winners":["m1"]}'
    room.on_message(1, with_seq(1, first))
    room.on_message(2, with_seq(2, first))  # a relay sent it again after its first publisher died
    room.on_message(3, with_seq(3, b'{"mid":"rm_2","k":"draw","winners":["m2"]}'))
    frame = room.build_frame()
    assert frame is not None
    assert frame.count(b'"k":"draw"') == 2
    assert room.last_seq == 3


async def test_published_messages_leave_no_row_and_ephemeral_ones_write_none(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show, viewer = await watched_show(shop, live_server)
    async with transaction(shop.app.state.sessions) as s:
        to_room(s, show["id"], {"k": "cue", "phase": "announce", "n": 1})
        to_room(s, show["id"], {"k": "vote", "card": "c1", "o": 0})
        assert await waiting_rows(shop) == 0  # written with the commit, not before
    assert await waiting_rows(shop) == 1  # the cue's, until the relay has seen it published
    await viewer.until(lambda v: {"cue", "vote"} <= {m.get("k") for m in v.messages})
    cue, vote = (next(m for m in viewer.messages if m.get("k") == kind) for kind in ("cue", "vote"))
    assert cue["mid"].startswith("rm_")
    assert "mid" not in vote
    await shop.app.state.relay.forget_published()
    assert await waiting_rows(shop) == 0


async def test_a_message_whose_process_died_before_publishing_is_published_by_another(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show, viewer = await watched_show(shop, live_server)
    relay = shop.app.state.relay
    # A process with no relay commits and never publishes: what a crash right after the commit leaves.
    orphan = session_factory(shop.app.state.engine)
    async with transaction(orphan) as s:
        to_room(s, show["id"], {"k": "draw", "draw_id": "d1", "winners": ["m1"]})
    async with transaction(orphan) as s:
        to_room(s, show["id"], {"k": "draw", "draw_id": "d2", "winners": ["m2"]})
    assert await waiting_rows(shop) == 2
    assert await relay.publish_left_behind() == 0  # younger than the grace period: its publisher may be busy
    async with transaction(shop.app.state.sessions) as s:
        rows = (await s.execute(select(RoomMessage))).scalars().all()
        for row in rows:
            row.created_at = utc_now() - timedelta(seconds=30)
    assert await relay.publish_left_behind() == 2
    assert await waiting_rows(shop) == 0
    await viewer.until(lambda v: sum(m.get("k") == "draw" for m in v.messages) == 2)
    assert [m["draw_id"] for m in viewer.messages if m.get("k") == "draw"] == ["d1", "d2"]


async def test_a_rolled_back_transaction_leaves_no_message(shop: ShopCtx, live_server: LiveServer) -> None:
    show, viewer = await watched_show(shop, live_server)
    try:
        async with transaction(shop.app.state.sessions) as s:
            to_room(s, show["id"], {"k": "draw", "draw_id": "never", "winners": []})
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    await viewer.pump(0.3)
    assert not any(m.get("k") == "draw" for m in viewer.messages)
    assert await waiting_rows(shop) == 0
