"""Abuse limits in the room: sockets per address and per viewer, one budget per viewer, batched writes."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import event
from websockets.asyncio.client import connect

from tests.conftest import ShopCtx
from tests.factories import create_member, ok
from tests.live.conftest import LiveServer, anonymous_token, join, live_show, room_protocols, room_url, until_closed


async def refused(server: LiveServer, token: str, show_id: str) -> tuple[int | None, str | None]:
    """The close code and reason of a socket the room closes before its hello."""
    async with connect(room_url(server, show_id), subprotocols=room_protocols(token)) as ws:
        await until_closed(ws)
        return ws.close_code, ws.close_reason


async def launch(shop: ShopCtx, show_id: str, **body: Any) -> dict[str, Any]:
    return ok(await shop.api.post(f"/v1/shows/{show_id}/interactions", json=body), 201)


async def member_token(shop: ShopCtx, show_id: str) -> str:
    member = await create_member(shop.api)
    grant = ok(await shop.api.post(f"/v1/shows/{show_id}/viewer-tokens", json={"member_id": member["id"]}), 201)
    return str(grant["token"])


async def test_a_viewer_holds_at_most_five_sockets_and_an_address_its_cap(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop)
    gateway = shop.app.state.gateway
    assert gateway.sockets_per_viewer == shop.app.state.settings.room_sockets_per_viewer == 5
    token = (await anonymous_token(shop, show["id"]))["token"]
    tabs = [await join(live_server, token, show["id"]) for _ in range(5)]
    code, reason = await refused(live_server, token, show["id"])
    assert code == 4429
    assert reason
    assert reason.startswith("too_many_sockets")
    await tabs[0].close()
    await asyncio.sleep(0.1)
    again = await join(live_server, token, show["id"])  # a socket closed is a place free again
    await again.send(t="hb")
    await again.pump(0.1)
    assert again.ws.close_code is None

    gateway.sockets_per_ip = 8  # every socket of this test comes from 127.0.0.1, which holds 5 already
    others = [await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"]) for _ in range(3)]
    code, reason = await refused(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    assert code == 4429
    assert reason
    assert reason.startswith("too_many_sockets")
    gateway.sockets_per_ip = 0  # off
    extra = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    for viewer in (*tabs[1:], again, *others, extra):
        assert viewer.ws.close_code is None
        await viewer.close()


async def test_five_sockets_of_one_viewer_share_one_budget(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop, moderation={"comments_per_10s": 3, "likes_per_second": 10})
    token = (await anonymous_token(shop, show["id"], "Spam"))["token"]
    tabs = [await join(live_server, token, show["id"]) for _ in range(5)]
    watcher = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    for round_ in range(2):
        for i, tab in enumerate(tabs):
            await tab.send(t="c", x=f"buy {round_}{i}")
            await tab.send(t="l", n=10)
    async with asyncio.timeout(10):  # a viewer over its budget is read from more slowly: give it time
        while sum(len(t.errors) for t in tabs) < 7:
            for tab in tabs:
                await tab.pump(0.1)
    await watcher.pump(0.5)
    assert len(watcher.comments()) == 3  # one budget of three, not five of three
    assert sum(len(t.errors) for t in tabs) == 7
    assert {e["code"] for t in tabs for e in t.errors} == {"rate_limited"}
    assert max(f.get("lk", 0) for f in watcher.frames) <= 30  # one like budget (20 at once), not five (100)


async def test_a_danmaku_challenge_counts_a_capped_number_of_comments_per_viewer(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop, moderation={"comments_per_10s": 100})
    challenge = await launch(
        shop, show["id"], kind="danmaku_challenge", keyword="go", target=1000, reward={"type": "points", "amount": 5}
    )
    token = (await anonymous_token(shop, show["id"]))["token"]
    tabs = [await join(live_server, token, show["id"]) for _ in range(3)]
    other = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    for i in range(30):
        await tabs[i % 3].send(t="c", x=f"go {i}")
    await other.send(t="c", x="go go")
    await other.until(lambda v: "go go" in v.comments())
    await other.until(lambda v: any(m.get("k") == "progress" and m["progress"] == 11 for m in v.messages))
    items = ok(await shop.api.get(f"/v1/shows/{show['id']}/interactions"))["items"]
    assert next(i for i in items if i["id"] == challenge["id"])["progress"] == 10 + 1


async def test_a_flood_of_claims_and_votes_is_written_in_few_transactions_and_answered(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop)
    offer = await launch(
        shop, show["id"], kind="flash_offer", sku="A1", quantity=15, per_buyer=1, bonus={"type": "points", "amount": 1}
    )
    poll = await launch(shop, show["id"], kind="poll", question="Colour?", options=["red", "blue"])
    sockets = [await join(live_server, await member_token(shop, show["id"]), show["id"]) for _ in range(20)]
    warm_offer = await launch(
        shop, show["id"], kind="flash_offer", sku="W", quantity=1, per_buyer=1, bonus={"type": "points", "amount": 1}
    )
    warm_poll = await launch(shop, show["id"], kind="poll", question="Size?", options=["S", "M"])
    await sockets[0].send(t="claim", i=warm_offer["id"])  # the first of each kind compiles its statements
    await sockets[0].send(t="v", i=warm_poll["id"], o=0)
    await sockets[0].until(lambda v: sum(1 for f in v.frames if f.get("t") == "ok") == 2)
    sockets[0].frames.clear()
    # However slow this machine is today: a transaction takes inputs for up to half a second (10 ms by default).
    shop.app.state.gateway.writes.max_hold = 0.5
    commits: list[int] = []
    engine = shop.app.state.engine.sync_engine

    def count(_conn: Any) -> None:
        commits.append(1)

    event.listen(engine, "commit", count)
    try:
        for n, s in enumerate(sockets):  # as fast as the sockets take them
            await s.send(t="claim", i=offer["id"])
            await s.send(t="v", i=poll["id"], o=n % 2)
            await s.send(t="claim", i=offer["id"])  # again: refused, never a second place
        replies: Counter[str] = Counter()
        for s in sockets:
            await s.until(lambda v: sum(1 for f in v.frames if f.get("t") == "ok") + len(v.errors) == 3)
            for f in s.frames:
                if f.get("t") == "ok":
                    replies["place" if "place" in f else "vote"] += 1
            replies.update(e["code"] for e in s.errors)
    finally:
        event.remove(engine, "commit", count)
    assert replies["place"] == 15
    assert replies["vote"] == 20
    assert replies["sold_out"] + replies["limit_reached"] == 25
    assert replies["limit_reached"] >= 15
    assert len(commits) <= 5, f"{len(commits)} transactions for 60 inputs"
    body = ok(await shop.api.get(f"/v1/shows/{show['id']}/interactions"))["items"]
    assert next(i for i in body if i["id"] == offer["id"])["progress"] == 15


async def test_a_full_write_queue_answers_try_again(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    poll = await launch(shop, show["id"], kind="poll", question="Colour?", options=["red", "blue"])
    shop.app.state.gateway.writes.max_pending = 2
    voters = [
        await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"]) for _ in range(12)
    ]
    for v in voters:
        await v.send(t="v", i=poll["id"], o=0)
    outcomes: Counter[str] = Counter()
    for v in voters:
        await v.until(lambda x: any(f.get("t") == "ok" for f in x.frames) or x.errors)
        outcomes.update(["ok"] if any(f.get("t") == "ok" for f in v.frames) else [e["code"] for e in v.errors])
    assert outcomes["ok"] >= 2
    assert outcomes["try_again"] >= 1
    assert outcomes.total() == 12
    busy = next(v for v in voters if v.errors)
    await asyncio.sleep(0.2)
    await busy.send(t="v", i=poll["id"], o=1)  # sent again once the queue drained: taken
    await busy.until(lambda x: any(f.get("t") == "ok" for f in x.frames))


async def test_a_burst_read_in_slices_loses_nothing(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop, moderation={"likes_per_second": 1000})
    liker = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    other = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    for i in range(2000):  # ~40 KB that arrive together: parsed 4 KB at a time, frames cut across slices
        await liker.ws.send(b'{"t":"l","n":1}' if i % 2 else '{"t":"l","n":1,"pad":"%s"}' % ("x" * (i % 37)))
    await other.send(t="c", x="still heard")
    await other.until(lambda v: "still heard" in v.comments() and v.frames[-1].get("lk") == 2000, within=10)
    assert not liker.errors
    assert liker.ws.close_code is None
