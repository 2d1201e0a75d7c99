"""Seed a demo shop and play a day of referral traffic through the real API."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from liveloop.client import client_for, order_event, running_app, signed_order_headers
from liveloop.config import Settings
from liveloop.kit.db import transaction
from liveloop.kit.time import utc_now
from liveloop.ledger.verify import verify
from liveloop.members import devices
from liveloop.models import Referral
from liveloop.referral.repository import ReferralRepository, RewardRepository
from liveloop.shops.service import create_api_key, create_shop, find_shop_by_slug

SLUG = "demo"
CHANNELS = ["whatsapp", "whatsapp", "facebook", "instagram", "tiktok", "telegram", "line", "x", "email", "copy", "qr"]
MARKETS = {
    "sea": ("id", "Asia/Jakarta"),
    "na": ("en", "America/Chicago"),
    "eu": ("de", "Europe/Berlin"),
    "me": ("ar", "Asia/Riyadh"),
}


async def run_demo(
    database_url: str, console: Console, *, base_url: str, inviters: int = 24, seed: int = 7
) -> dict[str, Any]:
    rng = random.Random(seed)
    settings = Settings(database_url=database_url, public_base_url=base_url, run_worker=False)
    async with running_app(settings) as app:
        async with transaction(app.state.sessions) as session:
            shop = await find_shop_by_slug(session, SLUG)
            fresh = shop is None
            if shop is None:
                shop = await create_shop(
                    session,
                    slug=SLUG,
                    name="Lumi Beauty",
                    landing_url="https://shop.example/",
                    reporting_timezone="Asia/Singapore",
                    default_market="sea",
                )
            _, key = await create_api_key(session, shop, name="demo admin", scopes=["admin"])
            secret = shop.webhook_secret
        async with client_for(app, key) as api:
            if fresh:
                await _simulate(api, rng, secret, console, inviters, device_key=app.state.settings.secret_key)
            else:
                console.print("[yellow]The demo shop exists already; showing its numbers.[/]")
            summary = await _summary(app, shop.id)
            summary["show_id"] = await _demo_show(api)
    _print(console, summary, key, secret, base_url)
    console.print(f"Live room (a simulated audience is watching): [bold]{base_url}/live/{summary['show_id']}[/]")
    console.print(f"Same room in Thai: {base_url}/live/{summary['show_id']}?lang=th — in Arabic: ?lang=ar")
    console.print(f"Host console (sign in with the admin key): {base_url}/console/{summary['show_id']}")
    return summary


async def _demo_show(api: Any) -> str:
    """The demo's live show: the one already running, or a new one that goes live now."""
    live = await _ok(await api.get("/v1/shows", params={"status": "live", "limit": 1}))
    for show in live["items"]:
        return str(show["id"])
    show = await _ok(
        await api.post(
            "/v1/shows",
            json={
                "title": "Glow week: live try-on",
                "host_name": "Mai",
                "market": "sea",
                "language": "en",
                "host_timezone": "Asia/Bangkok",
                "scheduled_at": utc_now().isoformat(),
                "planned_minutes": 90,
                "pinned": [
                    {"sku": "LUMI-SERUM", "title": "Vitamin C serum 30 ml", "price_minor": 2900, "currency": "USD"},
                    {"sku": "LUMI-TINT", "title": "Lip tint, Rose", "price_minor": 1500, "currency": "USD"},
                ],
            },
        )
    )
    await _ok(await api.post(f"/v1/shows/{show['id']}/start"))
    return str(show["id"])


async def _ok(response: Any) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text}"
        )
    return response.json() if response.headers.get("content-type", "").startswith("application/json") else None


