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
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit import errors
from liveloop.kit.errors import Conflict, NotFound, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.live.aliases import alias, secret_of
from liveloop.live.notify import to_room
from liveloop.live.presence import SEGMENT_GAP
from liveloop.live.tokens import ViewerClaims
from liveloop.models import (
    EventType,
    Interaction,
    InteractionEntry,
    Member,
    Referral,
    Show,
    ShowCounter,
    ShowViewer,
    WatchSegment,
)
from liveloop.referral.lottery import pick_winners, seed_hash
from liveloop.referral.rewards import grant_reward
from liveloop.referral.service import check_spec

DEFAULT_TITLES = {
    "keyword_lottery": "Comment to win",
    "like_sprint": "Like sprint",
    "danmaku_challenge": "Comment challenge",
    "quiz": "Quiz",
    "poll": "Poll",
    "team_pk": "Team PK",
    "flash_offer": "Flash offer",
}
SECRET_CONFIG = {"quiz": ("answer",)}  # never shown before the interaction is settled


def public_card(interaction: Interaction, *, end: bool = False) -> dict[str, Any]:
    """The room message for an interaction's card (and, once settled, its result)."""
    hidden = () if interaction.status == "settled" else SECRET_CONFIG.get(interaction.kind, ())
    config = {k: v for k, v in interaction.config.items() if k not in hidden}
    card: dict[str, Any] = {
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
    if interaction.status == "settled":
        card["result"] = interaction.result
    if end:
        card["end"] = True
    return card


async def _likes(session: AsyncSession, show_id: str) -> int:
    value = await session.execute(
        select(ShowCounter.value).where(ShowCounter.show_id == show_id, ShowCounter.name == "likes")
    )
    return int(value.scalar_one_or_none() or 0)


async def launch(session: AsyncSession, show: Show, data: Any) -> Interaction:
    if show.status != "live":
        raise Conflict("Mechanics run in a live show; start the show first.", code="show_not_live")
    config = data.model_dump(mode="json", exclude={"kind", "title", "window_seconds"})
    for key in ("prize", "reward", "bonus"):
        if key in config:
            await check_spec(session, show.shop_id, config[key])
    if data.kind == "poll" and data.next_product:
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
        kind=data.kind,
        status="open",
        title=data.title or DEFAULT_TITLES[data.kind],
        config=config,
        result={},
        progress=0,
        base=await _likes(session, show.id) if data.kind == "like_sprint" else 0,
        closes_at=now + timedelta(seconds=data.window_seconds),
        created_at=now,
    )
    if data.kind == "keyword_lottery":
        interaction.seed = secrets.token_hex(32)
        interaction.seed_hash = seed_hash(interaction.seed)
    session.add(interaction)
    await session.flush()
    to_room(session, show.id, public_card(interaction))
    await emit(
        session,
        show.shop_id,
        EventType.LIVE_INTERACTION_LAUNCHED,
        {"interaction_id": interaction.id, "show_id": show.id, "kind": interaction.kind},
    )
    return interaction


