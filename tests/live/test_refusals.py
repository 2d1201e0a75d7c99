"""What the room and the show API refuse, and with which code: a viewer's inputs over a real socket, and the
operator's and viewer's HTTP calls that break a rule of the show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from liveloop.kit.time import utc_now
from liveloop.live import tokens
from tests.conftest import ShopCtx
from tests.factories import ok
from tests.live.conftest import LiveServer, ViewerClient, anonymous_token, create_show, join, live_show


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def rows(body: Any) -> list[Any]:
    """The rows of a list answer: the list itself, or the items of one page of it."""
    return list(body["items"] if isinstance(body, dict) else body)


async def refused(viewer: ViewerClient, **message: Any) -> str:
    """Send one input and return the code of the refusal it gets."""
    before = len(viewer.errors)
    await viewer.send(**message)
    await viewer.until(lambda v: len(v.errors) > before)
    return str(viewer.errors[-1]["code"])


async def test_the_room_says_why_it_refuses_a_comment(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(
        shop, moderation={"max_length": 20, "comments_per_10s": 100, "blocked_words": {"*": ["scam"]}}
    )
    grant = await anonymous_token(shop, show["id"], "Noa")
    noa = await join(live_server, grant["token"], show["id"])
    assert await refused(noa, t="c") == "invalid_comment"  # no text
    assert await refused(noa, t="c", x=" \u200b  ") == "empty_comment"
    assert await refused(noa, t="c", x="a" * 21) == "comment_too_long"
    assert await refused(noa, t="c", x="what a SCAM") == "blocked_word"
    await noa.send(t="c", x="a fine comment")
    await noa.until(lambda v: "a fine comment" in v.comments())  # the connection stayed open throughout

    ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/restrictions", json={"alias": noa.hello["you"]["a"], "kind": "mute"}
        ),
        201,
    )
    await noa.until(lambda v: any(m.get("k") == "restrict" for m in v.messages))
    assert await refused(noa, t="c", x="can you hear me") == "muted"
    assert "can you hear me" not in noa.comments()


async def test_the_room_says_why_it_refuses_an_answer_a_vote_or_a_team(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    viewer = await join(live_server, (await anonymous_token(shop, show["id"], "Ola"))["token"], show["id"])
    quiz = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/interactions",
            json={"kind": "quiz", "question": "Which size?", "options": ["S", "M"], "answer": 1, "points": 5},
        ),
        201,
    )
    pk = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/interactions",
            json={
                "kind": "team_pk",
                "teams": ["Red", "Blue"],
                "metric": "interactions",
                "reward": {"type": "points", "amount": 10},
            },
        ),
        201,
    )
    assert await refused(viewer, t="v", o=0) == "invalid_interaction"  # no card named
    assert await refused(viewer, t="v", i="int_nope", o=0) == "unknown_interaction"
    assert await refused(viewer, t="v", i=quiz["id"], o=0) == "wrong_interaction"  # a vote is for a poll
    assert await refused(viewer, t="team", i=pk["id"], team="Green") == "unknown_team"
    await viewer.send(t="team", i=pk["id"], team="Red")
    await viewer.until(lambda v: any(f.get("team") == "Red" for f in v.frames))


async def test_show_rules_over_http(shop: ShopCtx) -> None:
    scheduled = await create_show(shop)
    live = await live_show(shop)
    r = await shop.api.patch(f"/v1/shows/{live['id']}", json={"scheduled_at": utc_now().isoformat()})
    assert error(r) == (409, "show_started")
    ok(await shop.api.post(f"/v1/shows/{live['id']}/end"))
    assert error(await shop.api.post(f"/v1/shows/{live['id']}/start")) == (409, "show_ended")
    r = await shop.api.patch(f"/v1/shows/{live['id']}", json={"pinned": []})
    assert error(r) == (409, "show_ended")
    assert ok(await shop.api.patch(f"/v1/shows/{live['id']}", json={"title": "Replay"}))["title"] == "Replay"
    r = await shop.api.delete(f"/v1/shows/{scheduled['id']}/restrictions/kick/d:someone")
    assert error(r) == (422, "invalid_restriction")
    assert error(await shop.api.get("/v1/public/interactions/int_nope")) == (404, "interaction_not_found")


async def test_viewer_tokens_that_expired_or_belong_to_another_show_are_refused(shop: ShopCtx) -> None:
    show, other = await live_show(shop), await live_show(shop)
    secret = shop.app.state.settings.secret_key
    expired = tokens.mint(
        secret, shop_id=shop.shop.id, show_id=show["id"], name="Old", device_id="dev-old", ttl=timedelta(seconds=-1)
    )
    url = f"/v1/public/shows/{show['id']}/video-token"
    r = await shop.api.post(url, headers={"Authorization": f"Bearer {expired}"})
    assert error(r) == (401, "token_expired")
    elsewhere = (await anonymous_token(shop, other["id"], "Pat"))["token"]
    r = await shop.api.post(url, headers={"Authorization": f"Bearer {elsewhere}"})
    assert error(r) == (401, "wrong_show")


async def test_a_declined_cohost_request_stays_declined(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    kim = await join(live_server, (await anonymous_token(shop, show["id"], "Kim"))["token"], show["id"])
    await kim.send(t="cohost")
    await kim.until(lambda v: any(f.get("cohost") for f in v.frames))
    (request,) = rows(ok(await shop.api.get(f"/v1/shows/{show['id']}/cohosts")))
    base = f"/v1/shows/{show['id']}/cohosts"
    assert error(await shop.api.post(f"{base}/chr_nope/approve")) == (404, "cohost_request_not_found")
    assert error(await shop.api.post(f"{base}/{request['id']}/maybe")) == (404, "not_found")
    ok(await shop.api.post(f"{base}/{request['id']}/decline"))
    assert error(await shop.api.post(f"{base}/{request['id']}/approve")) == (409, "cohost_request_closed")
    assert [r["status"] for r in rows(ok(await shop.api.get(base)))] in ([], ["declined"])
