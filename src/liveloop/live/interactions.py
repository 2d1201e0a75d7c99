"""Live-room mechanics: keyword lottery, like sprint, danmaku challenge, quiz, poll, team PK, flash offer.

Each is an ``Interaction`` row: launched by the host (a card appears in the room), joined by viewers
(entries, one per viewer unless a flash offer allows more), and settled exactly once — by the host, when
its window closes, or when its target is reached. Settling is a conditional update from ``open``, so two
processes (or a double click) cannot settle twice; every prize goes through the ledger and is recorded on
the entry it rewards, so no member is rewarded twice for one interaction.

Entries, votes, answers and claims are de-duplicated on the verified viewer key of the token (``claims.key``),
never on anything the room shows. Results (broadcast in the room and public at
``GET /v1/public/interactions/{id}``) name viewers by their alias in the show and the name the room showed;
member ids and reward ids stay with the shop (the ``live.interaction_settled`` event).
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit import errors
from liveloop.kit.errors import Conflict, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import utc_now
from liveloop.live import repository
from liveloop.live.aliases import alias, secret_of
from liveloop.live.notify import to_room
from liveloop.live.presence import SEGMENT_GAP
from liveloop.live.protocol import BusKind, Card
from liveloop.live.repository import InteractionRepository
from liveloop.live.tokens import ViewerClaims
from liveloop.models import (
    EventType,
    Interaction,
    InteractionEntry,
    InteractionKind,
    InteractionStatus,
    Show,
    ShowStatus,
)
from liveloop.referral.lottery import pick_winners, seed_hash
from liveloop.referral.rewards import grant_reward
from liveloop.referral.service import check_spec

DEFAULT_TITLES = {
    InteractionKind.KEYWORD_LOTTERY: "Comment to win",
    InteractionKind.LIKE_SPRINT: "Like sprint",
    InteractionKind.DANMAKU_CHALLENGE: "Comment challenge",
    InteractionKind.QUIZ: "Quiz",
    InteractionKind.POLL: "Poll",
    InteractionKind.TEAM_PK: "Team PK",
    InteractionKind.FLASH_OFFER: "Flash offer",
}
SECRET_CONFIG = {InteractionKind.QUIZ: ("answer",)}  # never shown before the interaction is settled


def public_card(interaction: Interaction, *, end: bool = False) -> Card:
    """The room message for an interaction's card (and, once settled, its result)."""
    hidden = () if interaction.status == InteractionStatus.SETTLED else SECRET_CONFIG.get(interaction.kind, ())
    config = {k: v for k, v in interaction.config.items() if k not in hidden}
    card: Card = {
        "k": interaction.kind,
        "card": interaction.id,
        "title": interaction.title,
        "config": config,
        "progress": interaction.progress,
        "status": interaction.status,
        "closes_at": interaction.closes_at.isoformat() if interaction.closes_at else None,
    }
    if interaction.seed_hash:
        card["seed_hash"] = interaction.seed_hash
    if interaction.status == InteractionStatus.SETTLED:
        card["result"] = interaction.result
    if end:
        card["end"] = True
    return card


async def launch(session: AsyncSession, show: Show, data: Any) -> Interaction:
    if show.status != ShowStatus.LIVE:
        raise Conflict("Mechanics run in a live show; start the show first.", code="show_not_live")
    config = data.model_dump(mode="json", exclude={"kind", "title", "window_seconds"})
    for key in ("prize", "reward", "bonus"):
        if key in config:
            await check_spec(session, show.shop_id, config[key])
    if data.kind == InteractionKind.POLL and data.next_product:
        skus = {p["sku"] for p in show.pinned}
        unknown = [o for o in data.options if o not in skus]
        if unknown:
            raise Unprocessable(
                f"A next-product poll lists pinned SKUs; {unknown} are not pinned.", code="unknown_product"
            )
    now = utc_now()
    interaction = Interaction(
        id=new_id("ia"),
        shop_id=show.shop_id,
        show_id=show.id,
        kind=InteractionKind(data.kind),
        status=InteractionStatus.OPEN,
        title=data.title or DEFAULT_TITLES[data.kind],
        config=config,
        result={},
        progress=0,
        base=await repository.likes(session, show.id) if data.kind == InteractionKind.LIKE_SPRINT else 0,
        closes_at=now + timedelta(seconds=data.window_seconds),
        created_at=now,
    )
    if data.kind == InteractionKind.KEYWORD_LOTTERY:
        interaction.seed = secrets.token_hex(32)
        interaction.seed_hash = seed_hash(interaction.seed)
    await InteractionRepository(session).add(interaction)
    to_room(session, show.id, public_card(interaction))
    await emit(
        session,
        show.shop_id,
        EventType.LIVE_INTERACTION_LAUNCHED,
        {"interaction_id": interaction.id, "show_id": show.id, "kind": interaction.kind},
    )
    return interaction