async def get(session: AsyncSession, shop_id: str, interaction_id: str) -> Interaction:
    found = (
        await session.execute(
            select(Interaction).where(Interaction.shop_id == shop_id, Interaction.id == interaction_id)
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound("No such interaction in this shop.", code="interaction_not_found")
    return found


async def open_in_show(session: AsyncSession, show_id: str) -> list[Interaction]:
    return list(
        (
            await session.execute(
                select(Interaction)
                .where(Interaction.show_id == show_id, Interaction.status == "open")
                .order_by(Interaction.created_at)
            )
        ).scalars()
    )


async def poll_tallies(session: AsyncSession, interactions: list[Interaction]) -> dict[str, list[int]]:
    """Votes so far on each open poll among ``interactions``, by option: where a viewer joining mid-poll starts."""
    polls = {i.id: i for i in interactions if i.kind == "poll"}
    if not polls:
        return {}
    tallies = {poll_id: [0] * len(poll.config.get("options", [])) for poll_id, poll in polls.items()}
    rows = await session.execute(
        select(InteractionEntry.interaction_id, InteractionEntry.choice, func.count())
        .where(InteractionEntry.interaction_id.in_(polls))
        .group_by(InteractionEntry.interaction_id, InteractionEntry.choice)
    )
    for poll_id, choice, n in rows:
        votes = tallies[poll_id]
        index = int(choice or 0)
        if 0 <= index < len(votes):
            votes[index] += n
    return tallies


async def list_for_show(session: AsyncSession, show_id: str, page: PageRequest) -> tuple[list[Interaction], str | None]:
    """A show's mechanics, the latest launched first."""
    query = select(Interaction).where(Interaction.show_id == show_id)
    return await paginate(session, query, page, [Interaction.created_at, Interaction.id], descending=True)


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
    if interaction.status != "open" or (interaction.closes_at is not None and now >= interaction.closes_at):
        raise Refused("closed", "This has closed.")


async def _entry(
    session: AsyncSession, interaction: Interaction, claims: ViewerClaims, choice: str | None, slot: int = 1
) -> bool:
    """Insert the viewer's entry; False when they already have this one."""
    result = await session.execute(
        insert_ignoring_conflicts(
            session,
            table(InteractionEntry),
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
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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
        existing = await session.execute(
            select(InteractionEntry.choice).where(
                InteractionEntry.interaction_id == interaction.id, InteractionEntry.viewer_key == claims.key
            )
        )
        return str(existing.scalar_one())
    await session.execute(
        table(ShowViewer)
        .update()
        .where(ShowViewer.show_id == interaction.show_id, ShowViewer.viewer_key == claims.key)
        .values(team=team)
    )
    return str(team)


_TAKE = (
    table(Interaction)
    .update()
    .where(
        table(Interaction).c.id == bindparam("b_id"),
        table(Interaction).c.status == "open",
        table(Interaction).c.progress < bindparam("b_quantity"),
    )
    .values(progress=table(Interaction).c.progress + 1)
)


async def claim_flash(session: AsyncSession, interaction: Interaction, claims: ViewerClaims) -> int:
    """Take one of the first N places; returns the place. Never more than N, whatever the race."""
    _check_open(interaction, utc_now())
    if interaction.kind != "flash_offer":
        raise Refused("not_a_flash_offer", "Only flash offers can be claimed.")
    if not claims.member_id:
        raise Refused("members_only", "Sign in to claim: the bonus goes to your account.")
    per_buyer = int(interaction.config.get("per_buyer", 1))
    mine = (
        await session.execute(
            select(func.count()).where(
                InteractionEntry.interaction_id == interaction.id, InteractionEntry.viewer_key == claims.key
            )
        )
    ).scalar_one()
    if mine >= per_buyer:
        raise Refused("limit_reached", f"You can claim this offer {per_buyer} time(s).")
    try:
        async with session.begin_nested():
            if not await _entry(session, interaction, claims, None, slot=int(mine) + 1):
                raise Refused("limit_reached", f"You can claim this offer {per_buyer} time(s).")
            taken = await session.execute(_TAKE, {"b_id": interaction.id, "b_quantity": interaction.config["quantity"]})
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise Refused("sold_out", "All places are taken.")
    except IntegrityError as exc:
        raise Refused("limit_reached", "You claimed this offer already.") from exc
    place = int(
        (await session.execute(select(Interaction.progress).where(Interaction.id == interaction.id))).scalar_one()
    )
    member = await session.get(Member, claims.member_id)
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
        await session.execute(
            table(InteractionEntry)
            .update()
            .where(
                InteractionEntry.interaction_id == interaction.id,
                InteractionEntry.viewer_key == claims.key,
                InteractionEntry.slot == int(mine) + 1,
            )
            .values(reward_id=reward.id)
        )
    to_room(
        session, interaction.show_id, {"k": "flash_claim", "card": interaction.id, "left": _left(interaction, place)}
    )
    return place


def _left(interaction: Interaction, taken: int) -> int:
    return max(int(interaction.config["quantity"]) - taken, 0)


async def add_progress(session: AsyncSession, interaction_id: str, n: int) -> int | None:
    """Count ``n`` more towards a challenge; returns the new total (None when it is no longer open)."""
    ia = table(Interaction)
    result = await session.execute(
        ia.update()
        .where(ia.c.id == interaction_id, ia.c.status == "open")
        .values(progress=ia.c.progress + n)
        .returning(ia.c.progress)
    )
    row = result.first()
    return int(row[0]) if row else None


# --- settling --------------------------------------------------------------------------------------------


async def present_members(session: AsyncSession, show_id: str, now: datetime) -> list[tuple[str, str]]:
    """(member id, market) of the members watching now: a heartbeat within the last 45 s."""
    rows = await session.execute(
        select(Member.id, Member.market)
        .join(ShowViewer, ShowViewer.member_id == Member.id)
        .join(
            WatchSegment,
            and_(WatchSegment.show_id == ShowViewer.show_id, WatchSegment.viewer_key == ShowViewer.viewer_key),
        )
        .where(ShowViewer.show_id == show_id, WatchSegment.last_seen_at >= now - SEGMENT_GAP)
        .distinct()
        .order_by(Member.id)
    )
    return [(r[0], r[1]) for r in rows.all()]


async def _reward_members(
    session: AsyncSession, interaction: Interaction, members: list[tuple[str, str]], spec: dict[str, Any], role: str
) -> list[str]:
    """Give ``spec`` to each member once for this interaction (their entry records the reward)."""
    rewarded = []
    for member_id, market in members:
        key = f"m:{member_id}"
        existing = (
            await session.execute(
                select(InteractionEntry).where(
                    InteractionEntry.interaction_id == interaction.id,
                    InteractionEntry.viewer_key == key,
                    InteractionEntry.slot == 1,
                )
            )
        ).scalar_one_or_none()
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
            session.add(
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
    return list(
        (
            await session.execute(
                select(InteractionEntry)
                .where(InteractionEntry.interaction_id == interaction_id)
                .order_by(InteractionEntry.id)
            )
        ).scalars()
    )


async def settle(session: AsyncSession, interaction: Interaction, *, reached: bool | None = None) -> Interaction:
    """Close the interaction and hand out what it promised, once. Settling a settled one changes nothing."""
    if interaction.status == "settled":
        return interaction
    ia = table(Interaction)
    claimed = await session.execute(
        ia.update().where(ia.c.id == interaction.id, ia.c.status == "open").values(status="settling")
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(interaction)
        return interaction
    await session.refresh(interaction)
    now = utc_now()
    config = interaction.config
    result: dict[str, Any] = {}
    for_shop: dict[str, Any] = {}  # what only the shop's event carries: member ids
    kind = interaction.kind
    if kind == "keyword_lottery":
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
    elif kind in ("like_sprint", "danmaku_challenge"):
        if kind == "like_sprint":
            interaction.progress = max(await _likes(session, interaction.show_id) - interaction.base, 0)
        met = reached if reached is not None else interaction.progress >= int(config["target"])
        rewarded: list[str] = []
        if met:
            rewarded = await _reward_members(
                session,
                interaction,
                await present_members(session, interaction.show_id, now),
                config["reward"],
                "live_" + ("sprint" if kind == "like_sprint" else "challenge"),
            )
        result = {
            "reached": met,
            "progress": interaction.progress,
            "target": config["target"],
            "rewarded": len(rewarded),
        }
    elif kind in ("quiz", "poll"):
        entries = await _entries(session, interaction.id)
        tally = Counter(int(e.choice or 0) for e in entries)
        result = {"votes": [tally.get(i, 0) for i in range(len(config["options"]))], "total": len(entries)}
        if kind == "quiz":
            right = [
                (e.member_id, await _market(session, e.member_id))
                for e in entries
                if e.member_id and int(e.choice or -1) == int(config["answer"])
            ]
            spec = {"type": "points", "amount": int(config["points"]), "label": interaction.title}
            rewarded = await _reward_members(session, interaction, right, spec, "live_quiz")
            result.update({"answer": config["answer"], "correct": len(right), "rewarded": len(rewarded)})
        else:
            top = max(range(len(config["options"])), key=lambda i: (tally.get(i, 0), -i))
            result["winner"] = config["options"][top]
    elif kind == "team_pk":
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
    elif kind == "flash_offer":
        result = {"claimed": interaction.progress, "quantity": config["quantity"]}
    interaction.result = result
    interaction.status = "settled"
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
    market = await session.execute(select(Member.market).where(Member.id == member_id))
    return str(market.scalar_one_or_none() or "")


async def pk_scores(session: AsyncSession, interaction: Interaction) -> dict[str, int]:
    """Team scores: invites (referrals made in the show), interactions (from the room), or watch seconds."""
    teams: list[str] = interaction.config["teams"]
    scores = dict.fromkeys(teams, 0)
    metric = interaction.config["metric"]
    members = select(InteractionEntry.member_id, InteractionEntry.choice).where(
        InteractionEntry.interaction_id == interaction.id
    )
    if metric == "interactions":
        rows = await session.execute(
            select(ShowCounter.name, ShowCounter.value).where(
                ShowCounter.show_id == interaction.show_id, ShowCounter.name.like(f"pk:{interaction.id}:%")
            )
        )
        for name, value in rows.all():
            team = name.rsplit(":", 1)[1]
            if team in scores:
                scores[team] += int(value)
    elif metric == "invites":
        team_of = {str(m): str(t) for m, t in (await session.execute(members)).all() if m}
        rows = await session.execute(
            select(Referral.inviter_id, func.count())
            .where(
                Referral.show_id == interaction.show_id,
                Referral.created_at >= interaction.created_at,
                Referral.inviter_id.in_(list(team_of)),
            )
            .group_by(Referral.inviter_id)
        )
        for inviter, count in rows.all():
            scores[team_of[inviter]] += int(count)
    else:
        team_of_key = {
            str(k): str(t)
            for k, t in (
                await session.execute(
                    select(InteractionEntry.viewer_key, InteractionEntry.choice).where(
                        InteractionEntry.interaction_id == interaction.id
                    )
                )
            ).all()
        }
        end = interaction.settled_at or utc_now()
        segments = await session.execute(
            select(WatchSegment.viewer_key, WatchSegment.started_at, WatchSegment.last_seen_at).where(
                WatchSegment.show_id == interaction.show_id,
                WatchSegment.viewer_key.in_(list(team_of_key)),
                WatchSegment.last_seen_at >= interaction.created_at,
            )
        )
        for key, start, last in segments.all():
            seconds = (min(last, end) - max(start, interaction.created_at)).total_seconds()
            scores[team_of_key[key]] += max(int(seconds), 0)
    return scores


async def settle_due(session: AsyncSession, now: datetime) -> int:
    """Settle interactions whose window has closed, and sprints and challenges that reached their target."""
    due = list(
        (
            await session.execute(
                select(Interaction)
                .where(Interaction.status == "open", Interaction.closes_at <= now)
                .order_by(Interaction.closes_at)
                .limit(50)
            )
        ).scalars()
    )
    for sprint in (
        await session.execute(
            select(Interaction).where(Interaction.status == "open", Interaction.kind == "like_sprint").limit(50)
        )
    ).scalars():
        if sprint not in due and await _likes(session, sprint.show_id) - sprint.base >= int(sprint.config["target"]):
            due.append(sprint)
    for interaction in due:
        await settle(session, interaction)
    return len(due)


_SCOREBOARD_EVERY = 3.0
_last_scoreboard: dict[str, float] = {}


async def publish_scoreboards(session: AsyncSession) -> int:
    """Every few seconds, each running team PK's scores go to its room (a live scoreboard)."""
    import time

    now = time.monotonic()
    sent = 0
    for pk in (
        await session.execute(select(Interaction).where(Interaction.status == "open", Interaction.kind == "team_pk"))
    ).scalars():
        if now - _last_scoreboard.get(pk.id, 0.0) < _SCOREBOARD_EVERY:
            continue
        _last_scoreboard[pk.id] = now
        to_room(session, pk.show_id, {"k": "pk_scores", "card": pk.id, "scores": await pk_scores(session, pk)})
        sent += 1
    return sent
