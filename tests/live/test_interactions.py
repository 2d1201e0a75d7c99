"""Live-room mechanics end to end: launched over the API, played over real WebSockets, paid by the ledger."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import jwt
import orjson
import pytest
from livekit import api as livekit_api

from liveloop.kit.db import transaction
from liveloop.kit.time import utc_now
from liveloop.live import interactions
from liveloop.live.tokens import ViewerClaims
from liveloop.referral.lottery import pick_winners, seed_hash
from tests.conftest import ShopCtx
from tests.factories import create_member, ok
from tests.live.conftest import LiveServer, ViewerClient, anonymous_token, create_show, join, live_show


async def member_viewer(shop: ShopCtx, server: LiveServer, show_id: str, name: str) -> tuple[dict, ViewerClient]:
    member = await create_member(shop.api, name=name)
    grant = ok(await shop.api.post(f"/v1/shows/{show_id}/viewer-tokens", json={"member_id": member["id"]}), 201)
    return member, await join(server, grant["token"], show_id)


async def points(shop: ShopCtx, member: dict[str, Any]) -> int:
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))
    return next((b["available"] for b in body["balances"] if b["asset"] == "points"), 0)


async def launch(shop: ShopCtx, show_id: str, **body: Any) -> dict[str, Any]:
    return ok(await shop.api.post(f"/v1/shows/{show_id}/interactions", json=body), 201)


async def present(shop: ShopCtx, *viewers: ViewerClient) -> None:
    """Heartbeats in, written out: the members count as watching now."""
    for v in viewers:
        await v.send(t="hb")
        await v.pump(0.05)
    await shop.app.state.gateway.flush()


async def test_keyword_lottery_is_provably_fair_and_pays_through_the_ledger(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop)
    players = [await member_viewer(shop, live_server, show["id"], n) for n in ("Ana", "Ben", "Chi", "Dee")]
    guest = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    card = await launch(
        shop, show["id"], kind="keyword_lottery", keyword="666", winners=2, prize={"type": "points", "amount": 300}
    )
    assert card["seed_hash"]
    assert "seed" not in card
    await players[0][1].until(lambda v: any(m.get("card") == card["id"] for m in v.messages))
    for _, viewer in players:
        await viewer.send(t="c", x="666 please!")
    await players[0][1].send(t="c", x="666 again")  # a second entry counts once
    await players[1][1].send(t="c", x="6666")  # not the keyword
    await guest.send(t="c", x="666")
    await guest.until(lambda v: v.errors)
    assert guest.errors[0]["code"] == "members_only"
    for _, viewer in players:
        await viewer.until(lambda v: any(m.get("entered") for m in v.frames) or v.errors)
    settled = ok(await shop.api.post(f"/v1/interactions/{card['id']}/settle"))
    result = settled["result"]
    assert result["entries"] == 4
    assert len(result["winners"]) == 2
    assert seed_hash(result["seed"]) == card["seed_hash"]
    assert [w["a"] for w in result["winners"]] == pick_winners(result["seed"], card["id"], result["tickets"], 2)
    # Tickets and winners are the entrants' aliases and room names: each player finds its own in its hello.
    mine = {viewer.hello["you"]["a"]: member for member, viewer in players}
    assert sorted(result["tickets"]) == sorted(mine)
    shown = {viewer.hello["you"]["a"]: viewer.hello["you"]["name"] for _, viewer in players}
    assert all(w["name"] == shown[w["a"]] for w in result["winners"])
    assert not {mine[w["a"]]["name"] for w in result["winners"]} & {w["name"] for w in result["winners"]}
    winners = {mine[w["a"]]["id"] for w in result["winners"]}
    for member, _ in players:
        assert await points(shop, member) == (300 if member["id"] in winners else 0)
    again = ok(await shop.api.post(f"/v1/interactions/{card['id']}/settle"))
    assert again["result"] == result
    for member, _ in players:
        assert await points(shop, member) == (300 if member["id"] in winners else 0)
    viewer = players[2][1]
    await viewer.until(lambda v: any(m.get("card") == card["id"] and m.get("end") for m in v.messages))
    public = ok(await shop.api.get(f"/v1/public/interactions/{card['id']}"))
    assert public["result"]["seed"] == result["seed"]


async def test_like_sprint_rewards_members_present_once(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    (ana, a), (ben, b) = [await member_viewer(shop, live_server, show["id"], n) for n in ("Ana", "Ben")]
    await present(shop, a, b)
    sprint = await launch(shop, show["id"], kind="like_sprint", target=30, reward={"type": "points", "amount": 50})
    for _ in range(4):
        await b.send(t="l", n=10)
    await b.until(lambda v: any(f.get("lk", 0) >= 40 for f in v.frames))
    await present(shop, a, b)
    async with transaction(shop.app.state.sessions) as s:
        assert await interactions.settle_due(s, utc_now()) == 1
    body = ok(await shop.api.get(f"/v1/shows/{show['id']}/interactions"))["items"][0]
    assert body["status"] == "settled"
    assert body["result"]["reached"]
    assert body["result"]["rewarded"] == 2
    assert await points(shop, ana) == 50
    assert await points(shop, ben) == 50
    ok(await shop.api.post(f"/v1/interactions/{sprint['id']}/settle"))
    assert await points(shop, ana) == 50


async def test_danmaku_challenge_unlocks_a_coupon_for_everyone_present(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    batch = ok(
        await shop.api.post(
            "/v1/coupon-batches", json={"name": "Room", "kind": "percent", "percent_bp": 1000, "currency_free": True}
        ),
        201,
    )
    viewers = [await member_viewer(shop, live_server, show["id"], n) for n in ("Ana", "Ben", "Chi")]
    await present(shop, *(v for _, v in viewers))
    challenge = await launch(
        shop,
        show["id"],
        kind="danmaku_challenge",
        keyword="gogo",
        target=3,
        reward={"type": "coupon", "batch_id": batch["id"]},
    )
    await viewers[0][1].until(lambda v: any(m.get("card") == challenge["id"] for m in v.messages))
    for _, v in viewers:
        await v.send(t="c", x="GoGo!")
    await viewers[0][1].until(lambda v: "GoGo!" in v.comments() and len(v.comments()) == 3)
    for _ in range(50):  # the gateway counts keyword comments in batches, once a second
        settled = ok(await shop.api.get(f"/v1/shows/{show['id']}/interactions"))["items"][0]
        if settled["status"] == "settled":
            break
        await asyncio.sleep(0.1)
    assert settled["status"] == "settled"
    assert settled["result"] == {
        "reached": True,
        "progress": 3,
        "target": 3,
        "rewarded": 3,
    }
    for member, _ in viewers:
        rewards = ok(await shop.api.get(f"/v1/members/{member['id']}/rewards"))["items"]
        assert [r["reward_type"] for r in rewards] == ["coupon"]
        assert rewards[0]["coupon_id"]
    ok(await shop.api.post(f"/v1/interactions/{challenge['id']}/settle"))  # again: nothing more
    assert len(ok(await shop.api.get(f"/v1/members/{viewers[0][0]['id']}/rewards"))["items"]) == 1


async def test_quiz_hides_its_answer_and_pays_right_answers(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    (ana, a), (ben, b) = [await member_viewer(shop, live_server, show["id"], n) for n in ("Ana", "Ben")]
    quiz = await launch(
        shop, show["id"], kind="quiz", question="Silk comes from?", options=["worms", "sheep"], answer=0, points=20
    )
    await a.until(lambda v: any(m.get("card") == quiz["id"] for m in v.messages))
    card = next(m for m in a.messages if m.get("card") == quiz["id"])
    assert "answer" not in card["config"]
    await a.send(t="a", i=quiz["id"], o=0)
    await b.send(t="a", i=quiz["id"], o=1)
    await b.send(t="a", i=quiz["id"], o=0)  # a second answer does not count
    await b.send(t="a", i=quiz["id"], o=7)
    await b.until(lambda v: len(v.errors) == 2)
    assert [e["code"] for e in b.errors] == ["already_answered", "invalid_option"]
    settled = ok(await shop.api.post(f"/v1/interactions/{quiz['id']}/settle"))
    assert settled["result"]["answer"] == 0
    assert settled["result"]["votes"] == [1, 1]
    assert await points(shop, ana) == 20
    assert await points(shop, ben) == 0
    await a.until(lambda v: any(m.get("card") == quiz["id"] and m.get("end") for m in v.messages))


async def test_poll_counts_one_vote_per_viewer_and_next_product_polls_use_pinned_skus(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop, pinned=[{"sku": "A", "title": "Scarf", "price_minor": 1000, "currency": "USD"}])
    bad = await shop.api.post(
        f"/v1/shows/{show['id']}/interactions",
        json={"kind": "poll", "question": "Next?", "options": ["A", "Z"], "next_product": True},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "unknown_product"
    poll = await launch(shop, show["id"], kind="poll", question="Colour?", options=["red", "blue"])
    shop.app.state.gateway.rooms.pop(show["id"], None)  # as if this process had never seen the room
    late = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    assert [c["card"] for c in late.hello["cards"]] == [poll["id"]]  # open cards come from the database
    voters = [await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"]) for _ in range(3)]
    for v, option in zip(voters, (1, 1, 0), strict=True):
        await v.send(t="v", i=poll["id"], o=option)
    await voters[0].send(t="v", i=poll["id"], o=0)
    await voters[0].until(lambda v: v.errors)
    await voters[0].until(lambda v: sum(m.get("k") == "vote" for m in v.messages) == 3)
    # Viewers joining mid-poll see the votes so far: from the room when it is warm, from the database when not.
    warm = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    assert warm.hello["votes"] == {poll["id"]: [1, 2]}
    shop.app.state.gateway.rooms.pop(show["id"], None)
    cold = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    assert cold.hello["votes"] == {poll["id"]: [1, 2]}
    settled = ok(await shop.api.post(f"/v1/interactions/{poll['id']}/settle"))
    assert settled["result"]["votes"] == [1, 2]
    assert settled["result"]["winner"] == "blue"
    assert settled["result"]["tied"] == []
    await voters[1].send(t="v", i=poll["id"], o=0)
    await voters[1].until(lambda v: v.errors)
    assert voters[1].errors[0]["code"] == "closed"


async def test_a_level_poll_is_a_tie_with_no_winner(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    poll = await launch(shop, show["id"], kind="poll", question="Colour?", options=["red", "blue", "green"])
    voters = [await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"]) for _ in range(2)]
    for v, option in zip(voters, (2, 0), strict=True):
        await v.send(t="v", i=poll["id"], o=option)
    await voters[0].until(lambda v: sum(m.get("k") == "vote" for m in v.messages) == 2)
    settled = ok(await shop.api.post(f"/v1/interactions/{poll['id']}/settle"))
    assert settled["result"] == {"votes": [1, 0, 1], "total": 2, "winner": None, "tied": ["red", "green"]}


async def test_flash_offer_is_never_oversold(shop: ShopCtx) -> None:
    show = await live_show(shop)
    offer = await launch(
        shop, show["id"], kind="flash_offer", sku="A1", quantity=5, per_buyer=1, bonus={"type": "points", "amount": 10}
    )
    members = [await create_member(shop.api) for _ in range(30)]
    sessions = shop.app.state.sessions

    async def claim(member_id: str) -> str:
        claims = ViewerClaims(shop.shop.id, show["id"], f"m:{member_id}", "x", member_id=member_id)
        try:
            async with transaction(sessions) as s:
                interaction = await interactions.get(s, shop.shop.id, offer["id"])
                await interactions.claim_flash(s, interaction, claims)
            return "ok"
        except interactions.Refused as exc:
            return exc.code

    outcomes = await asyncio.gather(*(claim(m["id"]) for m in members), *(claim(members[0]["id"]) for _ in range(5)))
    assert outcomes.count("ok") == 5
    assert set(outcomes) == {"ok", "sold_out", "limit_reached"} or set(outcomes) == {"ok", "sold_out"}
    body = ok(await shop.api.get(f"/v1/shows/{show['id']}/interactions"))["items"][0]
    assert body["progress"] == 5
    paid = [m for m in members if await points(shop, m) == 10]
    assert len(paid) == 5


async def test_team_pk_scores_interactions_and_rewards_the_winners(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    (ana, a), (ben, b), (chi, c) = [
        await member_viewer(shop, live_server, show["id"], n) for n in ("Ana", "Ben", "Chi")
    ]
    pk = await launch(
        shop,
        show["id"],
        kind="team_pk",
        teams=["Red", "Blue"],
        metric="interactions",
        reward={"type": "points", "amount": 70},
    )
    for v, team in ((a, "Red"), (b, "Blue"), (c, "Blue")):
        await v.send(t="team", i=pk["id"], team=team)
        await v.until(lambda x: any(f.get("team") for f in x.frames))
    await a.send(t="l", n=20)
    await b.send(t="l", n=5)
    await c.send(t="c", x="go blue")
    await c.until(lambda v: "go blue" in v.comments())
    await shop.app.state.gateway.flush()
    async with transaction(shop.app.state.sessions) as s:
        assert await interactions.publish_scoreboards(s) == 1
    await c.until(
        lambda v: any(m.get("k") == "pk_scores" and m["scores"] == {"Red": 20, "Blue": 6} for m in v.messages)
    )
    settled = ok(await shop.api.post(f"/v1/interactions/{pk['id']}/settle"))
    assert settled["result"]["scores"] == {"Red": 20, "Blue": 6}
    assert settled["result"]["winner"] == "Red"
    assert (await points(shop, ana), await points(shop, ben), await points(shop, chi)) == (70, 0, 0)
    async with transaction(shop.app.state.sessions) as s:
        assert await interactions.publish_scoreboards(s) == 0
    assert pk["id"] not in interactions._last_scoreboard  # a settled PK leaves nothing behind in the process


async def test_cohost_queue_and_provider_tokens(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    grant = await anonymous_token(shop, show["id"], "Kim")
    kim = await join(live_server, grant["token"], show["id"])
    other = await anonymous_token(shop, show["id"], "Lee")
    await kim.send(t="cohost")
    await kim.until(lambda v: any(f.get("cohost") for f in v.frames))
    queue = ok(await shop.api.get(f"/v1/shows/{show['id']}/cohosts"))["items"]
    assert [(r["name"], r["status"]) for r in queue] == [("Kim", "waiting")]
    settings = shop.app.state.settings
    headers = {"Authorization": f"Bearer {grant['token']}"}
    missing = await shop.api.post(f"/v1/public/shows/{show['id']}/video-token", headers=headers)
    assert missing.status_code == 409
    assert missing.json()["error"]["code"] == "video_not_configured"
    ok(await shop.api.post(f"/v1/shows/{show['id']}/cohosts/{queue[0]['id']}/approve"))
    settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret = (
        "wss://video.test",
        "APIkey123",
        "a-livekit-secret-that-is-long-enough-123",
    )
    try:
        kim_video = ok(await shop.api.post(f"/v1/public/shows/{show['id']}/video-token", headers=headers))
        lee_video = ok(
            await shop.api.post(
                f"/v1/public/shows/{show['id']}/video-token", headers={"Authorization": f"Bearer {other['token']}"}
            )
        )
        forged = await shop.api.post(
            f"/v1/public/shows/{show['id']}/video-token", headers={"Authorization": "Bearer nope"}
        )
        assert forged.status_code == 401
        for body, publish in ((kim_video, True), (lee_video, False)):
            claims = jwt.decode(body["token"], settings.livekit_api_secret, algorithms=["HS256"])
            assert claims["video"]["room"] == f"liveloop-{show['id']}"
            assert claims["video"].get("canPublish", False) is publish
        # LiveKit's signed webhook: accepted once, refused when the signature is wrong.
        payload = orjson.dumps({"event": "room_started", "id": "EV_1", "room": {"name": f"liveloop-{show['id']}"}})
        digest = base64.b64encode(hashlib.sha256(payload).digest()).decode()
        auth = livekit_api.AccessToken("APIkey123", settings.livekit_api_secret).with_sha256(digest).to_jwt()
        for _ in range(2):
            r = await shop.api.post("/v1/public/webhooks/livekit", content=payload, headers={"Authorization": auth})
            assert r.status_code == 204
        events = ok(await shop.api.get("/v1/events", params={"type": "show.video_event"}))["items"]
        assert len(events) == 1
        assert events[0]["data"]["event"] == "room_started"
        bad = await shop.api.post(
            "/v1/public/webhooks/livekit", content=payload + b" ", headers={"Authorization": auth}
        )
        assert bad.status_code == 401
    finally:
        settings.livekit_url = settings.livekit_api_key = settings.livekit_api_secret = None


async def test_a_relay_draw_run_in_a_show_is_announced_in_the_room(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    viewer = await join(live_server, (await anonymous_token(shop, show["id"]))["token"], show["id"])
    campaign = ok(
        await shop.api.post(
            "/v1/campaigns",
            json={
                "name": "Relay",
                "status": "active",
                "conversion_event": "first_paid_order",
                "inviter_reward": {"type": "points", "amount": 1},
                "lottery_enabled": True,
            },
        ),
        201,
    )
    draw = ok(
        await shop.api.post(
            f"/v1/campaigns/{campaign['id']}/draws", json={"prize_count": 1, "prize": {"type": "points", "amount": 5}}
        ),
        201,
    )
    ok(await shop.api.post(f"/v1/draws/{draw['id']}/run", params={"show_id": show["id"]}))
    await viewer.until(lambda v: any(m.get("k") == "draw" for m in v.messages))
    message = next(m for m in viewer.messages if m.get("k") == "draw")
    assert message["draw_id"] == draw["id"]
    assert message["seed_hash"] == draw["seed_hash"]


@pytest.mark.parametrize("kind", ["quiz"])
async def test_mechanics_need_a_live_show(shop: ShopCtx, kind: str) -> None:
    show = await create_show(shop)
    r = await shop.api.post(
        f"/v1/shows/{show['id']}/interactions",
        json={"kind": kind, "question": "?", "options": ["a", "b"], "answer": 0, "points": 1},
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "show_not_live"
