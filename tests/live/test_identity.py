"""What the room shows about a viewer grants nothing: aliases, server-side targets, the host's own identity.

Each attack is scripted as a viewer would run it: it reads everything the room sends it (comments, hello,
co-host and moderation messages, results) and tries to use what it saw against another viewer or the host.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import orjson
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from liveloop.kit.db import transaction
from liveloop.kit.sql import table
from liveloop.kit.time import utc_now
from liveloop.live import service
from liveloop.live.aliases import ALIAS_LENGTH, alias, host_key
from liveloop.models import InteractionEntry, ShowViewer
from tests.conftest import ShopCtx
from tests.factories import create_member, ok
from tests.live.conftest import LiveServer, ViewerClient, anonymous_token, join, live_show, until_closed

SECRET = "a-secret-key-of-thirty-two-bytes!!"


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def seen(viewer: ViewerClient) -> str:
    """Everything the viewer received, as one text to search."""
    return orjson.dumps({"hello": viewer.hello, "frames": viewer.frames, "errors": viewer.errors}).decode()


async def entry_refused(server: LiveServer, token: str, show_id: str) -> int | None:
    """The close code of a socket the room refuses (before or right after its hello)."""
    try:
        viewer = await join(server, token, show_id)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None
    await until_closed(viewer.ws)
    return viewer.ws.close_code


async def member_grant(shop: ShopCtx, show_id: str, name: str, shown: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A member with a real ``name``, watching under the display name ``shown`` the shop backend chose."""
    member = await create_member(shop.api, name=name)
    grant = ok(
        await shop.api.post(f"/v1/shows/{show_id}/viewer-tokens", json={"member_id": member["id"], "name": shown}),
        201,
    )
    return member, grant


async def video(shop: ShopCtx, show_id: str, token: str) -> dict[str, Any]:
    r = await shop.api.post(f"/v1/public/shows/{show_id}/video-token", headers={"Authorization": f"Bearer {token}"})
    return dict(ok(r))


@pytest.fixture
def livekit(shop: ShopCtx) -> Any:
    settings = shop.app.state.settings
    settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret = (
        "wss://video.test",
        "APIkey123",
        "a-livekit-secret-that-is-long-enough-123",
    )
    yield settings
    settings.livekit_url = settings.livekit_api_key = settings.livekit_api_secret = None


def test_an_alias_is_stable_in_a_show_unlinkable_across_shows_and_reveals_nothing() -> None:
    a = alias(SECRET, "shw_1", "d:device-of-ann")
    assert a == alias(SECRET, "shw_1", "d:device-of-ann")
    assert len(a) == ALIAS_LENGTH
    assert all(c.isalnum() or c in "-_" for c in a)
    assert a != alias(SECRET, "shw_2", "d:device-of-ann")  # another show, another alias
    assert a != alias("another-secret-key-of-thirty-two-b", "shw_1", "d:device-of-ann")
    assert a != alias(SECRET, "shw_1", "d:device-of-bob")
    assert "device" not in a
    assert "ann" not in a
    assert len({alias(SECRET, "shw_1", f"m:mem_{i}") for i in range(5000)}) == 5000


