"""Cursor pagination: pages follow next_cursor to the end, in order, with no repeats, and a cursor works only
on the list that issued it."""

from __future__ import annotations

from typing import Any

import httpx

from liveloop.kit.pagination import DEFAULT_LIMIT
from tests.conftest import ShopCtx, make_shop
from tests.factories import all_items, create_campaign, create_member, ok


async def _pages(api: httpx.AsyncClient, path: str, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = ok(await api.get(path, params={**params, **({"cursor": cursor} if cursor else {})}))
        pages.append([item.get("id") or item.get("code") for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


async def _batch(api: httpx.AsyncClient, count: int, **extra: Any) -> dict[str, Any]:
    body = {"name": "Week", "kind": "percent", "percent_bp": 1000, "currency": "USD", "count": count, **extra}
    return ok(await api.post("/v1/coupon-batches", json=body), 201)


async def test_pages_follow_the_cursor_to_the_end_in_order(shop: ShopCtx) -> None:
    joined = [(await create_member(shop.api))["id"] for _ in range(5)]
    pages = await _pages(shop.api, "/v1/members", limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [m for page in pages for m in page] == joined  # members come in the order they joined


async def test_rows_added_while_paging_neither_repeat_nor_shift_the_rest(shop: ShopCtx) -> None:
    first = await _batch(shop.api, 5)
    page = ok(await shop.api.get("/v1/coupons", params={"limit": 2}))  # newest first
    await _batch(shop.api, 3)  # newer codes arrive in front of the cursor
    rest = await all_items(shop.api, "/v1/coupons", limit=2, cursor=page["next_cursor"])
    seen = [c["code"] for c in page["items"]] + [c["code"] for c in rest]
    assert sorted(seen) == sorted(c["code"] for c in first["coupons"])


async def test_the_default_page_size_applies_and_the_last_page_says_so(shop: ShopCtx) -> None:
    batch = await _batch(shop.api, DEFAULT_LIMIT + 3)
    page = ok(await shop.api.get(f"/v1/coupon-batches/{batch['id']}/codes"))
    assert len(page["items"]) == DEFAULT_LIMIT
    assert page["next_cursor"]
    last = ok(await shop.api.get(f"/v1/coupon-batches/{batch['id']}/codes", params={"cursor": page["next_cursor"]}))
    assert len(last["items"]) == 3
    assert last["next_cursor"] is None


async def test_every_code_of_a_large_batch_is_reachable_page_by_page(shop: ShopCtx) -> None:
    batch = await _batch(shop.api, 450)
    pages = await _pages(shop.api, f"/v1/coupon-batches/{batch['id']}/codes", limit=200)
    assert [len(p) for p in pages] == [200, 200, 50]
    codes = [c for page in pages for c in page]
    assert len(set(codes)) == 450
    ids = [c["id"] for c in await all_items(shop.api, f"/v1/coupon-batches/{batch['id']}/codes", limit=200)]
    assert ids == sorted(ids)  # in the order they were generated


async def test_batches_list_with_their_counts(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    older = await _batch(shop.api, 2)
    newer = await _batch(shop.api, 1, member_ids=[member["id"]])
    listed = ok(await shop.api.get("/v1/coupon-batches"))["items"]
    assert [(b["id"], b["issued"]) for b in listed] == [(newer["id"], 2), (older["id"], 2)]


async def test_a_changed_or_foreign_cursor_is_refused(shop: ShopCtx) -> None:
    for _ in range(3):
        await create_member(shop.api)
    cursor = ok(await shop.api.get("/v1/members", params={"limit": 1}))["next_cursor"]
    payload, _, mac = cursor.partition(".")
    changed = ("A" if payload[0] != "A" else "B") + payload[1:] + "." + mac
    batch = await _batch(shop.api, 3)
    for path, bad in (
        ("/v1/members", changed),
        ("/v1/members", "not-a-cursor"),
        ("/v1/members", cursor + "x"),
        ("/v1/coupons", cursor),  # another list's cursor
        (f"/v1/coupon-batches/{batch['id']}/codes", cursor),
    ):
        response = await shop.api.get(path, params={"cursor": bad})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_cursor"
    assert len(ok(await shop.api.get("/v1/members", params={"cursor": cursor}))["items"]) == 2


async def test_a_cursor_of_one_member_does_not_page_another(shop: ShopCtx) -> None:
    ana, ben = await create_member(shop.api), await create_member(shop.api)
    for member in (ana, ben):
        for amount in (1, 2):
            ok(
                await shop.api.post(
                    "/v1/ledger/credits", json={"member_id": member["id"], "asset": "points", "amount": amount}
                )
            )
    cursor = ok(await shop.api.get(f"/v1/members/{ana['id']}/ledger", params={"limit": 1}))["next_cursor"]
    response = await shop.api.get(f"/v1/members/{ben['id']}/ledger", params={"cursor": cursor})
    assert response.json()["error"]["code"] == "invalid_cursor"


async def test_another_shop_pages_through_nothing_of_this_one(shop: ShopCtx) -> None:
    for _ in range(2):
        await create_member(shop.api)
    cursor = ok(await shop.api.get("/v1/members", params={"limit": 1}))["next_cursor"]
    other = await make_shop(shop.app, slug="other")
    try:
        page = ok(await other.api.get("/v1/members", params={"cursor": cursor}))
        assert page == {"items": [], "next_cursor": None}
    finally:
        await other.api.aclose()


async def test_lists_ordered_by_time_page_past_their_first_page(shop: ShopCtx) -> None:
    """Lists keyed on a date-time (campaigns, batches, API keys, shows) resume from the cursor's instant."""
    campaigns = [(await create_campaign(shop.api, name=f"C{n}"))["id"] for n in range(3)]
    batches = [(await _batch(shop.api, 1))["id"] for _ in range(3)]
    keys = [
        ok(await shop.api.post("/v1/api-keys", json={"name": f"k{n}", "scopes": ["members:read"]}), 201)["id"]
        for n in range(2)
    ]
    shows = [
        ok(
            await shop.api.post(
                "/v1/shows", json={"title": f"S{n}", "host_name": "Mai", "scheduled_at": f"2030-01-0{n + 1}T10:00:00Z"}
            ),
            201,
        )["id"]
        for n in range(3)
    ]
    for path, made in (("/v1/campaigns", campaigns), ("/v1/coupon-batches", batches), ("/v1/shows", shows)):
        pages = await _pages(shop.api, path, limit=1)
        assert sorted(i for page in pages for i in page) == sorted(made), path
        assert all(len(page) == 1 for page in pages), path
    listed = [k for page in await _pages(shop.api, "/v1/api-keys", limit=1) for k in page]
    assert listed[-2:] == keys
    assert len(listed) == len(set(listed)) == 3