async def get(session: AsyncSession, shop_id: str, interaction_id: str) -> Interaction:
    return await InteractionRepository(session).get_or_raise(shop_id, interaction_id)


async def get_public(session: AsyncSession, interaction_id: str) -> Interaction:
    """Any shop's interaction (its public card is public), or ``interaction_not_found``."""
    return await InteractionRepository(session).public_or_raise(interaction_id)


async def open_in_show(session: AsyncSession, show_id: str) -> list[Interaction]:
    return await InteractionRepository(session).open_in_show(show_id)


async def poll_tallies(session: AsyncSession, interactions: list[Interaction]) -> dict[str, list[int]]:
    """Votes so far on each open poll among ``interactions``, by option: where a viewer joining mid-poll starts."""
    polls = {i.id: i for i in interactions if i.kind == InteractionKind.POLL}
    if not polls:
        return {}
    tallies = {poll_id: [0] * len(poll.config.get("options", [])) for poll_id, poll in polls.items()}
    for poll_id, choice, n in await InteractionRepository(session).choice_counts(polls):
        votes = tallies[poll_id]
        index = int(choice or 0)
        if 0 <= index < len(votes):
            votes[index] += n
    return tallies


async def list_for_show(session: AsyncSession, show_id: str, page: PageRequest) -> tuple[list[Interaction], str | None]:
    """A show's mechanics, the latest launched first."""
    return await InteractionRepository(session).page_of_show(show_id, page)


# --- viewers taking part ---------------------------------------------------------------------------------


class Refused(Exception):
    """A viewer's input the room refuses: answered on the viewer's socket as ``{"t": "err", "code", "message"}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if errors.recorder is not None:  # refused inputs are answered wherever they are caught
            errors.recorder(code, errors.ROOM)


def _check_open(interaction: Interaction, now: datetime) -> None:
    if interaction.status != InteractionStatus.OPEN or (
        interaction.closes_at is not None and now >= interaction.closes_at
    ):
        raise Refused("closed", "This has closed.")


async def _entry(
    session: AsyncSession, interaction: Interaction, claims: ViewerClaims, choice: str | None, slot: int = 1
) -> bool:
    """Insert the viewer's entry; False when they already have this one."""
    return await repository.insert_entry(
        session,
        {
            "interaction_id": interaction.id,
            "viewer_key": claims.key,
            "slot": slot,
            "member_id": claims.member_id,
            "choice": choice,
            "name": claims.name or None,
            "created_at": utc_now(),
        },
    )


async def enter_lottery(session: AsyncSession, interaction: Interaction, claims: ViewerClaims) -> bool:
    _check_open(interaction, utc_now())
    if not claims.member_id:
        raise Refused("members_only", "Sign in to enter: prizes go to your account.")
    return await _entry(session, interaction, claims, None)


async def choose(session: AsyncSession, interaction: Interaction, claims: ViewerClaims, option: Any) -> bool:
    """A quiz answer or a poll vote: one per viewer, the first one counts."""
    _check_open(interaction, utc_now())
    options = interaction.config.get("options", [])
    if not isinstance(option, int) or isinstance(option, bool) or not 0 <= option < len(options):
        raise Refused("invalid_option", f"o is an option index from 0 to {len(options) - 1}.")
    if not await _entry(session, interaction, claims, str(option)):
        raise Refused("already_answered", "You have answered this one already.")
    return True