async def test_frames_a_viewer_receives_never_carry_another_viewers_key(
    shop: ShopCtx, live_server: LiveServer, livekit: Any
) -> None:
    show = await live_show(shop)
    member, mo_grant = await member_grant(shop, show["id"], "Maureen Okafor", "Mo")
    kim_grant = await anonymous_token(shop, show["id"], "Kim")
    spy_grant = await anonymous_token(shop, show["id"], "Spy")
    host_grant = ok(await shop.api.post(f"/v1/shows/{show['id']}/host-token", json={}), 201)
    mo, kim = (
        await join(live_server, mo_grant["token"], show["id"]),
        await join(live_server, kim_grant["token"], show["id"]),
    )
    host = await join(live_server, host_grant["token"], show["id"])
    spy = await join(live_server, spy_grant["token"], show["id"])
    assert set(spy.hello["you"]) == {"a", "name", "member", "role"}
    assert spy.hello["you"]["name"] == "Spy"

    lottery = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/interactions",
            json={"kind": "keyword_lottery", "keyword": "666", "winners": 1, "prize": {"type": "points", "amount": 5}},
        ),
        201,
    )
    await mo.until(lambda v: any(m.get("card") == lottery["id"] for m in v.messages))
    await mo.send(t="c", x="666 me please")
    await kim.send(t="c", x="hello from Kim")
    await host.send(t="c", x="welcome all")
    await mo.until(lambda v: any(f.get("entered") for f in v.frames))
    await kim.send(t="cohost")
    await kim.until(lambda v: any(f.get("cohost") for f in v.frames))
    (request,) = ok(await shop.api.get(f"/v1/shows/{show['id']}/cohosts"))["items"]
    ok(await shop.api.post(f"/v1/shows/{show['id']}/cohosts/{request['id']}/approve"))
    ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/restrictions", json={"alias": kim.hello["you"]["a"], "kind": "mute"}
        ),
        201,
    )
    ok(await shop.api.post(f"/v1/interactions/{lottery['id']}/settle"))
    await spy.until(
        lambda v: (
            any(m.get("card") == lottery["id"] and m.get("end") for m in v.messages)
            and any(m.get("k") == "restrict" for m in v.messages)
            and any(m.get("change") == "approved" for m in v.messages)
            and len(v.comments()) == 3
        )
    )
    # A viewer joining later, resuming from the start, reads the same history.
    late = await join(live_server, (await anonymous_token(shop, show["id"], "Late"))["token"], show["id"], since=0)
    await late.pump(0.3)

    kim_device = kim_grant["viewer_key"].removeprefix("d:")
    secrets_of_others = [
        mo_grant["viewer_key"],
        member["id"],
        "Maureen",  # the member's real name: the room shows the name the shop chose ("Mo")
        kim_grant["viewer_key"],
        kim_device,
        host_grant["viewer_key"],
        "host:",
    ]
    async with shop.app.state.sessions() as session:
        rewards = [r for r in (await session.execute(select(InteractionEntry.reward_id))).scalars() if r]
    assert rewards  # the winner was paid, and its reward id is not in any frame
    for viewer in (spy, late):
        text = seen(viewer)
        for value in secrets_of_others + rewards:
            assert value not in text, value
        assert '"vk"' not in text
        assert '"m:' not in text
        assert '"d:' not in text
    by_comment = {m["x"]: m for m in spy.messages if m.get("k") in ("c", "hc")}
    assert by_comment["hello from Kim"]["a"] == kim.hello["you"]["a"]
    assert by_comment["hello from Kim"]["u"] == "Kim"
    assert by_comment["666 me please"]["u"] == "Mo"
    assert request == {"id": request["id"], "alias": kim.hello["you"]["a"], "name": "Kim", "status": "waiting"}
    # In the provider's room, too, a viewer is its alias.
    body = await video(shop, show["id"], kim_grant["token"])
    claims = jwt.decode(body["token"], livekit.livekit_api_secret, algorithms=["HS256"])
    assert claims["sub"] == kim.hello["you"]["a"]
    assert body["can_publish"] is True


async def test_a_copied_alias_gets_no_publish_grant_and_no_cohost_place(
    shop: ShopCtx, live_server: LiveServer, livekit: Any
) -> None:
    show = await live_show(shop)
    kim_grant = await anonymous_token(shop, show["id"], "Kim")
    kim = await join(live_server, kim_grant["token"], show["id"])
    await kim.send(t="cohost")
    await kim.until(lambda v: any(f.get("cohost") for f in v.frames))
    (request,) = ok(await shop.api.get(f"/v1/shows/{show['id']}/cohosts"))["items"]
    ok(await shop.api.post(f"/v1/shows/{show['id']}/cohosts/{request['id']}/approve"))
    await kim.send(t="c", x="I am on stage")

    await kim.until(lambda v: "I am on stage" in v.comments())
    attacker = await join(live_server, (await anonymous_token(shop, show["id"], "Kim"))["token"], show["id"], since=0)
    await attacker.until(
        lambda v: "I am on stage" in v.comments() and any(m.get("change") == "approved" for m in v.messages)
    )
    copied = {m["a"] for m in attacker.messages if m.get("k") == "c" or m.get("change") == "approved"}
    assert copied == {kim.hello["you"]["a"]}
    stolen = copied.pop()

    # Whatever the attacker does with the alias it copied, its own token stays a watcher's.
    shop.api.cookies.clear()
    shop.api.cookies.set("ll_did", stolen)
    as_cookie = ok(await shop.api.post(f"/v1/public/shows/{show['id']}/join", json={"name": "Kim"}))
    shop.api.cookies.clear()
    assert (await video(shop, show["id"], as_cookie["token"]))["can_publish"] is False
    r = await shop.api.post(f"/v1/public/shows/{show['id']}/video-token", headers={"Authorization": f"Bearer {stolen}"})
    assert error(r) == (401, "invalid_token")
    joined = await join(live_server, as_cookie["token"], show["id"])
    assert joined.hello["you"]["a"] != stolen
    await joined.send(t="cohost", a=stolen)  # asking "as" Kim makes a request of its own, waiting
    await joined.until(lambda v: any(f.get("cohost") for f in v.frames))
    queue = ok(await shop.api.get(f"/v1/shows/{show['id']}/cohosts"))["items"]
    assert sorted((r["alias"] == stolen, r["status"]) for r in queue) == [(False, "waiting"), (True, "approved")]
    assert (await video(shop, show["id"], as_cookie["token"]))["can_publish"] is False
    # Kim's own token, and only it, publishes.
    assert (await video(shop, show["id"], kim_grant["token"]))["can_publish"] is True


