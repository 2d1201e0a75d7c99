"""Lottery relay: each paid order of an invitee earns the inviter one draw ticket; draws are provably fair.

Commit-reveal: when a draw is created, the SHA-256 of a random server seed is published. When it runs, the
active tickets are frozen in id order, winners are picked with :func:`pick_winners`, and the seed is
revealed. Anyone can check that the seed matches the published hash and recompute the winners.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from datetime import datetime
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit.errors import Conflict
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import utc_now
from liveloop.ledger import service as ledger
from liveloop.members import service as members
from liveloop.models import Campaign, Draw, DrawTicket, EventType, Order, Referral
from liveloop.models.referral import DrawStatus, DrawWinnerData, RewardRole, RewardSpecData, TicketStatus
from liveloop.referral import repository
from liveloop.referral.fraud import ReasonCode
from liveloop.referral.repository import CampaignRepository, DrawRepository, TicketRepository
from liveloop.referral.rewards import grant_reward

ALGORITHM = "winner i = sorted_tickets.pop(int(HMAC_SHA256(key=seed, msg=f'{draw_id}:{i}')) mod len)"


class PublicWinnerData(TypedDict):
    ticket_id: str
    name: str


class DrawView(TypedDict):
    """A draw as the shop's operators see it (``winners``: member and reward ids) or, with ``PublicWinnerData``
    winners, as anyone does."""

    id: str
    campaign_id: str
    prize_count: int
    prize: RewardSpecData
    seed_hash: str
    seed: str | None
    status: DrawStatus
    ticket_ids: list[str]
    winners: list[DrawWinnerData] | list[PublicWinnerData]
    drawn_at: datetime | None
    created_at: datetime
    algorithm: str


def seed_hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def pick_winners(seed: str, draw_id: str, ticket_ids: list[str], prize_count: int) -> list[str]:
    """Winner i is the ticket at index HMAC-SHA256(seed, "{draw_id}:{i}") mod (tickets left), without replacement.

    The ticket list is sorted first, so the order it is given in does not matter. "Tickets left" are the
    sorted tickets minus the winners so far, in their order: the published rule is ``pool.pop(index)``.
    The index is looked up in a Fenwick tree over the sorted tickets, so a draw costs O(n log n) (the sort)
    instead of O(n·k) for k winners, with exactly the same winners.
    """
    pool = sorted(ticket_ids)
    left = _Remaining(len(pool))
    key = seed.encode()
    winners = []
    for i in range(min(prize_count, len(pool))):
        digest = hmac.new(key, f"{draw_id}:{i}".encode(), hashlib.sha256).digest()
        winners.append(pool[left.take(int.from_bytes(digest, "big") % (len(pool) - i))])
    return winners


class _Remaining:
    """Which of the positions 0…n-1 are still in the pool: a Fenwick (binary indexed) tree of 0/1 counts."""

    def __init__(self, n: int) -> None:
        self.n = n
        # 1-based: node i counts the positions in (i - lowbit(i), i], all of them present at first.
        self.tree = [0] + [i & -i for i in range(1, n + 1)]
        self.top = 1 << (n.bit_length() - 1) if n else 0

    def take(self, rank: int) -> int:
        """Remove the position that has ``rank`` positions left before it, and return it. O(log n).

        Binary lifting from the top: a node the search does not step over covers the position found, and
        those are exactly the nodes that count it, so they are decremented on the way down.
        """
        tree, n, pos, step = self.tree, self.n, 0, self.top
        while step:
            node = pos + step
            if node <= n:
                if tree[node] <= rank:
                    pos = node
                    rank -= tree[node]
                else:
                    tree[node] -= 1
            step >>= 1
        return pos


async def award_ticket(
    session: AsyncSession, campaign: Campaign, referral: Referral, order: Order
) -> DrawTicket | None:
    tickets = TicketRepository(session)
    existing = await tickets.of_order(campaign.id, order.id)
    if existing is not None:
        return existing
    ticket = DrawTicket(
        id=new_id("tkt"),
        shop_id=campaign.shop_id,
        campaign_id=campaign.id,
        member_id=referral.inviter_id,
        order_id=order.id,
        referral_id=referral.id,
        created_at=utc_now(),
    )
    txn = await ledger.grant(
        session,
        campaign.shop_id,
        referral.inviter_id,
        ledger.TICKETS,
        1,
        memo="lottery relay ticket",
        idempotency_key=f"ticket:{ticket.id}",
        ref=("ticket", ticket.id),
    )
    ticket.ledger_transaction_id = txn.id
    return await tickets.add(ticket)


async def void_ticket(session: AsyncSession, order: Order) -> None:
    """A fully refunded order's ticket is void (while it has not been drawn)."""
    await _void(session, await TicketRepository(session).active_of_order(order.id), ReasonCode.ORDER_REFUNDED)


async def void_referral_tickets(session: AsyncSession, referral: Referral, reason: str) -> None:
    """Tickets follow their referral: when it is reversed or rejected, every ticket it earned that has not
    been drawn yet is void, its ledger grant reversed."""
    await _void(session, await TicketRepository(session).active_of_referral(referral.id), reason)


async def _void(session: AsyncSession, tickets: list[DrawTicket], reason: str) -> None:
    for ticket in tickets:
        ticket.status = TicketStatus.VOID
        if ticket.ledger_transaction_id:
            await ledger.reverse(
                session, ticket.shop_id, ticket.ledger_transaction_id, reason=reason, allow_partial=True
            )
    await session.flush()


