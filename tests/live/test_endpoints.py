"""The live API's bodies, field for field, for the endpoints whose answers are built by hand."""

from __future__ import annotations

from typing import Any

from liveloop.kit.db import transaction
from liveloop.live import cohost, tokens
from tests.conftest import ShopCtx
from tests.factories import create_member, ok
from tests.live.conftest import anonymous_token, live_show


async def test_live_stats_answer_exactly_their_fields(shop: ShopCtx) -> None:
    show = await live_show(shop)
    stats = ok(await shop.api.get(f"/v1/shows/{show['id']}/live-stats"))
    assert stats == {
        "status": "live",
        "viewers_now": 0,
        "unique_viewers": 0,
        "effective_viewers": 0,
        "counters": {},
    }


async def test_a_public_card_leaves_out_what_the_card_does_not_have(shop: ShopCtx) -> None:
    show = await live_show(shop)
    body = {"kind": "poll", "question": "Next?", "options": ["Rose", "Sand"], "window_seconds": 60}
    poll = ok(await shop.api.post(f"/v1/shows/{show['id']}/interactions", json=body), 201)
    card: dict[str, Any] = ok(await shop.api.get(f"/v1/public/interactions/{poll['id']}"))
    assert set(card) == {"k", "card", "title", "config", "progress", "status", "closes_at"}  # no seed, result, end
    assert (card["k"], card["card"], card["status"]) == ("poll", poll["id"], "open")
    ok(await shop.api.post(f"/v1/interactions/{poll['id']}/settle"))
    settled: dict[str, Any] = ok(await shop.api.get(f"/v1/public/interactions/{poll['id']}"))
    assert set(settled) == {"k", "card", "title", "config", "progress", "status", "closes_at", "result"}
    assert settled["result"] == {"votes": [0, 0], "total": 0, "winner": None, "tied": []}  # no votes: no winner


async def test_a_lottery_card_carries_its_seed_hash_and_no_closing_time_is_still_a_null(shop: ShopCtx) -> None:
    show = await live_show(shop)
    body = {"kind": "keyword_lottery", "keyword": "win", "prize": {"type": "points", "amount": 10}}
    lottery = ok(await shop.api.post(f"/v1/shows/{show['id']}/interactions", json=body), 201)
    card = ok(await shop.api.get(f"/v1/public/interactions/{lottery['id']}"))
    assert card["seed_hash"] == lottery["seed_hash"]
    assert isinstance(card["closes_at"], str)
    assert "result" not in card


async def test_a_co_host_decision_answers_its_id_and_status(shop: ShopCtx) -> None:
    show = await live_show(shop)
    viewer = await anonymous_token(shop, show["id"], "Ann")
    claims = tokens.verify(shop.app.state.settings.secret_key, viewer["token"], show_id=show["id"])
    async with transaction(shop.app.state.sessions) as session:
        request = await cohost.ask(session, shop.shop.id, show["id"], claims)
    decided = ok(await shop.api.post(f"/v1/shows/{show['id']}/cohosts/{request.id}/decline"))
    assert decided == {"id": request.id, "status": "declined"}
    queue = ok(await shop.api.get(f"/v1/shows/{show['id']}/cohosts"))
    assert queue["next_cursor"] is None
    assert [set(item) for item in queue["items"]] == [{"id", "alias", "name", "status"}]
    assert (queue["items"][0]["name"], queue["items"][0]["status"]) == ("Ann", "declined")


async def test_the_share_sheet_gives_a_member_their_links_and_a_guest_only_the_room(shop: ShopCtx) -> None:
    show = await live_show(shop)
    path = f"/v1/public/shows/{show['id']}/share"
    guest = await anonymous_token(shop, show["id"], "Kim")
    sheet = ok(await shop.api.get(path, headers={"Authorization": f"Bearer {guest['token']}"}))
    assert sheet == {"room_url": f"http://live.test/live/{show['id']}", "links": []}  # no code key at all
    member = await create_member(shop.api)
    grant = ok(await shop.api.post(f"/v1/shows/{show['id']}/viewer-tokens", json={"member_id": member["id"]}), 201)
    sheet = ok(await shop.api.get(path, headers={"Authorization": f"Bearer {grant['token']}"}))
    assert sheet["code"] == member["referral_code"]
    assert {link["channel"] for link in sheet["links"]} >= {"whatsapp", "copy"}
    assert all(member["referral_code"] in link["url"] for link in sheet["links"])
    assert all(set(link) == {"channel", "url", "share_url", "message"} for link in sheet["links"])