async def test_a_copied_alias_cannot_get_a_viewer_or_the_host_banned(shop: ShopCtx, live_server: LiveServer) -> None:
    host_member = await create_member(shop.api, name="Mai")
    show = await live_show(shop, host_member_id=host_member["id"])
    victim = await join(live_server, (await anonymous_token(shop, show["id"], "Vic"))["token"], show["id"])
    host_grant = ok(await shop.api.post(f"/v1/shows/{show['id']}/host-token", json={}), 201)
    host = await join(live_server, host_grant["token"], show["id"])
    await victim.send(t="c", x="nice bag")
    await host.send(t="c", x="thanks!")

    # The attacker impersonates the victim as far as the room lets it: the victim's alias as its device cookie,
    # the victim's name, then it misbehaves, so that the host bans "the victim".
    await host.until(lambda v: {"nice bag", "thanks!"} <= set(v.comments()))
    watcher = (await anonymous_token(shop, show["id"], "Watcher"))["token"]
    attacker_view = await join(live_server, watcher, show["id"], since=0)  # the room's recent history
    await attacker_view.until(lambda v: {"nice bag", "thanks!"} <= set(v.comments()))
    shown = {m["x"]: m["a"] for m in attacker_view.messages if m.get("k") in ("c", "hc")}
    shop.api.cookies.clear()
    shop.api.cookies.set("ll_did", shown["nice bag"])
    impostor_grant = ok(await shop.api.post(f"/v1/public/shows/{show['id']}/join", json={"name": "Vic"}))
    shop.api.cookies.clear()
    impostor = await join(live_server, impostor_grant["token"], show["id"])
    await impostor.send(t="c", x="SPAM SPAM")
    await host.until(lambda v: "SPAM SPAM" in v.comments())
    spam = next(m for m in host.messages if m.get("x") == "SPAM SPAM")
    assert spam["u"] == "Vic"
    assert spam["a"] != shown["nice bag"]
    ok(await shop.api.post(f"/v1/shows/{show['id']}/restrictions", json={"alias": spam["a"], "kind": "ban"}), 201)
    await until_closed(impostor.ws)
    assert impostor.ws.close_code == 4403
    await victim.send(t="c", x="still here")
    await host.until(lambda v: "still here" in v.comments())

    # The host: every console of the show is one identity, and nobody can restrict it.
    other_key = ok(await shop.api.post("/v1/api-keys", json={"name": "second console", "scopes": ["live:write"]}), 201)
    second = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/host-token", json={}, headers={"Authorization": f"Bearer {other_key['key']}"}
        ),
        201,
    )
    assert second["viewer_key"] == host_grant["viewer_key"] == host_key(show["id"])
    base = f"/v1/shows/{show['id']}/restrictions"
    for kind in ("ban", "mute"):
        assert error(await shop.api.post(base, json={"alias": shown["thanks!"], "kind": kind})) == (
            403,
            "cannot_restrict_host",
        )
        r = await shop.api.post(base, json={"member_id": host_member["id"], "kind": kind})
        assert error(r) == (403, "cannot_restrict_host")
    await host.send(t="c", x="host still talking")
    await victim.until(lambda v: "host still talking" in v.comments())
    assert not host.errors


