"""Draws: the published winner rule, computed in O(n log n), and the public verifier's bounds."""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from typing import Any

import pytest

from liveloop.kit.ids import new_id
from liveloop.referral.lottery import pick_winners, seed_hash
from liveloop.referral.schemas import DRAW_MAX_PRIZES, DRAW_MAX_TICKETS
from tests.conftest import ShopCtx
from tests.factories import create_campaign, create_member, invite, ok, send_order


def published_pick_winners(seed: str, draw_id: str, ticket_ids: list[str], prize_count: int) -> list[str]:
    """The rule as it was first published (and as every past draw was run), word for word."""
    pool = sorted(ticket_ids)
    winners = []
    for i in range(min(prize_count, len(pool))):
        digest = hmac.new(seed.encode(), f"{draw_id}:{i}".encode(), hashlib.sha256).digest()
        winners.append(pool.pop(int.from_bytes(digest, "big") % len(pool)))
    return winners


def test_the_winners_are_exactly_those_of_the_published_rule() -> None:
    rng = random.Random(20261201)
    cases = 0
    for _ in range(2_000):
        n = rng.choice([0, 1, 2, 3, rng.randint(4, 64), rng.randint(65, 700)])
        # Duplicates and ids of uneven length, in any order; prize counts from none to more than the tickets.
        tickets = [rng.choice(["tkt_", "t", ""]) + str(rng.randint(0, n * 2 + 1)) for _ in range(n)]
        prizes = rng.randint(1, n + 3)
        seed, draw_id = secrets.token_hex(rng.choice([1, 8, 32])), new_id("drw")
        assert pick_winners(seed, draw_id, tickets, prizes) == published_pick_winners(seed, draw_id, tickets, prizes)
        cases += 1
    big = [new_id("tkt") for _ in range(20_000)]
    for prizes in (1, 999, 20_000):
        assert pick_winners("s", "drw_big", big, prizes) == published_pick_winners("s", "drw_big", big, prizes)
    assert cases == 2_000


def _proof(tickets: list[str], prizes: int) -> dict[str, object]:
    seed = secrets.token_hex(32)
    return {
        "draw_id": "drw_public",
        "seed": seed,
        "seed_hash": seed_hash(seed),
        "ticket_ids": tickets,
        "prize_count": prizes,
        "winners": pick_winners(seed, "drw_public", tickets, prizes),
    }


async def test_verify_takes_the_documented_maximum(shop: ShopCtx) -> None:
    # Short ids keep the body small; the bound is on the number of tickets.
    tickets = [format(i, "x") for i in range(DRAW_MAX_TICKETS)]
    check = ok(await shop.api.post("/v1/public/draws/verify", json=_proof(tickets, DRAW_MAX_PRIZES)))
    assert check["seed_matches_hash"]
    assert check["winners_match"]
    assert len(check["recomputed_winners"]) == DRAW_MAX_PRIZES


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ticket_ids", [format(i, "x") for i in range(DRAW_MAX_TICKETS + 1)]),
        ("ticket_ids", ["x" * 65]),
        ("prize_count", DRAW_MAX_PRIZES + 1),
        ("prize_count", 0),
        ("winners", ["a"] * (DRAW_MAX_PRIZES + 1)),
        ("seed", "s" * 129),
        ("seed_hash", "ab" * 31),
        ("seed_hash", "zz" * 32),
        ("draw_id", "d" * 65),
    ],
    ids=[
        "too-many-tickets",
        "ticket-id-too-long",
        "too-many-prizes",
        "no-prize",
        "too-many-winners",
        "seed-too-long",
        "short-hash",
        "hash-not-hex",
        "draw-id-too-long",
    ],
)
async def test_verify_refuses_what_exceeds_its_bounds(shop: ShopCtx, field: str, value: object) -> None:
    body = {**_proof(["a", "b", "c"], 1), field: value}
    r = await shop.api.post("/v1/public/draws/verify", json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")
    assert field in {p["field"].split(".")[0] for p in r.json()["error"]["details"]["problems"]}


# --- tickets follow their referral ------------------------------------------------------------------------


async def _tickets(shop: ShopCtx, member: dict[str, Any]) -> tuple[list[str], int]:
    """(the statuses of the member's tickets by order, their ticket balance)."""
    tickets = ok(await shop.api.get(f"/v1/members/{member['id']}/tickets"))["items"]
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))
    balance = next((b["available"] for b in body["balances"] if b["asset"] == "ticket"), 0)
    return [t["status"] for t in sorted(tickets, key=lambda t: t["order_id"])], balance