async def award_missed_tickets(session: AsyncSession, campaign: Campaign, referral: Referral) -> list[DrawTicket]:
    """The tickets a referral earns once it is approved: one per order the invitee has paid since it was made
    (and not refunded in full), which its held status kept from earning one. Each order earns one, once."""
    orders = await repository.orders_paid_since(session, referral.shop_id, referral.invitee_id, referral.created_at)
    tickets = []
    for order in orders:
        ticket = await award_ticket(session, campaign, referral, order)
        if ticket is not None:
            tickets.append(ticket)
    return tickets


async def create_draw(session: AsyncSession, campaign: Campaign, *, prize_count: int, prize: RewardSpecData) -> Draw:
    seed = secrets.token_hex(32)
    draw = Draw(
        id=new_id("drw"),
        shop_id=campaign.shop_id,
        campaign_id=campaign.id,
        prize_count=prize_count,
        prize=prize,
        seed=seed,
        seed_hash=seed_hash(seed),
        created_at=utc_now(),
    )
    await DrawRepository(session).add(draw)
    await emit(
        session,
        campaign.shop_id,
        EventType.DRAW_COMMITTED,
        {"draw_id": draw.id, "campaign_id": campaign.id, "seed_hash": draw.seed_hash},
    )
    return draw


async def get_draw(session: AsyncSession, draw_id: str, shop_id: str | None = None) -> Draw:
    """This shop's draw, or (without ``shop_id``: the public page) any shop's; else 404 ``draw_not_found``."""
    draws = DrawRepository(session)
    return await (draws.get_or_raise(shop_id, draw_id) if shop_id is not None else draws.by_id_or_raise(draw_id))


async def run_draw(session: AsyncSession, draw: Draw) -> Draw:
    if draw.status == DrawStatus.DRAWN:
        return draw
    if not await DrawRepository(session).claim(draw.id):
        raise Conflict("This draw is being run by another request.", code="draw_in_progress")
    tickets = await TicketRepository(session).active_of_campaign(draw.campaign_id)
    ticket_ids = [t.id for t in tickets]
    winners = pick_winners(draw.seed, draw.id, ticket_ids, draw.prize_count)
    by_id = {t.id: t for t in tickets}
    campaign = await CampaignRepository(session).by_id(draw.campaign_id)
    assert campaign is not None
    # Every ticket in the draw is used up, one ledger debit per member.
    per_member = Counter(t.member_id for t in tickets)
    for member_id, count in sorted(per_member.items()):
        await ledger.spend(
            session,
            draw.shop_id,
            member_id,
            ledger.TICKETS,
            count,
            memo=f"draw {draw.id}",
            idempotency_key=f"draw:{draw.id}:{member_id}",
            ref=("draw", draw.id),
        )
    for t in tickets:
        t.status = TicketStatus.DRAWN
        t.draw_id = draw.id
    winner_rows: list[DrawWinnerData] = []
    for ticket_id in winners:
        member = await repository.member(session, by_id[ticket_id].member_id)
        assert member is not None
        reward = await grant_reward(
            session,
            shop_id=draw.shop_id,
            campaign=campaign,
            member_id=member.id,
            member_market=member.market,
            spec=RewardSpecData(**draw.prize),
            role=RewardRole.PRIZE,
            check_budget=False,
        )
        winner_rows.append({"ticket_id": ticket_id, "member_id": member.id, "reward_id": reward.id})
    draw.ticket_ids = ticket_ids
    draw.winners = winner_rows
    draw.status = DrawStatus.DRAWN
    draw.drawn_at = utc_now()
    await session.flush()
    await emit(
        session, draw.shop_id, EventType.DRAW_COMPLETED, {"draw_id": draw.id, "seed": draw.seed, "winners": winner_rows}
    )
    return draw


async def member_tickets(
    session: AsyncSession, member_id: str, page: PageRequest
) -> tuple[list[DrawTicket], str | None]:
    """A member's draw tickets, in the order they were earned."""
    return await TicketRepository(session).page_of_member(member_id, page)


def draw_view(draw: Draw) -> DrawView:
    """What the shop's operators see: the seed only once the draw has run; winners with member and reward ids."""
    return {
        "id": draw.id,
        "campaign_id": draw.campaign_id,
        "prize_count": draw.prize_count,
        "prize": draw.prize,
        "seed_hash": draw.seed_hash,
        "seed": draw.seed if draw.status == DrawStatus.DRAWN else None,
        "status": draw.status,
        "ticket_ids": draw.ticket_ids,
        "winners": draw.winners,
        "drawn_at": draw.drawn_at,
        "created_at": draw.created_at,
        "algorithm": ALGORITHM,
    }


async def public_winners(session: AsyncSession, draw: Draw) -> list[PublicWinnerData]:
    """The winners as anyone may see them: the winning ticket and the name the member shows publicly."""
    names = await members.public_names(session, draw.shop_id, [w["member_id"] for w in draw.winners])
    return [{"ticket_id": w["ticket_id"], "name": names[w["member_id"]]} for w in draw.winners]


async def public_view(session: AsyncSession, draw: Draw) -> DrawView:
    """What anyone may see: the seed only once the draw has run, the tickets to check it with, and the winners
    by ticket and public name (no member id, reward id or name the member did not choose to show)."""
    view = draw_view(draw)
    view["winners"] = await public_winners(session, draw)
    return view