async def join_team(session: AsyncSession, interaction: Interaction, claims: ViewerClaims, team: Any) -> str:
    _check_open(interaction, utc_now())
    teams: list[str] = interaction.config["teams"]
    if interaction.config.get("assign") == "auto" or team is None:
        team = teams[int(seed_hash(f"{interaction.id}:{claims.key}")[:8], 16) % len(teams)]  # stable per viewer
    if team not in teams:
        raise Refused("unknown_team", f"team is one of {', '.join(teams)}.")
    if not await _entry(session, interaction, claims, team):
        return await repository.entry_choice(session, interaction.id, claims.key)
    await repository.set_team(session, interaction.show_id, claims.key, team)
    return str(team)


async def claim_flash(session: AsyncSession, interaction: Interaction, claims: ViewerClaims) -> int:
    """Take one of the first N places; returns the place. Never more than N, whatever the race."""
    _check_open(interaction, utc_now())
    if interaction.kind != InteractionKind.FLASH_OFFER:
        raise Refused("not_a_flash_offer", "Only flash offers can be claimed.")
    if not claims.member_id:
        raise Refused("members_only", "Sign in to claim: the bonus goes to your account.")
    per_buyer = int(interaction.config.get("per_buyer", 1))
    mine = await repository.entries_of(session, interaction.id, claims.key)
    if mine >= per_buyer:
        raise Refused("limit_reached", f"You can claim this offer {per_buyer} time(s).")
    try:
        async with session.begin_nested():
            if not await _entry(session, interaction, claims, None, slot=int(mine) + 1):
                raise Refused("limit_reached", f"You can claim this offer {per_buyer} time(s).")
            if not await repository.take_place(session, interaction.id, interaction.config["quantity"]):
                raise Refused("sold_out", "All places are taken.")
    except IntegrityError as exc:
        raise Refused("limit_reached", "You claimed this offer already.") from exc
    place = await repository.progress(session, interaction.id)
    member = await repository.member(session, claims.member_id)
    if member is not None:
        reward = await grant_reward(
            session,
            shop_id=interaction.shop_id,
            campaign=None,
            member_id=member.id,
            member_market=member.market,
            spec=dict(interaction.config["bonus"]),
            role="live_flash",
        )
        await repository.set_entry_reward(session, interaction.id, claims.key, int(mine) + 1, reward.id)
    to_room(
        session,
        interaction.show_id,
        {"k": BusKind.FLASH_CLAIM, "card": interaction.id, "left": _left(interaction, place)},
    )
    return place


def _left(interaction: Interaction, taken: int) -> int:
    return max(int(interaction.config["quantity"]) - taken, 0)


async def add_progress(session: AsyncSession, interaction_id: str, n: int) -> int | None:
    """Count ``n`` more towards a challenge; returns the new total (None when it is no longer open)."""
    return await repository.add_progress(session, interaction_id, n)


# --- settling --------------------------------------------------------------------------------------------


async def present_members(session: AsyncSession, show_id: str, now: datetime) -> list[tuple[str, str]]:
    """(member id, market) of the members watching now: a heartbeat within the last 45 s."""
    return await InteractionRepository(session).present_members(show_id, now - SEGMENT_GAP)


async def _reward_members(
    session: AsyncSession, interaction: Interaction, members: list[tuple[str, str]], spec: dict[str, Any], role: str
) -> list[str]:
    """Give ``spec`` to each member once for this interaction (their entry records the reward)."""
    rewarded = []
    repo = InteractionRepository(session)
    for member_id, market in members:
        key = f"m:{member_id}"
        existing = await repo.first_entry(interaction.id, key)
        if existing is not None and existing.reward_id:
            continue
        reward = await grant_reward(
            session,
            shop_id=interaction.shop_id,
            campaign=None,
            member_id=member_id,
            member_market=market,
            spec=dict(spec),
            role=role,
        )
        if existing is None:
            repo.add_entry(
                InteractionEntry(
                    interaction_id=interaction.id,
                    viewer_key=key,
                    slot=1,
                    member_id=member_id,
                    reward_id=reward.id,
                    created_at=utc_now(),
                )
            )
        else:
            existing.reward_id = reward.id
        rewarded.append(member_id)
    await session.flush()
    return rewarded