async def _simulate(
    api: Any, rng: random.Random, secret: str, console: Console, inviters: int, *, device_key: str
) -> None:
    welcome = await _ok(
        await api.post(
            "/v1/coupon-batches",
            json={
                "name": "Welcome 10%",
                "kind": "percent",
                "percent_bp": 1000,
                "currency": "USD",
                "count": 0,
                "pattern": "WELCOME-####-####",
                "min_spend_minor": 1000,
            },
        )
    )
    campaign = await _ok(
        await api.post(
            "/v1/campaigns",
            json={
                "name": "Always-on friends program",
                "status": "active",
                "conversion_event": "first_paid_order",
                "attribution_window_days": 7,
                "use_market_presets": True,
                "invitee_reward": {"type": "coupon", "batch_id": welcome["id"], "label": "10% off"},
                "milestones": [
                    {"threshold": 1, "reward": {"type": "points", "amount": 200, "label": "Basic gift"}},
                    {
                        "threshold": 3,
                        "reward": {
                            "type": "gift",
                            "sku": "MINI-SET",
                            "label": "Advanced gift: mini set",
                            "value_minor": 800,
                            "currency": "USD",
                        },
                    },
                    {"threshold": 5, "reward": {"type": "perk", "label": "Exclusive: early access to every launch"}},
                ],
                "daily_cap_per_inviter": 8,
                "budgets": {"USD": 500_000, "points": 2_000_000},
                "lottery_enabled": True,
                "min_order_minor": 1500,
            },
        )
    )
    members = []
    # Each seeded member's browser, as the invite link or the live room would have issued it.
    seed_devices = [devices.mint(device_key) for _ in range(inviters)]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Seeding members", total=inviters)
        for i in range(inviters):
            market = rng.choice(list(MARKETS))
            locale, tz = MARKETS[market]
            members.append(
                await _ok(
                    await api.post(
                        "/v1/members",
                        json={
                            "external_id": f"seed-{i}",
                            "email": f"member{i}@example.com",
                            "name": f"Member {i}",
                            "market": market,
                            "locale": locale,
                            "timezone": tz,
                            "device_id": seed_devices[i],
                            "existing_customer": True,
                        },
                    )
                )
            )
            progress.advance(task)
    vip = await _ok(
        await api.post(
            "/v1/groups",
            json={
                "campaign_id": campaign["id"],
                "name": "Glow Insiders",
                "owner_id": members[0]["id"],
                "weekly_target": 5,
                "extra_offer": {"type": "points", "amount": 300, "label": "VIP welcome points"},
            },
        )
    )

    n = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Shares, clicks, sign-ups and orders", total=inviters * 3)
        for inviter in members:
            for _ in range(rng.randint(1, 5)):
                n += 1
                channel = rng.choice(CHANNELS)
                code = vip["code"] if n % 9 == 0 else inviter["referral_code"]
                api.cookies.clear()  # every friend is a different browser
                click = await api.get(f"/r/demo/{code}", params={"ch": channel, "show": "show-launch"})
                device = click.cookies.get("ll_did")
                if rng.random() < 0.35:
                    continue  # looked, did not sign up
                location = click.headers["location"]
                click_id = location.split("ll_click=")[1].split("&")[0]
                market = rng.choice(list(MARKETS))
                invitee = await _ok(
                    await api.post(
                        "/v1/members",
                        json={
                            "external_id": f"c-{n}",
                            "email": f"friend{n}@example.org",
                            "market": market,
                            "locale": MARKETS[market][0],
                            "device_id": device,
                            "ip": f"198.51.100.{n % 200}",
                            "referral": {"click_id": click_id},
                        },
                    )
                )
                if rng.random() < 0.7:
                    body = order_event(
                        f"evt-{n}-paid", "paid", f"o-{n}", f"c-{n}", rng.randint(1500, 9000), fingerprint=f"card-{n}"
                    )
                    await _ok(
                        await api.post(
                            "/v1/webhooks/orders", content=body, headers=signed_order_headers("demo", secret, body)
                        )
                    )
                    if rng.random() < 0.12:
                        refund = order_event(f"evt-{n}-refund", "refunded", f"o-{n}", f"c-{n}", 0)
                        await _ok(
                            await api.post(
                                "/v1/webhooks/orders",
                                content=refund,
                                headers=signed_order_headers("demo", secret, refund),
                            )
                        )
                _ = invitee
            progress.advance(task, 3)

    # A few abuse attempts, each caught with its reason code.
    attempts = [  # (who, whose invite code)
        ({"external_id": "fraud-1", "email": "someone@mailinator.com", "device_id": devices.mint(device_key)}, 1),
        ({"external_id": "fraud-2", "email": "member1+promo@example.com", "device_id": devices.mint(device_key)}, 1),
        ({"external_id": "fraud-3", "email": "x3@example.net", "device_id": seed_devices[2]}, 2),  # the inviter's own
    ]
    for attempt, inviter_index in attempts:
        code = members[inviter_index]["referral_code"]
        await _ok(await api.post("/v1/members", json={**attempt, "referral": {"code": code, "channel": "copy"}}))
    draw = await _ok(
        await api.post(
            f"/v1/campaigns/{campaign['id']}/draws",
            json={
                "prize_count": 3,
                "prize": {"type": "credit", "amount": 1000, "currency": "USD", "label": "Lottery prize"},
            },
        )
    )
    await _ok(await api.post(f"/v1/draws/{draw['id']}/run"))


async def _summary(app: Any, shop_id: str) -> dict[str, Any]:
    async with transaction(app.state.sessions) as session:
        referrals = ReferralRepository(session)
        by_status = Counter(await referrals.totals(shop_id, Referral.status))
        by_channel = Counter(await referrals.totals(shop_id, Referral.channel))
        reasons = Counter(await referrals.reason_counts(shop_id))
        rewards = Counter(await RewardRepository(session).totals_by_status(shop_id))
        report = await verify(session)
    return {
        "referrals": dict(by_status),
        "channels": dict(by_channel),
        "reasons": dict(reasons),
        "rewards": dict(rewards),
        "ledger_ok": report.ok,
        "ledger_entries": report.entries,
    }


def _print(console: Console, summary: dict[str, Any], key: str, secret: str, base_url: str) -> None:
    table = Table(title="liveloop demo shop: referral program so far", show_lines=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for status, count in sorted(summary["referrals"].items()):
        table.add_row(f"referrals {status}", str(count))
    for channel, count in sorted(summary["channels"].items(), key=lambda kv: -kv[1]):
        table.add_row(f"  via {channel}", str(count))
    for status, count in sorted(summary["rewards"].items()):
        table.add_row(f"rewards {status}", str(count))
    for reason, count in sorted(summary["reasons"].items()):
        table.add_row(f"guard: {reason}", str(count))
    table.add_row("ledger entries", str(summary["ledger_entries"]))
    table.add_row("ledger verified", "[green]yes[/]" if summary["ledger_ok"] else "[red]NO[/]")
    console.print(table)
    console.print(f"Admin API key (shown once): [bold]{key}[/]")
    console.print(f"Order webhook secret: {secret}")
    console.print(f"Try: curl -H 'Authorization: Bearer {key}' {base_url}/v1/campaigns")
