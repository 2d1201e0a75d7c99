"""The members' endpoints: list, read and update members; record and read their consents."""

from __future__ import annotations

from tests.conftest import ShopCtx, make_shop
from tests.factories import all_items, create_member, ok

MEMBER_FIELDS = {
    "id",
    "external_id",
    "email",
    "phone_e164",
    "name",
    "display_name",
    "locale",
    "timezone",
    "market",
    "referral_code",
    "first_paid_order_at",
    "created_at",
}
CONSENT_FIELDS = {"channel", "purpose", "granted", "recorded_at", "source", "text_version"}


async def test_members_are_listed_in_the_order_they_joined_and_read_one_by_one(shop: ShopCtx) -> None:
    made = [await create_member(shop.api) for _ in range(3)]
    listed = await all_items(shop.api, "/v1/members", limit=2)
    assert [m["id"] for m in listed] == [m["id"] for m in made]
    assert all(set(m) == MEMBER_FIELDS for m in listed)
    one = ok(await shop.api.get(f"/v1/members/{made[1]['id']}"))
    assert one == listed[1]
    missing = await shop.api.get("/v1/members/mem_00000000000000000000000000")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "member_not_found")


async def test_an_update_changes_only_the_fields_it_gives(shop: ShopCtx) -> None:
    member = await create_member(shop.api, market="sea", name="Ana", locale="en")
    updated = ok(await shop.api.patch(f"/v1/members/{member['id']}", json={"display_name": "ana.k", "name": None}))
    assert set(updated) == MEMBER_FIELDS
    assert (updated["display_name"], updated["name"], updated["locale"]) == ("ana.k", "Ana", "en")
    moved = ok(await shop.api.patch(f"/v1/members/{member['id']}", json={"market": "eu", "timezone": "Europe/Rome"}))
    assert (moved["market"], moved["timezone"]) == ("eu", "Europe/Rome")
    other = await make_shop(shop.app, slug="rival")
    r = await other.api.patch(f"/v1/members/{member['id']}", json={"name": "Mallory"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "member_not_found")
    assert ok(await shop.api.get(f"/v1/members/{member['id']}"))["name"] == "Ana"
    await other.api.aclose()


async def test_consents_are_recorded_and_read_back_in_force_and_in_full(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    url = f"/v1/members/{member['id']}/consents"
    base = {"purpose": "marketing", "source": "checkout-checkbox", "text_version": "2026-10-01"}
    first = ok(await shop.api.post(url, json={**base, "channel": "email", "granted": True}), 201)
    assert set(first) == CONSENT_FIELDS
    assert (first["channel"], first["granted"]) == ("email", True)
    ok(await shop.api.post(url, json={**base, "channel": "whatsapp", "granted": True}), 201)
    ok(await shop.api.post(url, json={**base, "channel": "email", "granted": False}), 201)
    got = ok(await shop.api.get(url))
    assert set(got) == {"in_force", "history"}
    assert [(c["channel"], c["granted"]) for c in got["history"]] == [
        ("email", True),
        ("whatsapp", True),
        ("email", False),
    ]
    assert sorted((c["channel"], c["granted"]) for c in got["in_force"]) == [("email", False), ("whatsapp", True)]
    assert all(set(c) == CONSENT_FIELDS for c in got["in_force"] + got["history"])
    bad = await shop.api.post(url, json={**base, "channel": "carrier-pigeon", "granted": True})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")
    assert "'email', 'sms', 'whatsapp', 'push', 'in_app' or 'webhook'" in bad.json()["error"]["message"]
    assert len(ok(await shop.api.get(url))["history"]) == 3