async def _entries(session: AsyncSession, interaction_id: str) -> list[InteractionEntry]:
    return await InteractionRepository(session).entries(interaction_id)


async def settle(session: AsyncSession, interaction: Interaction, *, reached: bool | None = None) -> Interaction:
    """Close the interaction and hand out what it promised, once. Settling a settled one changes nothing."""
    if interaction.status == InteractionStatus.SETTLED:
        return interaction
    if not await InteractionRepository(session).begin_settling(interaction.id):
        await session.refresh(interaction)
        return interaction
    await session.refresh(interaction)
    now = utc_now()
    config = interaction.config
    result: dict[str, Any] = {}
    for_shop: dict[str, Any] = {}  # what only the shop's event carries: member ids
    kind = interaction.kind
    if kind == InteractionKind.KEYWORD_LOTTERY:
        # Tickets are the entrants' aliases in the show: anyone can recompute the draw, and each viewer can find
        # its own ticket (its hello carries its alias), but nothing in the result names a member or a device.
        secret = secret_of(session)
        entries = [e for e in await _entries(session, interaction.id) if e.member_id]
        by_alias = {alias(secret, interaction.show_id, e.viewer_key): e for e in entries}
        tickets = sorted(by_alias)
        winners = pick_winners(interaction.seed or "", interaction.id, tickets, int(config["winners"]))
        members = [(by_alias[w].member_id or "", await _market(session, by_alias[w].member_id or "")) for w in winners]
        await _reward_members(session, interaction, members, config["prize"], "live_lottery")
        result = {
            "entries": len(tickets),
            "tickets": tickets,
            "winners": [{"a": w, "name": by_alias[w].name or "Member"} for w in winners],
            "seed": interaction.seed,
            "algorithm": "winner i = sorted_tickets.pop(int(HMAC_SHA256(key=seed, msg=f'{id}:{i}')) mod len)",
        }
        for_shop["winner_member_ids"] = [m for m, _ in members]
    elif kind in (InteractionKind.LIKE_SPRINT, InteractionKind.DANMAKU_CHALLENGE):
        if kind == InteractionKind.LIKE_SPRINT:
            interaction.progress = max(await repository.likes(session, interaction.show_id) - interaction.base, 0)
        met = reached if reached is not None else interaction.progress >= int(config["target"])
        rewarded: list[str] = []
        if met:
            rewarded = await _reward_members(
                session,
                interaction,
                await present_members(session, interaction.show_id, now),
                config["reward"],
                "live_" + ("sprint" if kind == InteractionKind.LIKE_SPRINT else "challenge"),
            )
        result = {
            "reached": met,
            "progress": interaction.progress,
            "target": config["target"],
            "rewarded": len(rewarded),
        }
    elif kind in (InteractionKind.QUIZ, InteractionKind.POLL):
        entries = await _entries(session, interaction.id)
        tally = Counter(int(e.choice or 0) for e in entries)
        result = {"votes": [tally.get(i, 0) for i in range(len(config["options"]))], "total": len(entries)}
        if kind == InteractionKind.QUIZ:
            right = [
                (e.member_id, await _market(session, e.member_id))
                for e in entries
                if e.member_id and int(e.choice or -1) == int(config["answer"])
            ]
            spec = {"type": "points", "amount": int(config["points"]), "label": interaction.title}
            rewarded = await _reward_members(session, interaction, right, spec, "live_quiz")
            result.update({"answer": config["answer"], "correct": len(right), "rewarded": len(rewarded)})
        else:
            # The option with the most votes; none without votes, and every leader when they are level.
            best = max(result["votes"], default=0)
            leaders = [option for option, n in zip(config["options"], result["votes"], strict=True) if n == best]
            result["winner"] = leaders[0] if best > 0 and len(leaders) == 1 else None
            result["tied"] = leaders if best > 0 and len(leaders) > 1 else []
    elif kind == InteractionKind.TEAM_PK:
        scores = await pk_scores(session, interaction)
        best = max(scores.values()) if scores else 0
        leaders = [t for t, s in scores.items() if s == best]
        result = {"scores": scores, "winner": leaders[0] if len(leaders) == 1 and best > 0 else None}
        if result["winner"]:
            team_members = [
                (e.member_id, await _market(session, e.member_id))
                for e in await _entries(session, interaction.id)
                if e.member_id and e.choice == result["winner"]
            ]
            rewarded = await _reward_members(session, interaction, team_members, config["reward"], "live_pk")
            result["rewarded"] = len(rewarded)
    elif kind == InteractionKind.FLASH_OFFER:
        result = {"claimed": interaction.progress, "quantity": config["quantity"]}
    interaction.result = result
    interaction.status = InteractionStatus.SETTLED
    interaction.settled_at = now
    await session.flush()
    to_room(session, interaction.show_id, public_card(interaction, end=True))
    await emit(
        session,
        interaction.shop_id,
        EventType.LIVE_INTERACTION_SETTLED,
        {
            "interaction_id": interaction.id,
            "show_id": interaction.show_id,
            "kind": kind,
            "result": _brief(result),
            **for_shop,
        },
    )
    return interaction


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "tickets"}


