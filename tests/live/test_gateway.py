"""The live room over real WebSockets: frames, moderation, failure paths, resume, presence."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from liveloop.kit.db import transaction
from liveloop.kit.sql import table
from liveloop.kit.time import utc_now
from liveloop.live import simulator, tokens
from liveloop.live.presence import Presence
from liveloop.models import ShowViewer, WatchSegment
from tests.conftest import ShopCtx, make_shop
from tests.factories import create_campaign, create_member, invite, ok
from tests.live.conftest import (
    LiveServer,
    ViewerClient,
    anonymous_token,
    create_show,
    join,
    live_show,
    room_protocols,
    room_url,
    until_closed,
)


async def closed_with(viewer: ViewerClient) -> int | None:
    """Read (frames may still arrive) until the server closes the socket; its close code."""
    await until_closed(viewer.ws)
    return viewer.ws.close_code


async def close_code(server: LiveServer, show_id: str, token: str) -> int | None:
    async with connect(room_url(server, show_id), subprotocols=room_protocols(token)) as ws:
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed:
            pass
        return ws.close_code


@pytest.mark.parametrize("live_server", ["fast", "plain"], indirect=True)
async def test_two_viewers_see_each_others_comments_and_the_likes(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    ann = await join(live_server, (await anonymous_token(shop, show["id"], "Ann"))["token"], show["id"])
    bob = await join(live_server, (await anonymous_token(shop, show["id"], "Bob"))["token"], show["id"])
    assert ann.hello["show"]["title"] == "Autumn drop"
    assert ann.hello["you"]["name"] == "Ann"
    await ann.send(t="c", x="Is the <red> one in stock?")
    await bob.send(t="c", x="love it")
    for _ in range(4):
        await bob.send(t="l", n=10)
    for viewer in (ann, bob):
        await viewer.until(lambda v: len(v.comments()) == 2 and v.frames[-1]["lk"] == 40)
        assert viewer.comments() == ["Is the &lt;red&gt; one in stock?", "love it"]
        names = {m["u"] for m in viewer.messages if m["k"] == "c"}
        assert names == {"Ann", "Bob"}
    await ann.close()
    await bob.close()
    await shop.app.state.gateway.flush()
    stats = ok(await shop.api.get(f"/v1/shows/{show['id']}/live-stats"))
    assert stats["counters"]["likes"] == 40
    assert stats["counters"]["comments"] == 2
    assert stats["unique_viewers"] == 2


async def test_a_flood_from_one_viewer_is_throttled(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop, moderation={"comments_per_10s": 3})
    spammer = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    other = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    for i in range(20):
        await spammer.send(t="c", x=f"buy {i}")
    await other.send(t="c", x="hello")
    await other.until(lambda v: "hello" in v.comments() and "buy 2" in v.comments())
    await spammer.until(lambda v: len(v.errors) == 17)
    await other.pump(0.3)
    assert sorted(other.comments()) == ["buy 0", "buy 1", "buy 2", "hello"]
    assert {e["code"] for e in spammer.errors} == {"rate_limited"}
    assert len(spammer.errors) == 17


async def test_slow_mode_mutes_and_bans(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop, moderation={"slow_mode_seconds": 30, "blocked_words": {"*": ["scam"]}})
    grant = await anonymous_token(shop, show["id"], "Eve")
    eve = await join(live_server, grant["token"], show["id"])
    await eve.send(t="c", x="first")
    await eve.send(t="c", x="second")
    await eve.until(lambda v: v.errors and "first" in v.comments())
    assert eve.errors[0]["code"] == "slow_mode"
    ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/restrictions", json={"alias": eve.hello["you"]["a"], "kind": "ban"}
        ),
        201,
    )
    await until_closed(eve.ws)  # banned while watching: out at once
    assert eve.ws.close_code == 4403
    assert await close_code(live_server, show["id"], grant["token"]) == 4403


async def test_bad_tokens_and_bad_frames_close_only_that_connection(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    forged = tokens.mint(
        "not-the-servers-secret-not-the-servers", shop_id=shop.shop.id, show_id=show["id"], name="x", device_id="d"
    )
    assert await close_code(live_server, show["id"], forged) == 4401
    expired = tokens.mint(
        shop.app.state.settings.secret_key,
        shop_id=shop.shop.id,
        show_id=show["id"],
        name="x",
        device_id="d",
        ttl=timedelta(seconds=-1),
    )
    assert await close_code(live_server, show["id"], expired) == 4401
    assert await close_code(live_server, show["id"], "garbage") == 4401

    good = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    for bad in ("not json", orjson.dumps([1, 2]).decode(), '{"t":"c","x":"' + "a" * 5000 + '"}'):
        victim = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
        await victim.ws.send(bad)
        assert await closed_with(victim) == 4400
    await good.send(t="c", x="still here")
    await good.until(lambda v: "still here" in v.comments())
    await good.send(t="zz")
    await good.send(t="l", n=500)
    await good.send(t="s", ch="myspace")
    await good.until(lambda v: len(v.errors) == 3)
    assert [e["code"] for e in good.errors] == ["unknown_type", "invalid_likes", "unknown_channel"]


async def test_a_reconnecting_viewer_resumes_from_the_last_message_it_saw(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop)
    token = (await anonymous_token(shop, show["id"]))["token"]
    talker = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    viewer = await join(live_server, token, show["id"])
    await talker.send(t="c", x="one")
    await viewer.until(lambda v: v.comments() == ["one"])
    last = viewer.last_q
    await viewer.close()
    for text in ("two", "three"):
        await talker.send(t="c", x=text)
    await talker.until(lambda v: "three" in v.comments())
    back = await join(live_server, token, show["id"], since=last)
    await back.until(lambda v: v.frames and v.frames[0]["t"] == "r")
    resumed = back.frames[0]
    assert resumed["gap"] is False
    assert [m["x"] for m in resumed["m"]] == ["two", "three"]


async def test_ended_show_closes_the_room_and_refuses_new_viewers(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    token = (await anonymous_token(shop, show["id"]))["token"]
    viewer = await join(live_server, token, show["id"])
    ended = ok(await shop.api.post(f"/v1/shows/{show['id']}/end", json={"replay_url": "https://cdn.test/replay.m3u8"}))
    assert ended["status"] == "ended"
    assert ended["replay_url"] == "https://cdn.test/replay.m3u8"
    await until_closed(viewer.ws)
    assert viewer.ws.close_code == 4410
    assert await close_code(live_server, show["id"], token) == 4410


async def test_heartbeats_make_an_effective_view_that_converts_a_first_view_referral(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    await create_campaign(shop.api, conversion_event="first_view")
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    show = await live_show(shop)
    grant = ok(await shop.api.post(f"/v1/shows/{show['id']}/viewer-tokens", json={"member_id": invitee["id"]}), 201)
    gateway = shop.app.state.gateway
    t0 = utc_now()
    gateway.clock = lambda: t0
    viewer = await join(live_server, grant["token"], show["id"])
    await viewer.send(t="hb")
    await viewer.pump(0.1)
    await gateway.flush()
    assert ok(await shop.api.get("/v1/referrals"))["items"][0]["status"] == "pending"  # not ten seconds yet
    gateway.clock = lambda: t0 + timedelta(seconds=12)
    await viewer.send(t="hb")
    await viewer.pump(0.1)
    await gateway.flush()
    async with transaction(shop.app.state.sessions) as s:
        row = (await s.execute(select(ShowViewer).where(ShowViewer.show_id == show["id"]))).scalar_one()
        segments = (await s.execute(select(WatchSegment).where(WatchSegment.show_id == show["id"]))).scalars().all()
    assert row.member_id == invitee["id"]
    assert row.effective_at is not None
    assert len(segments) == 1
    assert (segments[0].last_seen_at - segments[0].started_at).total_seconds() == 12
    referrals = ok(await shop.api.get("/v1/referrals"))["items"]
    assert referrals[0]["status"] == "converted"


async def test_a_crowd_reaching_ten_seconds_together_is_stamped_once_each(shop: ShopCtx) -> None:
    """A show's opening minute: 1,200 viewers become effective in one flush (in chunked statements); a viewer
    another process stamped first is not reported again, and each stamp is that viewer's own last heartbeat."""
    show = await live_show(shop)
    presence = Presence()
    t0 = utc_now()
    for i in range(1200):
        presence.beat(shop.shop.id, show["id"], f"d:{i}", None, f"dev-{i}", t0)
    sessions = shop.app.state.sessions
    async with transaction(sessions) as s:
        batch = await presence.flush(s)
    presence.flushed(batch, t0)
    async with transaction(sessions) as s:  # another gateway process got there first for one of them
        await s.execute(
            table(ShowViewer)
            .update()
            .where(ShowViewer.show_id == show["id"], ShowViewer.viewer_key == "d:7")
            .values(effective_at=t0 + timedelta(seconds=10))
        )
    for i in range(1200):
        presence.beat(shop.shop.id, show["id"], f"d:{i}", None, f"dev-{i}", t0 + timedelta(seconds=10 + i % 3))
    async with transaction(sessions) as s:
        batch = await presence.flush(s)
    presence.flushed(batch, t0)
    assert sorted(v.key for v in batch.effective) == sorted(f"d:{i}" for i in range(1200) if i != 7)
    async with transaction(sessions) as s:
        rows = await s.execute(
            select(ShowViewer.viewer_key, ShowViewer.effective_at).where(ShowViewer.show_id == show["id"])
        )
        stamps = {key: at for key, at in rows}
    expected = {f"d:{i}": t0 + timedelta(seconds=10 if i == 7 else 10 + i % 3) for i in range(1200)}
    assert stamps == expected


