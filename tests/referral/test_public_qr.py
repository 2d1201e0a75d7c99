"""A member's invite QR code at a signed public address: works in an <img> or an email, reveals nothing else."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from liveloop.client import client_for
from liveloop.referral import links
from tests.conftest import ShopCtx
from tests.factories import create_member, ok


def path_of(url: str) -> str:
    return urlsplit(url).path


async def test_invite_links_give_qr_addresses_that_work_without_an_api_key(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    body = ok(
        await shop.api.get(f"/v1/members/{member['id']}/invite-links", params={"show_id": "shw_1", "host_id": "h_7"})
    )
    assert body["qr_png"].startswith("http://live.test/v1/public/qr/")
    assert body["qr_png"].endswith(".png")
    assert body["qr_svg"].startswith("http://live.test/v1/public/qr/")
    assert body["qr_svg"].endswith(".svg")
    async with client_for(shop.app) as anonymous:  # an <img> in an email: no Authorization header
        png = await anonymous.get(path_of(body["qr_png"]))
        svg = await anonymous.get(path_of(body["qr_svg"]))
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "public" in png.headers["cache-control"]
    # The image is the QR code of the member's invite link for the QR channel, with the show and host.
    url = links.invite_url(
        "http://live.test", shop.slug, member["referral_code"], channel="qr", show_id="shw_1", host_id="h_7"
    )
    assert svg.content == links.qr(url, "svg")
    assert png.content == links.qr(url, "png")


async def test_the_qr_address_names_no_member_and_shows_only_what_the_link_shows(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/invite-links"))
    token = path_of(body["qr_png"]).removeprefix("/v1/public/qr/").removesuffix(".png")
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert member["id"] not in body["qr_png"]
    assert member["id"] not in decoded
    assert member["external_id"] not in decoded
    assert member["email"] not in decoded
    assert decoded == f'["{shop.slug}","{member["referral_code"]}"]'


async def test_a_tampered_or_forged_qr_address_is_refused(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    other = await create_member(shop.api)
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/invite-links"))
    token = path_of(body["qr_png"]).removeprefix("/v1/public/qr/").removesuffix(".png")
    _, signature = token.split(".")
    # Someone else's code under this member's signature.
    swapped = base64.urlsafe_b64encode(f'["{shop.slug}","{other["referral_code"]}"]'.encode()).rstrip(b"=").decode()
    # A token signed with a key that is not the server's.
    forged = links.qr_token(
        "not-the-server-key-but-long-enough-1234", links.QrTarget(shop.slug, other["referral_code"])
    )
    async with client_for(shop.app) as anonymous:
        for bad in (f"{swapped}.{signature}", forged, token[:-2] + "AA", "garbage", f"{token}.x"):
            response = await anonymous.get(f"/v1/public/qr/{bad}.png")
            assert response.status_code == 404, bad
            assert response.json()["error"]["code"] == "invalid_qr_link"
        gif = await anonymous.get(f"/v1/public/qr/{token}.gif")
    assert (gif.status_code, gif.json()["error"]["code"]) == (404, "unknown_format")
