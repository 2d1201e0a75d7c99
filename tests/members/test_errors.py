"""Members: what the API answers to a duplicate, unreadable contact details, and a code it cannot allocate."""

from __future__ import annotations

import pytest

from liveloop.members import service as members
from tests.conftest import ShopCtx
from tests.factories import create_member, ok


def error(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]  # type: ignore[attr-defined]


async def test_a_member_is_created_once_with_readable_contact_details(shop: ShopCtx) -> None:
    first = await create_member(shop.api, external_id="cust-77")
    r = await shop.api.post("/v1/members", json={"external_id": "cust-77", "email": "other@example.com"})
    assert error(r) == (409, "member_exists")
    r = await shop.api.post("/v1/members", json={"external_id": "cust-78", "email": "ana at example.com"})
    assert error(r) == (422, "invalid_email")
    r = await shop.api.post("/v1/members", json={"external_id": "cust-79", "phone": "12"})
    assert error(r) == (422, "invalid_phone")
    r = await shop.api.patch(f"/v1/members/{first['id']}", json={"phone": "+1 555"})
    assert error(r) == (422, "invalid_phone")
    for external_id in ("cust-78", "cust-79"):  # nothing was half made: the same ids are free
        ok(await shop.api.post("/v1/members", json={"external_id": external_id}), 201)
    assert ok(await shop.api.get(f"/v1/members/{first['id']}"))["email"] == first["email"]


async def test_a_member_whose_referral_code_keeps_colliding_is_asked_to_retry(
    shop: ShopCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await create_member(shop.api)
    # Codes are random; a run of collisions (one in ~2e10 each) is forced by making every draw the same one.
    monkeypatch.setattr(members, "short_code", lambda length=7: first["referral_code"])
    r = await shop.api.post("/v1/members", json={"external_id": "unlucky", "email": "unlucky@example.com"})
    assert error(r) == (409, "retry")
    monkeypatch.undo()
    again = ok(await shop.api.post("/v1/members", json={"external_id": "unlucky", "email": "unlucky@example.com"}))
    assert again["referral_code"] != first["referral_code"]