async def test_show_api_schedules_in_the_hosts_zone_and_checks_the_rhythm(shop: ShopCtx) -> None:
    body: dict[str, Any] = {
        "title": "Night market",
        "host_name": "Nok",
        "host_timezone": "Asia/Bangkok",
        "scheduled_at": "2026-12-01T20:00:00",
        "pinned": [{"sku": "A1", "title": "Silk scarf", "price_minor": 59000, "currency": "THB"}],
    }
    show = ok(await shop.api.post("/v1/shows", json=body), 201)
    assert show["scheduled_at"].startswith("2026-12-01T13:00")
    assert show["scheduled_local"] == "2026-12-01T20:00+07:00"
    assert [p["at_minute"] for p in show["rhythm"]] == [15, 30, 45]
    bad = await shop.api.post(
        "/v1/shows",
        json={
            **body,
            "rhythm": [
                {"at_minute": 10, "kind": "perk", "title": "a"},
                {"at_minute": 50, "kind": "lottery", "title": "b"},
            ],
        },
    )
    assert bad.status_code == 422
    assert "15-20 minutes apart" in bad.text
    nobody = await shop.api.post("/v1/shows", json={**body, "host_member_id": "mem_nobody"})
    assert nobody.status_code == 422
    assert nobody.json()["error"]["code"] == "unknown_member"
    assert (await shop.api.post(f"/v1/shows/{show['id']}/end")).json()["error"]["code"] == "show_not_live"
    ok(await shop.api.post(f"/v1/shows/{show['id']}/start"))
    again = ok(await shop.api.post(f"/v1/shows/{show['id']}/start"))
    assert again["status"] == "live"
    other = await make_shop(shop.app, slug="other")
    assert (await other.api.get(f"/v1/shows/{show['id']}")).status_code == 404
    assert (await other.api.post(f"/v1/shows/{show['id']}/viewer-tokens", json={"member_id": "x"})).status_code == 404
    await other.api.aclose()