async def test_a_ban_by_alias_holds_across_reconnects_even_for_a_viewer_who_left(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show, other_show = await live_show(shop), await live_show(shop)
    gateway = shop.app.state.gateway
    joe_grant = await anonymous_token(shop, show["id"], "Joe")
    joe = await join(live_server, joe_grant["token"], show["id"])
    joe_alias = joe.hello["you"]["a"]
    await joe.close()
    await asyncio.sleep(0.1)
    await gateway.flush()  # Joe is gone: only the show's viewer rows know his alias now
    base = f"/v1/shows/{show['id']}/restrictions"
    assert ok(await shop.api.post(base, json={"alias": joe_alias, "kind": "ban"}), 201)["alias"] == joe_alias
    assert await entry_refused(live_server, joe_grant["token"], show["id"]) == 4403
    shop.api.cookies.set("ll_did", joe_grant["device_cookie"])  # the same browser, a new token
    again = ok(await shop.api.post(f"/v1/public/shows/{show['id']}/join", json={"name": "Joseph"}))
    shop.api.cookies.clear()
    assert await entry_refused(live_server, again["token"], show["id"]) == 4403
    assert (await shop.api.delete(f"{base}/ban/{joe_alias}")).status_code == 204
    back = await join(live_server, joe_grant["token"], show["id"])
    assert back.hello["you"]["a"] == joe_alias

    # A viewer who watched before aliases were stored (through a process that is gone) is still found.
    await back.close()
    async with transaction(shop.app.state.sessions) as session:
        await session.execute(
            table(ShowViewer)
            .insert()
            .values(
                shop_id=shop.shop.id,
                show_id=show["id"],
                viewer_key="d:watched-last-year",
                device_id="watched-last-year",
                first_seen_at=utc_now(),
            )
        )
    old = alias(shop.app.state.settings.secret_key, show["id"], "d:watched-last-year")
    ok(await shop.api.post(base, json={"alias": old, "kind": "ban"}), 201)
    async with shop.app.state.sessions() as session:
        stored = await session.execute(
            select(ShowViewer.viewer_key, ShowViewer.alias).where(ShowViewer.show_id == show["id"])
        )
        assert dict(stored.all())["d:watched-last-year"] == old
        limits = await service.restrictions(session, show["id"])
        assert limits["ban"] == {"d:watched-last-year"}

    # A member, by member id (a shop backend that knows its member), muted and lifted.
    member, grant = await member_grant(shop, show["id"], "Rita Lopez", "Rita")
    rita = await join(live_server, grant["token"], show["id"])
    ok(await shop.api.post(base, json={"member_id": member["id"], "kind": "mute"}), 201)
    await rita.until(lambda v: any(m.get("k") == "restrict" for m in v.messages))
    await rita.send(t="c", x="hello?")
    await rita.until(lambda v: v.errors)
    assert rita.errors[-1]["code"] == "muted"
    assert (await shop.api.delete(f"{base}/mute/members/{member['id']}")).status_code == 204
    await rita.until(lambda v: any(m.get("lifted") for m in v.messages))
    await rita.send(t="c", x="I can talk again")
    await rita.until(lambda v: "I can talk again" in v.comments())

    # Names that are no viewer of this show.
    stranger = await join(live_server, (await anonymous_token(shop, other_show["id"]))["token"], other_show["id"])
    for target in (stranger.hello["you"]["a"], "AAAAAAAAAAAA"):
        assert error(await shop.api.post(base, json={"alias": target, "kind": "ban"})) == (404, "viewer_not_found")
    assert error(await shop.api.delete(f"{base}/ban/AAAAAAAAAAAA")) == (404, "viewer_not_found")
    assert error(await shop.api.post(base, json={"member_id": "mem_nope", "kind": "ban"})) == (
        404,
        "member_not_found",
    )
    for body in (
        {"alias": joe_alias, "member_id": member["id"], "kind": "ban"},
        {"kind": "ban"},
        {"viewer_key": joe_grant["viewer_key"], "kind": "ban"},  # keys are never targets
        {"alias": "d:" + "x" * 10, "kind": "ban"},
    ):
        assert (await shop.api.post(base, json=body)).status_code == 422


async def test_public_results_name_no_member_device_or_reward(shop: ShopCtx, live_server: LiveServer) -> None:
    show = await live_show(shop)
    players = [
        await member_grant(shop, show["id"], real, shown) for real, shown in (("Ana Real", "A."), ("Ben Real", "B."))
    ]
    viewers = [await join(live_server, grant["token"], show["id"]) for _, grant in players]
    card = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/interactions",
            json={"kind": "keyword_lottery", "keyword": "win", "winners": 2, "prize": {"type": "points", "amount": 9}},
        ),
        201,
    )
    await viewers[0].until(lambda v: any(m.get("card") == card["id"] for m in v.messages))
    for viewer in viewers:
        await viewer.send(t="c", x="win")
        await viewer.until(lambda v: any(f.get("entered") for f in v.frames))
    ok(await shop.api.post(f"/v1/interactions/{card['id']}/settle"))
    r = await shop.api.get(f"/v1/public/interactions/{card['id']}")
    text = r.text
    body = r.json()
    async with shop.app.state.sessions() as session:
        rewards = [x for x in (await session.execute(select(InteractionEntry.reward_id))).scalars() if x]
    assert len(rewards) == 2
    for (member, grant), viewer in zip(players, viewers, strict=True):
        for value in (member["id"], grant["viewer_key"], member["name"]):
            assert value not in text
        assert viewer.hello["you"]["a"] in body["result"]["tickets"]
    for value in [*rewards, "m:", "d:", "member_id", "viewer_key", "reward"]:
        assert value not in text, value
    assert sorted(w["name"] for w in body["result"]["winners"]) == ["A.", "B."]
    # The shop hears who won by member id, in its own event.
    events = ok(await shop.api.get("/v1/events", params={"type": "live.interaction_settled"}))["items"]
    assert sorted(events[0]["data"]["winner_member_ids"]) == sorted(m["id"] for m, _ in players)