async def _market(session: AsyncSession, member_id: str) -> str:
    return await InteractionRepository(session).market_of(member_id)


async def pk_scores(session: AsyncSession, interaction: Interaction) -> dict[str, int]:
    """Team scores: invites (referrals made in the show), interactions (from the room), or watch seconds."""
    teams: list[str] = interaction.config["teams"]
    scores = dict.fromkeys(teams, 0)
    metric = interaction.config["metric"]
    repo = InteractionRepository(session)
    if metric == "interactions":
        for name, value in await repo.team_counters(interaction.show_id, interaction.id):
            team = name.rsplit(":", 1)[1]
            if team in scores:
                scores[team] += int(value)
    elif metric == "invites":
        team_of = await repo.teams_by_member(interaction.id)
        for inviter, count in await repo.invites_in_show(interaction.show_id, interaction.created_at, list(team_of)):
            scores[team_of[inviter]] += int(count)
    else:
        team_of_key = await repo.teams_by_key(interaction.id)
        end = interaction.settled_at or utc_now()
        segments = await repo.watch_segments(interaction.show_id, list(team_of_key), interaction.created_at)
        for key, start, last in segments:
            seconds = (min(last, end) - max(start, interaction.created_at)).total_seconds()
            scores[team_of_key[key]] += max(int(seconds), 0)
    return scores


async def settle_due(session: AsyncSession, now: datetime) -> int:
    """Settle interactions whose window has closed, and sprints and challenges that reached their target."""
    repo = InteractionRepository(session)
    due = await repo.due(now, 50)
    for sprint in await repo.open_of_kind(InteractionKind.LIKE_SPRINT, 50):
        if sprint not in due and await repository.likes(session, sprint.show_id) - sprint.base >= int(
            sprint.config["target"]
        ):
            due.append(sprint)
    for interaction in due:
        await settle(session, interaction)
    return len(due)


_SCOREBOARD_EVERY = 3.0
_last_scoreboard: dict[str, float] = {}


async def publish_scoreboards(session: AsyncSession) -> int:
    """Every few seconds, each running team PK's scores go to its room (a live scoreboard)."""
    now = time.monotonic()
    sent = 0
    running = await InteractionRepository(session).open_of_kind(InteractionKind.TEAM_PK)
    for settled in _last_scoreboard.keys() - {pk.id for pk in running}:
        del _last_scoreboard[settled]  # a settled PK's clock goes with it
    for pk in running:
        if now - _last_scoreboard.get(pk.id, 0.0) < _SCOREBOARD_EVERY:
            continue
        _last_scoreboard[pk.id] = now
        to_room(session, pk.show_id, {"k": BusKind.PK_SCORES, "card": pk.id, "scores": await pk_scores(session, pk)})
        sent += 1
    return sent