async def _order(shop: ShopCtx, kind: str, member: dict[str, Any], order_id: str, **kw: Any) -> dict[str, Any]:
    total = kw.pop("total", 5000)
    return ok(await send_order(shop.api, shop.slug, shop.secret, kind, order_id, member["external_id"], total, **kw))


async def test_a_partial_refund_that_reverses_the_referral_voids_its_tickets(shop: ShopCtx) -> None:
    await create_campaign(shop.api, lottery_enabled=True, min_order_minor=3000)
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    await _order(shop, "paid", invitee, "a-1")
    await _order(shop, "paid", invitee, "a-2")
    assert await _tickets(shop, inviter) == (["active", "active"], 2)
    # 5000 - 1500 still reaches the 3000 minimum: the referral stands, and so do the tickets.
    await _order(shop, "partially_refunded", invitee, "a-1", refunded_minor=1500)
    assert await _tickets(shop, inviter) == (["active", "active"], 2)
    # 5000 - 2500 does not: the referral is reversed, and every ticket it earned goes with it.
    await _order(shop, "partially_refunded", invitee, "a-1", refunded_minor=2500)
    referral = ok(await shop.api.get("/v1/referrals", params={"member_id": invitee["id"]}))["items"][0]
    assert referral["status"] == "reversed"
    assert await _tickets(shop, inviter) == (["void", "void"], 0)
    await _order(shop, "paid", invitee, "a-3")  # a reversed referral earns nothing more
    assert await _tickets(shop, inviter) == (["void", "void"], 0)


async def test_a_held_referral_approved_after_payment_earns_its_tickets_once(shop: ShopCtx) -> None:
    await create_campaign(shop.api, lottery_enabled=True)
    inviter = await create_member(shop.api, email="sam.k@example.com")
    # Held at sign-up (an address much like the inviter's), then two paid orders while under review.
    held = await create_member(shop.api, email="sam.k2@example.com", referral={"code": inviter["referral_code"]})
    assert held["referral"]["status"] == "held"
    await _order(shop, "paid", held, "h-1")
    await _order(shop, "paid", held, "h-2")
    assert await _tickets(shop, inviter) == ([], 0)
    review = ok(await shop.api.get("/v1/reviews"))["items"][0]
    ok(await shop.api.post(f"/v1/reviews/{review['id']}/approve", json={}))
    assert await _tickets(shop, inviter) == (["active", "active"], 2)
    ok(await shop.api.post(f"/v1/reviews/{review['id']}/approve", json={}))
    assert await _tickets(shop, inviter) == (["active", "active"], 2)


async def test_a_referral_held_for_a_shared_card_earns_its_ticket_on_approval(shop: ShopCtx) -> None:
    await create_campaign(shop.api, lottery_enabled=True)
    inviter = await create_member(shop.api)
    await _order(shop, "paid", inviter, "own", fingerprint="card-4242")
    invitee = await invite(shop.api, shop.slug, inviter)
    await _order(shop, "paid", invitee, "shared", fingerprint="card-4242")
    assert await _tickets(shop, inviter) == ([], 0)
    review = ok(await shop.api.get("/v1/reviews"))["items"][0]
    ok(await shop.api.post(f"/v1/reviews/{review['id']}/approve", json={"note": "family card"}))
    assert await _tickets(shop, inviter) == (["active"], 1)
    await _order(shop, "paid", invitee, "later")
    assert await _tickets(shop, inviter) == (["active", "active"], 2)