async def test_a_viewer_too_slow_to_read_is_closed_with_4008_and_can_resume(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    import socket

    show = await live_show(shop, moderation={"comments_per_10s": 100, "max_length": 500})
    gateway = shop.app.state.gateway
    gateway.max_buffer = 8 * 1024
    token = (await anonymous_token(shop, show["id"]))["token"]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a phone on a bad network, reading nothing
    sock.connect(("127.0.0.1", int(live_server.base.rsplit(":", 1)[1])))
    slow = await connect(
        room_url(live_server, show["id"]),
        subprotocols=room_protocols(token),
        sock=sock,
        max_size=2**22,
        max_queue=1,
    )
    talker = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    await talker.until(lambda v: len(gateway.rooms[show["id"]].connections) == 2)
    for conn in gateway.rooms[show["id"]].connections:  # small kernel buffers on both ends, as on a bad network
        conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    for i in range(100):
        await talker.send(t="c", x=f"{i:03d} " + "x" * 400)
        if i % 10 == 9:
            await asyncio.sleep(0.15)  # one frame per pause, so the unread bytes pile up
    await talker.until(lambda v: any(c.startswith("099 ") for c in v.comments()), within=10)
    assert gateway.rooms[show["id"]].overflows == 1
    frames: list[Any] = []
    await until_closed(slow, within=10, seen=frames)
    seen: list[dict[str, Any]] = [m for frame in frames for m in orjson.loads(frame).get("m", [])]
    assert slow.close_code == 4008
    assert not talker.errors
    assert talker.ws.close_code is None
    last = max((m["q"] for m in seen), default=0)
    back = await join(live_server, token, show["id"], since=last)
    await back.until(lambda v: v.frames and v.frames[0]["t"] == "r")
    resumed = [m["x"][:3] for m in back.frames[0]["m"] if m["k"] == "c"]
    got = sorted({m["x"][:3] for m in seen if m["k"] == "c"} | set(resumed))
    assert back.frames[0]["gap"] is False
    assert got == [f"{i:03d}" for i in range(100)]


async def test_room_messages_leave_only_with_their_transaction(shop: ShopCtx) -> None:
    from liveloop.live.notify import to_room

    gateway = shop.app.state.gateway
    room_id = (await create_show(shop))["id"]
    async with transaction(shop.app.state.sessions) as s:
        to_room(s, room_id, {"k": "pin", "n": 1})
        try:
            async with s.begin_nested():
                to_room(s, room_id, {"k": "pin", "n": 2})
                raise LookupError
        except LookupError:
            pass
        async with s.begin_nested():
            to_room(s, room_id, {"k": "pin", "n": 3})
        await asyncio.sleep(0.05)
        assert room_id not in gateway.rooms  # nothing is sent before the commit
    async with shop.app.state.sessions() as s:
        to_room(s, room_id, {"k": "pin", "n": 4})
        await s.rollback()
    for _ in range(50):
        if room_id in gateway.rooms and gateway.rooms[room_id].last_seq:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # the room's next frames have gone out by now
    assert [orjson.loads(raw)["n"] for _, raw in gateway.rooms[room_id].history] == [1, 3]


async def test_the_demo_audiences_likes_count_like_a_viewers(shop: ShopCtx, live_server: LiveServer) -> None:
    """The simulated audience's likes go through the room's counting path, so what the room shows, the console's
    counters and a like sprint's settlement agree (they were shown but never counted)."""
    show = await live_show(shop)
    watcher = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    audience = asyncio.create_task(simulator.run(shop.app.state.gateway, show["id"], seed=5))
    try:
        await watcher.until(lambda v: bool(v.frames) and v.frames[-1]["lk"] > 0, within=10)
    finally:
        audience.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await audience
    await watcher.pump(0.5)  # the frames after the last like
    shown = max(f.get("lk", 0) for f in watcher.frames)
    await shop.app.state.gateway.flush()
    stats = ok(await shop.api.get(f"/v1/shows/{show['id']}/live-stats"))
    assert stats["counters"]["likes"] == shown
    await watcher.close()
