"""Device identity is issued and signed by the server: a client keeps its device or drops it, never chooses it."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from liveloop.kit.db import transaction
from liveloop.kit.time import utc_now
from liveloop.live import tokens
from liveloop.members import devices
from liveloop.models import InviteClick, MemberDevice, ShowViewer
from tests.conftest import ShopCtx
from tests.factories import create_member, new_device, ok
from tests.live.conftest import live_show

KEY = "test-secret-key-that-is-long-enough-for-hs256"
OTHER_KEY = "another-secret-key-that-is-long-enough-too"


def forgeries(real: str) -> dict[str, str]:
    """What an attacker can send instead of a device this server issued to them."""
    bare = real.split(".")[0]
    return {
        "made_up": secrets.token_urlsafe(16),
        "bare_id": bare,  # somebody's real device id, without the signature
        "forged_signature": f"{bare}.{'A' * 22}",
        "truncated": real[:-4],
        "other_key": devices.sign(OTHER_KEY, bare),  # the same id, signed with another server's key
        "extra_part": real + ".x",
        "too_long": devices.sign(KEY, "a" * 50),  # signed by this key, but longer than any id it issues
    }


def test_minted_values_verify_and_nothing_else_does() -> None:
    value = devices.mint(KEY)
    device_id = devices.verify(KEY, value)
    assert device_id is not None
    assert value == f"{device_id}.{value.split('.')[1]}"
    assert len(value) <= 64
    assert len(value.split(".")[1]) * 6 >= 96
    assert devices.verify(KEY, devices.sign(KEY, device_id)) == device_id
    assert devices.mint(KEY) != value
    for name, forged in forgeries(value).items():
        assert devices.verify(KEY, forged) is None, name
    for odd in (None, "", ".", "x" * 500, "é" * 22 + "." + "A" * 22, value.replace(".", ";"), " " + value):
        assert devices.verify(KEY, odd) is None
    assert devices.verify(OTHER_KEY, value) is None


def test_the_cookie_header_gives_the_first_device_that_verifies() -> None:
    value = devices.mint(KEY)
    device_id = devices.verify(KEY, value)
    header = f"theme=dark; ll_did={forgeries(value)['bare_id']}; ll_did={value}; other=1"
    assert devices.from_cookie_header(KEY, header) == device_id
    assert devices.from_cookie_header(KEY, "ll_did=" + forgeries(value)["forged_signature"]) is None
    assert devices.from_cookie_header(KEY, "") is None
    assert devices.identify(KEY, header) == (device_id, value)
    fresh_id, fresh_value = devices.identify(KEY, "ll_did=" + device_id)
    assert fresh_id != device_id
    assert devices.verify(KEY, fresh_value) == fresh_id


def _cookie(response: httpx.Response) -> str:
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("ll_did="))


async def _stored_click(shop: ShopCtx, response: httpx.Response) -> InviteClick:
    click_id = response.headers["location"].split("ll_click=")[1].split("&")[0]
    async with transaction(shop.app.state.sessions) as s:
        found = await s.get(InviteClick, click_id)
    assert found is not None
    return found


async def test_an_invite_link_issues_a_signed_cookie_with_the_safe_attributes(shop: ShopCtx) -> None:
    inviter = await create_member(shop.api)
    link = f"/r/{shop.slug}/{inviter['referral_code']}"
    async with shop.client() as api:
        r = await api.get(link)
    header = _cookie(r)
    value = header.split(";")[0].removeprefix("ll_did=")
    device_id = devices.verify(KEY, value)
    assert device_id is not None
    attributes = {a.strip().lower() for a in header.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/", "max-age=31536000"} <= attributes
    assert "secure" not in attributes  # plain http
    assert (await _stored_click(shop, r)).device_id == device_id  # the bare id is stored, not the signed value
    # Over https (the scope's scheme, as uvicorn sets it for a trusted proxy) the cookie is Secure.
    https = httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app), base_url="https://live.test")
    async with https:
        secure = _cookie(await https.get(link))
    assert "secure" in {a.strip().lower() for a in secure.split(";")[1:]}


async def test_an_invite_link_keeps_a_valid_device_and_replaces_any_other(shop: ShopCtx) -> None:
    inviter = await create_member(shop.api)
    link = f"/r/{shop.slug}/{inviter['referral_code']}"
    real = new_device(shop.app)
    async with shop.client() as api:
        r = await api.get(link, headers={"cookie": f"ll_did={real}"})
    assert (await _stored_click(shop, r)).device_id == devices.verify(KEY, real)
    assert _cookie(r).startswith(f"ll_did={real};")
    for name, forged in forgeries(real).items():
        async with shop.client() as api:
            r = await api.get(link, headers={"cookie": f"ll_did={forged}"})
        fresh = r.cookies.get("ll_did")
        stored = (await _stored_click(shop, r)).device_id
        assert fresh, name
        assert fresh != forged, name
        assert devices.verify(KEY, fresh) == stored, name
        assert stored not in (forged, real.split(".")[0]), name


async def test_the_room_join_keeps_a_valid_device_and_replaces_any_other(shop: ShopCtx) -> None:
    show = await live_show(shop)
    join = f"/v1/public/shows/{show['id']}/join"
    real = new_device(shop.app)
    bare = devices.verify(KEY, real)
    async with shop.client() as api:
        r = await api.post(join, headers={"cookie": f"ll_did={real}"})
    assert ok(r)["viewer_key"] == f"d:{bare}"
    assert r.cookies.get("ll_did") == real
    for name, forged in forgeries(real).items():
        async with shop.client() as api:
            r = await api.post(join, headers={"cookie": f"ll_did={forged}"})
        fresh = r.cookies.get("ll_did")
        assert fresh, name
        assert devices.verify(KEY, fresh) is not None, name
        assert ok(r)["viewer_key"] == f"d:{devices.verify(KEY, fresh)}" != f"d:{bare}", name
    # A guest who gives no name is not named after its device id.
    async with shop.client() as api:
        r = await api.post(join)
    claims = tokens.verify(KEY, ok(r)["token"], show_id=show["id"])
    assert claims.name.startswith("Guest ")
    assert claims.device_id
    assert claims.name != f"Guest {claims.device_id[:4]}"
    attributes = {a.strip().lower() for a in _cookie(r).split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/", "max-age=31536000"} <= attributes
    assert "secure" not in attributes
    https = httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app), base_url="https://live.test")
    async with https:
        secure = _cookie(await https.post(join))
    assert "secure" in {a.strip().lower() for a in secure.split(";")[1:]}


async def _invalid_device(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_device"
    assert "ll_did" in response.json()["error"]["message"]


@pytest.mark.parametrize("kind", list(forgeries(devices.mint(KEY))))
async def test_device_fields_of_the_api_take_only_signed_values(shop: ShopCtx, kind: str) -> None:
    real = new_device(shop.app)
    forged = forgeries(real)[kind]
    await _invalid_device(await shop.api.post("/v1/members", json={"external_id": "c-1", "device_id": forged}))
    member = await create_member(shop.api, device_id=real)
    await _invalid_device(await shop.api.patch(f"/v1/members/{member['id']}", json={"device_id": forged}))
    show = await live_show(shop)
    await _invalid_device(
        await shop.api.post(
            f"/v1/shows/{show['id']}/viewer-tokens", json={"member_id": member["id"], "device_id": forged}
        )
    )
    async with transaction(shop.app.state.sessions) as s:
        stored = set((await s.execute(select(MemberDevice.device_id))).scalars())
    assert stored == {devices.verify(KEY, real)}  # the bare id of the one real device, nothing forged


async def test_a_signed_device_links_the_browsers_watching_to_its_member(shop: ShopCtx) -> None:
    show = await live_show(shop)
    async with shop.client() as api:
        joined = await api.post(f"/v1/public/shows/{show['id']}/join")
    cookie = joined.cookies["ll_did"]
    bare = devices.verify(KEY, cookie)
    async with transaction(shop.app.state.sessions) as s:
        s.add(
            ShowViewer(
                shop_id=shop.shop.id,
                show_id=show["id"],
                viewer_key=f"d:{bare}",
                device_id=bare,
                first_seen_at=utc_now(),
                effective_at=utc_now(),
            )
        )
    member = await create_member(shop.api, device_id=cookie)
    token = ok(
        await shop.api.post(
            f"/v1/shows/{show['id']}/viewer-tokens", json={"member_id": member["id"], "device_id": cookie}
        ),
        201,
    )
    assert token["token"]
    async with transaction(shop.app.state.sessions) as s:
        viewer = (await s.execute(select(ShowViewer).where(ShowViewer.device_id == bare))).scalar_one()
        devices_of_member = set(
            (await s.execute(select(MemberDevice.device_id).where(MemberDevice.member_id == member["id"]))).scalars()
        )
    assert viewer.member_id == member["id"]
    assert devices_of_member == {bare}


async def test_an_order_event_keeps_only_a_signed_device(shop: ShopCtx) -> None:
    real = new_device(shop.app)

    async def push(event_id: str, customer: str, device: str) -> Any:
        body = {
            "id": event_id,
            "type": "order.paid",
            "order": {
                "id": f"o-{event_id}",
                "currency": "USD",
                "total_minor": 2500,
                "customer": {"id": customer, "device_id": device},
            },
        }
        return ok(await shop.api.post("/v1/orders/events", json=body))

    await push("e1", "buyer-1", real)
    await push("e2", "buyer-2", forgeries(real)["bare_id"])  # recorded, without the device
    async with transaction(shop.app.state.sessions) as s:
        stored = set((await s.execute(select(MemberDevice.device_id))).scalars())
    assert stored == {devices.verify(KEY, real)}