async def test_taking_part_counts_once_per_verified_viewer_whatever_it_copies(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop)
    member, phone = await member_grant(shop, show["id"], "Tao Nguyen", "Tao")
    laptop = ok(
        await shop.api.post(f"/v1/shows/{show['id']}/viewer-tokens", json={"member_id": member["id"], "name": "Tao"}),
        201,
    )
    tao = [await join(live_server, g["token"], show["id"]) for g in (phone, laptop)]
    assert tao[0].hello["you"]["a"] == tao[1].hello["you"]["a"]  # one member, one identity in the show
    shop.api.cookies.set("ll_did", tao[0].hello["you"]["a"])  # a copycat with Tao's alias and name
    copycat_grant = ok(await shop.api.post(f"/v1/public/shows/{show['id']}/join", json={"name": "Tao"}))
    shop.api.cookies.clear()
    copycat = await join(live_server, copycat_grant["token"], show["id"])
    assert copycat.hello["you"]["a"] != tao[0].hello["you"]["a"]

    launched = await shop.api.post(
        f"/v1/shows/{show['id']}/interactions", json={"kind": "poll", "question": "Next?", "options": ["Red", "Blue"]}
    )
    poll = ok(launched, 201)
    offer = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/interactions",
            json={"kind": "flash_offer", "sku": "A1", "quantity": 5, "bonus": {"type": "points", "amount": 10}},
        ),
        201,
    )
    await tao[0].send(t="v", i=poll["id"], o=0)
    await tao[0].until(lambda v: any(f.get("choice") == 0 for f in v.frames))
    await tao[1].send(t="v", i=poll["id"], o=1)  # the same member from another device: refused
    await tao[1].until(lambda v: v.errors)
    assert tao[1].errors[-1]["code"] == "already_answered"
    await copycat.send(t="v", i=poll["id"], o=1)  # someone else: counted on its own
    await copycat.until(lambda v: any(f.get("choice") == 1 for f in v.frames))
    await tao[0].send(t="claim", i=offer["id"])
    await tao[0].until(lambda v: any(f.get("place") for f in v.frames))
    await tao[1].send(t="claim", i=offer["id"])
    await tao[1].until(lambda v: len(v.errors) == 2)
    assert tao[1].errors[-1]["code"] == "limit_reached"
    settled = ok(await shop.api.post(f"/v1/interactions/{poll['id']}/settle"))
    assert settled["result"]["votes"] == [1, 1]
    assert settled["result"]["total"] == 2
    claimed = ok(await shop.api.post(f"/v1/interactions/{offer['id']}/settle"))
    assert claimed["result"]["claimed"] == 1


async def test_the_room_shows_a_members_chosen_name_or_a_mask_never_the_real_name_unasked(
    shop: ShopCtx, live_server: LiveServer
) -> None:
    show = await live_show(shop)
    private = await create_member(shop.api, name="Priya Raman")
    chosen = await create_member(shop.api, name="Wei Chen", display_name="Wei from Penang")
    named: dict[str, str] = {}
    for member, body in ((private, {}), (chosen, {}), (private, {"name": "Shop-chosen nickname"})):
        grant = ok(
            await shop.api.post(f"/v1/shows/{show['id']}/viewer-tokens", json={"member_id": member["id"], **body}), 201
        )
        viewer = await join(live_server, grant["token"], show["id"])
        await viewer.send(t="c", x=f"hi from {len(named)}")
        await viewer.until(lambda v, n=len(named): any(m.get("x") == f"hi from {n}" for m in v.messages))
        shown = next(m for m in viewer.messages if m.get("x") == f"hi from {len(named)}")
        named[str(len(named))] = shown["u"]
        assert shown["u"] == viewer.hello["you"]["name"]
        await viewer.close()
    assert named == {"0": "P•••", "1": "Wei from Penang", "2": "Shop-chosen nickname"}
