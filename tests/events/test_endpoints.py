"""Webhook endpoints managed through the API: registration checks, updates, pause, delete, secret rotation,
the delivery log and re-sends, each against a real receiver on 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import update

from liveloop.events.service import MAX_ENDPOINTS_PER_SHOP, fan_out
from liveloop.events.worker import Worker
from liveloop.kit.db import transaction
from liveloop.kit.signing import timestamped_signature
from liveloop.kit.time import utc_now
from liveloop.models import WebhookDelivery
from liveloop.shops.service import create_api_key
from tests.conftest import ShopCtx, make_shop
from tests.events.conftest import Receiver
from tests.events.test_worker import deliveries
from tests.factories import create_member, ok
from tests.kit.test_netguard import UNRESOLVABLE

# Refused at registration. No worker runs in these tests, and none of these is ever sent to.
FORBIDDEN_URLS = [
    "http://127.0.0.1:9/hooks",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://localhost/hooks",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.7/",
    "http://192.168.0.1/",
    "http://[fd12::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://240.0.0.1/",
]


def error_code(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["code"])


async def register(shop: ShopCtx, url: str, **body: Any) -> dict[str, Any]:
    return ok(await shop.api.post("/v1/webhook-endpoints", json={"url": url, **body}), 201)


async def received_events(receiver: Receiver) -> list[str]:
    return [orjson.loads(body)["id"] for _, body in receiver.received]


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
async def test_urls_to_non_public_addresses_are_refused_at_registration(shop: ShopCtx, url: str) -> None:
    response = await shop.api.post("/v1/webhook-endpoints", json={"url": url})
    assert error_code(response, 422) == "forbidden_webhook_target"
    assert "not a public one" in response.json()["error"]["message"]
    assert ok(await shop.api.get("/v1/webhook-endpoints"))["items"] == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://user:pass@127.0.0.1/", "invalid_url"),
        ("https://:token@93.184.216.34/", "invalid_url"),
        ("http:///nohost", "invalid_url"),
        ("ftp://93.184.216.34/", "invalid_request"),
        ("file:///etc/passwd", "invalid_request"),
        ("javascript:alert(1)", "invalid_request"),
        (UNRESOLVABLE, "webhook_host_unresolvable"),
    ],
)
async def test_malformed_urls_are_refused_at_registration(shop: ShopCtx, url: str, code: str) -> None:
    response = await shop.api.post("/v1/webhook-endpoints", json={"url": url})
    assert error_code(response, 422) == code
    assert ok(await shop.api.get("/v1/webhook-endpoints"))["items"] == []


async def test_private_targets_are_accepted_only_when_the_setting_allows_them(
    shop: ShopCtx, receiver: Receiver
) -> None:
    refused = await shop.api.post("/v1/webhook-endpoints", json={"url": receiver.url})
    assert error_code(refused, 422) == "forbidden_webhook_target"
    assert "allow private targets" in refused.json()["error"]["message"]
    settings = shop.app.state.settings
    shop.app.state.settings = settings.model_copy(update={"webhook_allow_private_targets": True})
    try:
        await register(shop, receiver.url)
        # Still never the cloud metadata address, nor multicast.
        for url in ("http://169.254.169.254/", "http://224.0.0.1/"):
            response = await shop.api.post("/v1/webhook-endpoints", json={"url": url})
            assert error_code(response, 422) == "forbidden_webhook_target"
    finally:
        shop.app.state.settings = settings


async def test_endpoints_are_listed_read_and_updated(shop: ShopCtx, receiver: Receiver, private_targets: None) -> None:
    created = await register(shop, receiver.url, event_types=["member.created"], description="CRM sync")
    assert created["secret"].startswith("whsec_")
    assert created["active"] is True
    endpoint_id = created["id"]
    listed = ok(await shop.api.get("/v1/webhook-endpoints"))["items"]
    assert [e["id"] for e in listed] == [endpoint_id]
    assert "secret" not in listed[0]
    read = ok(await shop.api.get(f"/v1/webhook-endpoints/{endpoint_id}"))
    assert read["description"] == "CRM sync"
    assert "secret" not in read

    other = Receiver("/other")
    try:
        changed = ok(
            await shop.api.patch(
                f"/v1/webhook-endpoints/{endpoint_id}",
                json={"url": other.url, "event_types": ["order.paid", "order.refunded"], "description": None},
            )
        )
    finally:
        other.close()
    assert changed["url"] == other.url
    assert changed["event_types"] == ["order.paid", "order.refunded"]
    assert changed["description"] is None

    # A new URL is checked again, and a refused change changes nothing.
    refused = await shop.api.patch(f"/v1/webhook-endpoints/{endpoint_id}", json={"url": "http://169.254.169.254/"})
    assert error_code(refused, 422) == "forbidden_webhook_target"
    unknown = await shop.api.patch(f"/v1/webhook-endpoints/{endpoint_id}", json={"event_types": ["order.shipped"]})
    assert error_code(unknown, 422) == "unknown_event_type"
    assert ok(await shop.api.get(f"/v1/webhook-endpoints/{endpoint_id}"))["url"] == other.url

    missing = await shop.api.get("/v1/webhook-endpoints/whe_nope")
    assert error_code(missing, 404) == "webhook_endpoint_not_found"
    stranger = await make_shop(shop.app, "stranger")
    try:
        for response in (
            await stranger.api.get(f"/v1/webhook-endpoints/{endpoint_id}"),
            await stranger.api.patch(f"/v1/webhook-endpoints/{endpoint_id}", json={"active": False}),
            await stranger.api.delete(f"/v1/webhook-endpoints/{endpoint_id}"),
        ):
            assert error_code(response, 404) == "webhook_endpoint_not_found"
    finally:
        await stranger.api.aclose()
    assert ok(await shop.api.get(f"/v1/webhook-endpoints/{endpoint_id}"))["active"] is True


async def test_a_shop_has_a_bounded_number_of_endpoints(
    shop: ShopCtx, receiver: Receiver, private_targets: None
) -> None:
    for _ in range(MAX_ENDPOINTS_PER_SHOP):
        await register(shop, receiver.url)
    response = await shop.api.post("/v1/webhook-endpoints", json={"url": receiver.url})
    assert error_code(response, 409) == "too_many_webhook_endpoints"


async def test_a_paused_endpoint_receives_nothing_until_it_is_resumed(
    shop: ShopCtx, receiver: Receiver, private_targets: None, worker: Worker
) -> None:
    endpoint = await register(shop, receiver.url)
    await create_member(shop.api)
    paused = ok(await shop.api.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"active": False}))
    assert paused["active"] is False
    await create_member(shop.api)  # an event while paused is held too
    assert await worker.deliver_due() == 0
    assert receiver.connections == 0
    assert [d.status for d in await deliveries(shop)] == ["pending", "pending"]

    ok(await shop.api.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"active": True}))
    assert await worker.deliver_due() == 2
    events = [e["id"] for e in ok(await shop.api.get("/v1/events"))["items"]]
    assert sorted(await received_events(receiver)) == sorted(events)


async def test_a_deleted_endpoint_receives_nothing_more(
    shop: ShopCtx, receiver: Receiver, private_targets: None, worker: Worker
) -> None:
    endpoint = await register(shop, receiver.url)
    await create_member(shop.api)
    assert await worker.deliver_due() == 1
    await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        await fan_out(s)  # a delivery is queued for it…
    deleted = ok(await shop.api.delete(f"/v1/webhook-endpoints/{endpoint['id']}"))
    assert deleted == {"id": endpoint["id"], "deleted": True}
    assert await worker.deliver_due() == 0  # …and dropped with it
    await create_member(shop.api)
    assert await worker.deliver_due() == 0
    assert len(receiver.received) == 1
    assert await deliveries(shop) == []
    gone = await shop.api.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert error_code(gone, 404) == "webhook_endpoint_not_found"


async def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(
    shop: ShopCtx, receiver: Receiver, private_targets: None, worker: Worker
) -> None:
    endpoint = await register(shop, receiver.url)
    rotated = ok(
        await shop.api.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", json={"previous_secret_valid_seconds": 3600}
        )
    )
    new, old = rotated["secret"], endpoint["secret"]
    assert new != old
    assert rotated["previous_secret_expires_at"] is not None
    assert "secret" not in ok(await shop.api.get(f"/v1/webhook-endpoints/{endpoint['id']}"))
    await create_member(shop.api)
    assert await worker.deliver_due() == 1
    headers, body = receiver.received[-1]
    timestamp = int(headers["X-Liveloop-Timestamp"])
    assert headers["X-Liveloop-Signature"] == ",".join(timestamped_signature(s, timestamp, body) for s in (new, old))

    # Rotating again with no overlap retires every earlier secret at once.
    latest = ok(
        await shop.api.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", json={"previous_secret_valid_seconds": 0}
        )
    )
    assert latest["previous_secret_expires_at"] is None
    await create_member(shop.api)
    assert await worker.deliver_due() == 1
    headers, body = receiver.received[-1]
    assert headers["X-Liveloop-Signature"] == timestamped_signature(
        latest["secret"], int(headers["X-Liveloop-Timestamp"]), body
    )


async def test_the_default_rotation_keeps_the_old_secret_for_a_day(
    shop: ShopCtx, receiver: Receiver, private_targets: None
) -> None:
    endpoint = await register(shop, receiver.url)
    rotated = ok(await shop.api.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"))
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - utc_now() <= timedelta(hours=24)
    too_long = await shop.api.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", json={"previous_secret_valid_seconds": 8 * 86400}
    )
    assert error_code(too_long, 422) == "invalid_request"


async def test_deliveries_are_listed_newest_first_page_by_page(
    shop: ShopCtx, receiver: Receiver, private_targets: None, worker: Worker
) -> None:
    endpoint = await register(shop, receiver.url)
    for _ in range(5):
        await create_member(shop.api)
    receiver.fail_next = 2
    assert await worker.deliver_due() == 4  # the endpoint's four slots
    assert await worker.deliver_due() == 1
    base = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    first = ok(await shop.api.get(base, params={"limit": 2}))
    second = ok(await shop.api.get(base, params={"limit": 2, "cursor": first["next_cursor"]}))
    third = ok(await shop.api.get(base, params={"limit": 2, "cursor": second["next_cursor"]}))
    assert third["next_cursor"] is None
    pages = first["items"] + second["items"] + third["items"]
    assert [d["id"] for d in pages] == sorted((d.id for d in await deliveries(shop)), reverse=True)
    events = {e["id"] for e in ok(await shop.api.get("/v1/events"))["items"]}
    assert {d["event_id"] for d in pages} == events
    assert {d["event_type"] for d in pages} == {"member.created"}
    failed = [d for d in pages if d["status"] == "pending"]
    assert len(failed) == 2
    for d in failed:
        assert d["attempts"] == 1
        assert d["last_status_code"] == 503
        assert d["last_error"] == "HTTP 503"
        assert d["next_attempt_at"] is not None
        assert d["last_attempt_at"] is not None
    delivered = [d for d in pages if d["status"] == "delivered"]
    assert len(delivered) == 3
    assert all(d["next_attempt_at"] is None and d["delivered_at"] for d in delivered)
    only_pending = ok(await shop.api.get(base, params={"status": "pending"}))["items"]
    assert {d["id"] for d in only_pending} == {d["id"] for d in failed}

    bad = await shop.api.get(base, params={"cursor": "not-a-cursor"})
    assert error_code(bad, 422) == "invalid_cursor"
    too_small = await shop.api.get(base, params={"limit": 0})
    assert error_code(too_small, 422) == "invalid_request"


async def test_a_delivery_is_resent_once_however_often_it_is_asked(
    shop: ShopCtx, receiver: Receiver, private_targets: None, worker: Worker
) -> None:
    endpoint = await register(shop, receiver.url)
    await create_member(shop.api)
    assert await worker.deliver_due() == 1
    [delivery] = await deliveries(shop)
    url = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery.id}/resend"
    first = ok(await shop.api.post(url), 202)
    again = ok(await shop.api.post(url), 202)
    assert first["status"] == again["status"] == "pending"
    assert await worker.deliver_due() == 1
    assert await worker.deliver_due() == 0
    ids = await received_events(receiver)
    assert len(ids) == 2
    assert ids[0] == ids[1]
    [delivery] = await deliveries(shop)
    assert delivery.status == "delivered"
    assert delivery.attempts == 2

    # A delivery that failed for good goes out again on request.
    async with transaction(shop.app.state.sessions) as s:
        await s.execute(update(WebhookDelivery).values(status="failed", last_error="HTTP 500"))
    assert ok(await shop.api.post(url), 202)["status"] == "pending"
    assert await worker.deliver_due() == 1
    assert len(receiver.received) == 3

    missing = await shop.api.post(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/whd_nope/resend")
    assert error_code(missing, 404) == "webhook_delivery_not_found"
    ok(await shop.api.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"active": False}))
    paused = await shop.api.post(url)
    assert error_code(paused, 409) == "webhook_endpoint_paused"
    assert await worker.deliver_due() == 0
    assert len(receiver.received) == 3


async def test_failed_deliveries_are_logged_without_secrets_urls_or_bodies(
    shop: ShopCtx, receiver: Receiver, private_targets: None, worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = await register(shop, receiver.url + "?token=tok-in-the-query")
    receiver.fail_next = 1
    member = await create_member(shop.api, email="secret.person@example.com")
    with caplog.at_level(logging.INFO, logger="liveloop"):
        assert await worker.deliver_due() == 1
    [record] = [r for r in caplog.records if r.name == "liveloop.worker"]
    line = record.getMessage()
    [event] = ok(await shop.api.get("/v1/events"))["items"]
    assert endpoint["id"] in line
    assert event["id"] in line
    assert "error=HTTPStatus" in line
    assert "status=503" in line
    for leaked in (endpoint["secret"], "tok-in-the-query", str(receiver.port), member["id"], "secret.person"):
        assert leaked not in line


async def test_webhook_endpoints_need_the_admin_scope(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as s:
        _, key = await create_api_key(s, shop.shop, name="reader", scopes=["members:read"])
    async with shop.client(key) as api:
        for response in (
            await api.get("/v1/webhook-endpoints"),
            await api.post("/v1/webhook-endpoints", json={"url": "https://93.184.216.34/"}),
            await api.get("/v1/events"),
        ):
            assert error_code(response, 403) == "missing_scope"


async def test_endpoints_come_in_pages_and_a_cursor_pages_only_its_own_list(
    shop: ShopCtx, receiver: Receiver, private_targets: None, worker: Worker
) -> None:
    ids = [(await register(shop, f"{receiver.url}?n={n}"))["id"] for n in range(3)]
    first = ok(await shop.api.get("/v1/webhook-endpoints", params={"limit": 2}))
    assert [e["id"] for e in first["items"]] == ids[:2]
    assert first["next_cursor"]
    rest = ok(await shop.api.get("/v1/webhook-endpoints", params={"limit": 2, "cursor": first["next_cursor"]}))
    assert [e["id"] for e in rest["items"]] == ids[2:]
    assert rest["next_cursor"] is None
    assert all("secret" not in e for e in first["items"] + rest["items"])

    for _ in range(2):
        await create_member(shop.api)
    while await worker.deliver_due():
        pass
    one = ok(await shop.api.get(f"/v1/webhook-endpoints/{ids[0]}/deliveries", params={"limit": 1}))
    assert len(one["items"]) == 1
    assert one["next_cursor"]
    # A cursor of one endpoint's deliveries does not page another endpoint's, nor another list.
    other = await shop.api.get(f"/v1/webhook-endpoints/{ids[1]}/deliveries", params={"cursor": one["next_cursor"]})
    assert error_code(other, 422) == "invalid_cursor"
    events = await shop.api.get("/v1/events", params={"cursor": first["next_cursor"]})
    assert error_code(events, 422) == "invalid_cursor"
    second = ok(
        await shop.api.get(
            f"/v1/webhook-endpoints/{ids[0]}/deliveries", params={"limit": 1, "cursor": one["next_cursor"]}
        )
    )
    assert [d["id"] for d in one["items"] + second["items"]] == sorted(
        (d.id for d in await deliveries(shop) if d.endpoint_id == ids[0]), reverse=True
    )
    assert second["next_cursor"] is None


async def test_endpoint_bodies_are_strict_and_a_refused_one_changes_nothing(
    shop: ShopCtx, receiver: Receiver, private_targets: None
) -> None:
    endpoint = await register(shop, receiver.url, event_types=["member.created"])
    base = f"/v1/webhook-endpoints/{endpoint['id']}"
    for body in (
        {"url": receiver.url, "event_types": "member.created"},  # a string is not a list
        {"url": receiver.url, "secret": "whsec_mine"},  # no such field
        {"url": receiver.url, "description": "x" * 501},
    ):
        r = await shop.api.post("/v1/webhook-endpoints", json=body)
        assert error_code(r, 422) == "invalid_request", body
    for change in ({"active": "false"}, {"active": 0}, {"event_types": ["*"], "url": None, "paused": True}):
        assert error_code(await shop.api.patch(base, json=change), 422) == "invalid_request", change
    for rotation in ({"previous_secret_valid_seconds": "60"}, {"previous_secret_valid_seconds": 60.0}):
        assert error_code(await shop.api.post(f"{base}/rotate-secret", json=rotation), 422) == "invalid_request"
    listed = ok(await shop.api.get("/v1/webhook-endpoints"))["items"]
    assert [(e["id"], e["active"], e["event_types"]) for e in listed] == [(endpoint["id"], True, ["member.created"])]
    assert ok(await shop.api.get(base))["previous_secret_expires_at"] is None  # never rotated


async def test_the_event_log_lists_envelopes_and_an_unknown_type_lists_none(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    [event] = ok(await shop.api.get("/v1/events", params={"type": "member.created"}))["items"]
    assert set(event) == {"id", "type", "created_at", "data"}
    assert event["type"] == "member.created"
    assert event["data"]["member_id"] == member["id"]
    for unknown in ("member.creatd", "*", "x" * 64):
        assert ok(await shop.api.get("/v1/events", params={"type": unknown})) == {"items": [], "next_cursor": None}
