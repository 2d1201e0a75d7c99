"""Every statement of the live room: shows, their viewers and counters, restrictions, mechanics, co-hosts, the
room's durable messages, and the API keys behind host tokens.

The repositories serve requests and jobs. What the gateway runs per input or per flush (viewers' heartbeats,
counters, entries written in batches) are module-level functions over prepared, module-level statements, so
that nothing is built or compiled again per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from liveloop.kit.errors import NotFound
from liveloop.kit.pagination import PageRequest
from liveloop.kit.repository import Repository, changed, locked
from liveloop.kit.sql import increment_counters, insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.models import (
    ApiKey,
    CohostRequest,
    CohostStatus,
    CuePhase,
    Interaction,
    InteractionEntry,
    InteractionKind,
    InteractionStatus,
    Member,
    Referral,
    RestrictionKind,
    RoomMessage,
    Shop,
    Show,
    ShowCounter,
    ShowCue,
    ShowRestriction,
    ShowStatus,
    ShowViewer,
    WatchSegment,
)

LIKES_COUNTER = "likes"  # the show_counters row of a show's likes

_SEGMENTS = table(WatchSegment)
_VIEWERS = table(ShowViewer)
_EXTEND = _SEGMENTS.update().where(_SEGMENTS.c.id == bindparam("b_id")).values(last_seen_at=bindparam("b_last"))
_ROOM_MESSAGES = table(RoomMessage)
_INTERACTIONS = table(Interaction)
_TAKE = (
    table(Interaction)
    .update()
    .where(
        table(Interaction).c.id == bindparam("b_id"),
        table(Interaction).c.status == InteractionStatus.OPEN,
        table(Interaction).c.progress < bindparam("b_quantity"),
    )
    .values(progress=table(Interaction).c.progress + 1)
)


# --- shows ---------------------------------------------------------------------------------------------------


class ShowRepository(Repository[Show]):
    model = Show
    not_found = ("show_not_found", "No such show in this shop.")

    async def by_id(self, show_id: str) -> Show | None:
        """The show with this id, whichever shop's (the room and the public pages know no shop)."""
        return await self.one_or_none(select(Show).where(Show.id == show_id))

    async def public_or_raise(self, show_id: str) -> Show:
        """The show with this id, or the public 404 (``show_not_found``, "No such show.")."""
        show = await self.by_id(show_id)
        if show is None:
            raise NotFound("No such show.", code="show_not_found")
        return show

    async def page_of(
        self, shop_id: str, page: PageRequest, status: str | None = None
    ) -> tuple[list[Show], str | None]:
        """The shop's shows, latest scheduled first."""
        query = select(Show).where(Show.shop_id == shop_id)
        if status:
            query = query.where(Show.status == status)
        return await self.paginate(query, page, [Show.scheduled_at, Show.id], descending=True)

    async def live(self) -> list[Show]:
        return await self.all(select(Show).where(Show.status == ShowStatus.LIVE))

    async def claim_cue(self, show_id: str, point: int, phase: CuePhase) -> bool:
        """True for the one caller that records this rhythm point's phase first."""
        statement = insert_ignoring_conflicts(
            self.session, table(ShowCue), {"show_id": show_id, "point": point, "phase": phase, "done_at": utc_now()}
        )
        return await self.changed(statement) == 1

    async def counters(self, show_id: str) -> dict[str, int]:
        rows = await self.session.execute(
            select(ShowCounter.name, ShowCounter.value).where(ShowCounter.show_id == show_id)
        )
        return {name: int(value) for name, value in rows.all()}

    async def likes(self, show_id: str) -> int:
        return await likes(self.session, show_id)

    async def viewer_counts(self, show_id: str) -> tuple[int, int]:
        """(unique viewers, effective viewers) of the show."""
        row = (
            await self.session.execute(
                select(func.count(ShowViewer.id), func.count(ShowViewer.effective_at)).where(
                    ShowViewer.show_id == show_id
                )
            )
        ).one()
        return int(row[0]), int(row[1])

    async def shop_and_member(self, shop_id: str, member_id: str) -> tuple[Shop | None, Member | None]:
        return await self.session.get(Shop, shop_id), await self.session.get(Member, member_id)


async def likes(session: AsyncSession, show_id: str) -> int:
    """The show's likes so far (as the gateways have written them)."""
    value = await session.execute(
        select(ShowCounter.value).where(ShowCounter.show_id == show_id, ShowCounter.name == LIKES_COUNTER)
    )
    return int(value.scalar_one_or_none() or 0)


# --- viewers, watch time and counters, written by the gateway in batches --------------------------------------


class ViewerRepository(Repository[ShowViewer]):
    model = ShowViewer
    not_found = (
        "viewer_not_found",
        "No viewer of this show has this alias; use the `a` of one of the show's comments.",
    )

    async def key_by_alias(self, show_id: str, alias_: str) -> str | None:
        found = await self.session.execute(
            select(ShowViewer.viewer_key).where(ShowViewer.show_id == show_id, ShowViewer.alias == alias_).limit(1)
        )
        key = found.scalar_one_or_none()
        return None if key is None else str(key)

    async def without_alias(self, show_id: str) -> list[tuple[int, str]]:
        """(row id, viewer key) of the show's viewers written before aliases were stored."""
        rows = await self.session.execute(
            select(ShowViewer.id, ShowViewer.viewer_key).where(
                ShowViewer.show_id == show_id, ShowViewer.alias.is_(None)
            )
        )
        return [(row[0], row[1]) for row in rows.all()]

    async def set_alias(self, row_id: int, alias_: str) -> None:
        await self.session.execute(table(ShowViewer).update().where(ShowViewer.id == row_id).values(alias=alias_))

    async def link_device(self, shop_id: str, device_id: str, member_id: str) -> bool:
        """The device's anonymous views become the member's; whether any of them was effective."""
        await self.session.execute(
            table(ShowViewer)
            .update()
            .where(ShowViewer.shop_id == shop_id, ShowViewer.device_id == device_id, ShowViewer.member_id.is_(None))
            .values(member_id=member_id)
        )
        effective = await self.session.execute(
            select(ShowViewer.id)
            .where(
                ShowViewer.shop_id == shop_id,
                ShowViewer.device_id == device_id,
                ShowViewer.member_id == member_id,
                ShowViewer.effective_at.is_not(None),
            )
            .limit(1)
        )
        return effective.first() is not None


async def add_viewers(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New show viewers, as execute parameters (an executemany): the statement is compiled once and cached, and
    the rows go to the database driver as they are. Rows inlined into one statement would be walked and compiled
    anew by each flush, on the event loop, for every viewer who joined since the last one."""
    await session.execute(insert_ignoring_conflicts(session, _VIEWERS), rows)


async def add_segments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(_SEGMENTS.insert(), rows)


async def extend_segments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """``rows``: ``{"b_id": segment id, "b_last": last heartbeat}``."""
    await session.execute(_EXTEND, rows)


async def stamp_effective(session: AsyncSession, show_id: str, at: dict[str, datetime]) -> list[str]:
    """Stamp the first effective view of the show's viewers ``at`` (viewer key → when) that have none yet, in
    one statement; returns the keys it stamped."""
    keys = list(at)
    result = await session.execute(
        _VIEWERS.update()
        .where(
            _VIEWERS.c.show_id == show_id,
            _VIEWERS.c.viewer_key.in_(keys),
            _VIEWERS.c.effective_at.is_(None),
        )
        .values(
            effective_at=case(
                {key: literal(at[key], _VIEWERS.c.effective_at.type) for key in keys},
                value=_VIEWERS.c.viewer_key,
            )
        )
        .returning(_VIEWERS.c.viewer_key)
    )
    return [str(key) for key in result.scalars()]


async def add_counts(session: AsyncSession, counts: dict[tuple[str, str], int]) -> None:
    """Add to the shows' running totals: (show, counter name) → increment."""
    rows = [{"show_id": s, "name": n, "value": v} for (s, n), v in counts.items()]
    await session.execute(increment_counters(session, table(ShowCounter), ("show_id", "name"), rows))


async def mark_interacted(session: AsyncSession, show_id: str, keys: Iterable[str], now: datetime) -> None:
    """The first interaction of these viewers of the show (those that have none yet)."""
    await session.execute(
        table(ShowViewer)
        .update()
        .where(
            ShowViewer.show_id == show_id,
            ShowViewer.viewer_key.in_(sorted(keys)),
            ShowViewer.interacted_at.is_(None),
        )
        .values(interacted_at=now)
    )


async def active_keys(session: AsyncSession, key_ids: Iterable[str]) -> set[str]:
    """Which of these API keys (behind host tokens) are not revoked."""
    query = select(ApiKey.id).where(ApiKey.id.in_(sorted(key_ids)), ApiKey.revoked_at.is_(None))
    return set((await session.execute(query)).scalars())


# --- moderation ----------------------------------------------------------------------------------------------


class RestrictionRepository(Repository[ShowRestriction]):
    model = ShowRestriction

    async def find(self, show_id: str, viewer_key: str, kind: str) -> ShowRestriction | None:
        return await self.one_or_none(
            select(ShowRestriction).where(
                ShowRestriction.show_id == show_id,
                ShowRestriction.viewer_key == viewer_key,
                ShowRestriction.kind == kind,
            )
        )

    async def delete(self, row: ShowRestriction) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def of_show(self, show_id: str) -> list[tuple[str, RestrictionKind, datetime | None]]:
        """(viewer key, kind, until) of every restriction of the show, lapsed or not."""
        rows = await self.session.execute(
            select(ShowRestriction.viewer_key, ShowRestriction.kind, ShowRestriction.until).where(
                ShowRestriction.show_id == show_id
            )
        )
        return [(row[0], row[1], row[2]) for row in rows.all()]


# --- mechanics -----------------------------------------------------------------------------------------------


class InteractionRepository(Repository[Interaction]):
    model = Interaction
    not_found = ("interaction_not_found", "No such interaction in this shop.")

    async def public_or_raise(self, interaction_id: str) -> Interaction:
        """The interaction with this id, whichever shop's, or the public 404 ("No such interaction.")."""
        found = await self.session.get(Interaction, interaction_id)
        if found is None:
            raise NotFound("No such interaction.", code="interaction_not_found")
        return found

    async def open_in_show(self, show_id: str) -> list[Interaction]:
        return await self.all(
            select(Interaction)
            .where(Interaction.show_id == show_id, Interaction.status == InteractionStatus.OPEN)
            .order_by(Interaction.created_at)
        )

    async def page_of_show(self, show_id: str, page: PageRequest) -> tuple[list[Interaction], str | None]:
        """A show's mechanics, the latest launched first."""
        query = select(Interaction).where(Interaction.show_id == show_id)
        return await self.paginate(query, page, [Interaction.created_at, Interaction.id], descending=True)

    async def choice_counts(self, interaction_ids: Iterable[str]) -> list[tuple[str, str | None, int]]:
        """(interaction, choice, entries) of these interactions."""
        rows = await self.session.execute(
            select(InteractionEntry.interaction_id, InteractionEntry.choice, func.count())
            .where(InteractionEntry.interaction_id.in_(list(interaction_ids)))
            .group_by(InteractionEntry.interaction_id, InteractionEntry.choice)
        )
        return [(row[0], row[1], int(row[2])) for row in rows.all()]

    async def entries(self, interaction_id: str) -> list[InteractionEntry]:
        return list(
            (
                await self.session.execute(
                    select(InteractionEntry)
                    .where(InteractionEntry.interaction_id == interaction_id)
                    .order_by(InteractionEntry.id)
                )
            ).scalars()
        )

    async def first_entry(self, interaction_id: str, viewer_key: str) -> InteractionEntry | None:
        return (
            await self.session.execute(
                select(InteractionEntry).where(
                    InteractionEntry.interaction_id == interaction_id,
                    InteractionEntry.viewer_key == viewer_key,
                    InteractionEntry.slot == 1,
                )
            )
        ).scalar_one_or_none()

    def add_entry(self, entry: InteractionEntry) -> None:
        self.session.add(entry)

    async def begin_settling(self, interaction_id: str) -> bool:
        """``open`` → ``settling``, for the one caller that gets there first."""
        statement = (
            _INTERACTIONS.update()
            .where(_INTERACTIONS.c.id == interaction_id, _INTERACTIONS.c.status == InteractionStatus.OPEN)
            .values(status=InteractionStatus.SETTLING)
        )
        return await self.changed(statement) == 1

    async def market_of(self, member_id: str) -> str:
        market = await self.session.execute(select(Member.market).where(Member.id == member_id))
        return str(market.scalar_one_or_none() or "")

    async def present_members(self, show_id: str, since: datetime) -> list[tuple[str, str]]:
        """(member id, market) of the show's members with a heartbeat at ``since`` or later."""
        rows = await self.session.execute(
            select(Member.id, Member.market)
            .join(ShowViewer, ShowViewer.member_id == Member.id)
            .join(
                WatchSegment,
                and_(WatchSegment.show_id == ShowViewer.show_id, WatchSegment.viewer_key == ShowViewer.viewer_key),
            )
            .where(ShowViewer.show_id == show_id, WatchSegment.last_seen_at >= since)
            .distinct()
            .order_by(Member.id)
        )
        return [(r[0], r[1]) for r in rows.all()]

    # -- a team PK's scores --
    async def team_counters(self, show_id: str, interaction_id: str) -> list[tuple[str, int]]:
        """(counter name, value) of the team PK's per-team interaction counters (``pk:<id>:<team>``)."""
        rows = await self.session.execute(
            select(ShowCounter.name, ShowCounter.value).where(
                ShowCounter.show_id == show_id, ShowCounter.name.like(f"pk:{interaction_id}:%")
            )
        )
        return [(row[0], int(row[1])) for row in rows.all()]

    async def teams_by_member(self, interaction_id: str) -> dict[str, str]:
        rows = await self.session.execute(
            select(InteractionEntry.member_id, InteractionEntry.choice).where(
                InteractionEntry.interaction_id == interaction_id
            )
        )
        return {str(m): str(t) for m, t in rows.all() if m}

    async def teams_by_key(self, interaction_id: str) -> dict[str, str]:
        rows = await self.session.execute(
            select(InteractionEntry.viewer_key, InteractionEntry.choice).where(
                InteractionEntry.interaction_id == interaction_id
            )
        )
        return {str(k): str(t) for k, t in rows.all()}

    async def invites_in_show(self, show_id: str, since: datetime, inviters: Sequence[str]) -> list[tuple[str, int]]:
        """(inviter, referrals made in the show since ``since``) of these inviters."""
        rows = await self.session.execute(
            select(Referral.inviter_id, func.count())
            .where(Referral.show_id == show_id, Referral.created_at >= since, Referral.inviter_id.in_(list(inviters)))
            .group_by(Referral.inviter_id)
        )
        return [(row[0], int(row[1])) for row in rows.all()]

    async def watch_segments(
        self, show_id: str, keys: Sequence[str], since: datetime
    ) -> list[tuple[str, datetime, datetime]]:
        """(viewer key, start, last heartbeat) of these viewers' segments still running at ``since`` or later."""
        rows = await self.session.execute(
            select(WatchSegment.viewer_key, WatchSegment.started_at, WatchSegment.last_seen_at).where(
                WatchSegment.show_id == show_id,
                WatchSegment.viewer_key.in_(list(keys)),
                WatchSegment.last_seen_at >= since,
            )
        )
        return [(row[0], row[1], row[2]) for row in rows.all()]

    # -- jobs --
    async def due(self, now: datetime, limit: int = 50) -> list[Interaction]:
        """Open interactions whose window has closed, the earliest first."""
        return await self.all(
            select(Interaction)
            .where(Interaction.status == InteractionStatus.OPEN, Interaction.closes_at <= now)
            .order_by(Interaction.closes_at)
            .limit(limit)
        )

    async def open_of_kind(self, kind: InteractionKind, limit: int | None = None) -> list[Interaction]:
        query = select(Interaction).where(Interaction.status == InteractionStatus.OPEN, Interaction.kind == kind)
        return await self.all(query if limit is None else query.limit(limit))


# What the gateway's batched room writes run, per viewer input (no repository object per input).


async def interaction(session: AsyncSession, interaction_id: str) -> Interaction | None:
    return await session.get(Interaction, interaction_id)


async def member(session: AsyncSession, member_id: str) -> Member | None:
    return await session.get(Member, member_id)


async def insert_entry(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a viewer's entry; False when they already have this one (same interaction, viewer and slot)."""
    return await changed(session, insert_ignoring_conflicts(session, table(InteractionEntry), values)) == 1


async def entry_choice(session: AsyncSession, interaction_id: str, viewer_key: str) -> str:
    existing = await session.execute(
        select(InteractionEntry.choice).where(
            InteractionEntry.interaction_id == interaction_id, InteractionEntry.viewer_key == viewer_key
        )
    )
    return str(existing.scalar_one())


async def set_team(session: AsyncSession, show_id: str, viewer_key: str, team: str) -> None:
    await session.execute(
        table(ShowViewer)
        .update()
        .where(ShowViewer.show_id == show_id, ShowViewer.viewer_key == viewer_key)
        .values(team=team)
    )


async def entries_of(session: AsyncSession, interaction_id: str, viewer_key: str) -> int:
    """How many entries (claims) this viewer has in the interaction."""
    found = await session.execute(
        select(func.count()).where(
            InteractionEntry.interaction_id == interaction_id, InteractionEntry.viewer_key == viewer_key
        )
    )
    return int(found.scalar_one())


async def take_place(session: AsyncSession, interaction_id: str, quantity: int) -> bool:
    """One more place of an open flash offer, if any is left (never more than ``quantity``, whatever the race)."""
    return await changed(session, _TAKE, {"b_id": interaction_id, "b_quantity": quantity}) == 1


async def progress(session: AsyncSession, interaction_id: str) -> int:
    found = await session.execute(select(Interaction.progress).where(Interaction.id == interaction_id))
    return int(found.scalar_one())


async def set_entry_reward(
    session: AsyncSession, interaction_id: str, viewer_key: str, slot: int, reward_id: str
) -> None:
    await session.execute(
        table(InteractionEntry)
        .update()
        .where(
            InteractionEntry.interaction_id == interaction_id,
            InteractionEntry.viewer_key == viewer_key,
            InteractionEntry.slot == slot,
        )
        .values(reward_id=reward_id)
    )


async def add_progress(session: AsyncSession, interaction_id: str, n: int) -> int | None:
    """``n`` more towards an open challenge; the new total (None when it is no longer open)."""
    result = await session.execute(
        _INTERACTIONS.update()
        .where(_INTERACTIONS.c.id == interaction_id, _INTERACTIONS.c.status == InteractionStatus.OPEN)
        .values(progress=_INTERACTIONS.c.progress + n)
        .returning(_INTERACTIONS.c.progress)
    )
    row = result.first()
    return int(row[0]) if row else None


# --- co-hosts ------------------------------------------------------------------------------------------------


class CohostRepository(Repository[CohostRequest]):
    model = CohostRequest
    not_found = ("cohost_request_not_found", "No such co-host request in this show.")

    async def of_viewer(self, show_id: str, viewer_key: str) -> CohostRequest | None:
        return await self.one_or_none(
            select(CohostRequest).where(CohostRequest.show_id == show_id, CohostRequest.viewer_key == viewer_key)
        )

    async def in_show_or_raise(self, show_id: str, request_id: str) -> CohostRequest:
        """The show's request with this id, or ``cohost_request_not_found`` (for another show's request too)."""
        found = await self.one_or_none(
            select(CohostRequest).where(CohostRequest.show_id == show_id, CohostRequest.id == request_id)
        )
        if found is None:
            raise self.missing()
        return found

    async def page_of_show(self, show_id: str, page: PageRequest) -> tuple[list[CohostRequest], str | None]:
        """Requests to join the host, in the order they were made."""
        query = select(CohostRequest).where(CohostRequest.show_id == show_id)
        return await self.paginate(query, page, [CohostRequest.created_at, CohostRequest.id])

    async def approved(self, show_id: str, viewer_key: str) -> CohostRequest | None:
        return await self.one_or_none(
            select(CohostRequest).where(
                CohostRequest.show_id == show_id,
                CohostRequest.viewer_key == viewer_key,
                CohostRequest.status == CohostStatus.APPROVED,
            )
        )


# --- the room's durable messages (see live/notify.py) --------------------------------------------------------


def write_room_messages(session: Session, rows: list[dict[str, Any]]) -> None:
    """Before a commit, in the committing (sync) session: the durable room messages of the transaction."""
    session.execute(_ROOM_MESSAGES.insert(), rows)


async def forget_room_messages(session: AsyncSession, ids: Sequence[str]) -> None:
    """Delete the rows of messages on the bus, 500 at a time."""
    for at in range(0, len(ids), 500):
        await session.execute(delete(_ROOM_MESSAGES).where(_ROOM_MESSAGES.c.id.in_(ids[at : at + 500])))


async def left_behind(session: AsyncSession, before: datetime, limit: int) -> list[tuple[str, str, bytes]]:
    """(id, show, payload) of the oldest rows written before ``before``, locked (skipping rows another process
    holds) on PostgreSQL."""
    query = (
        select(_ROOM_MESSAGES.c.id, _ROOM_MESSAGES.c.show_id, _ROOM_MESSAGES.c.payload)
        .where(_ROOM_MESSAGES.c.created_at < before)
        .order_by(_ROOM_MESSAGES.c.created_at, _ROOM_MESSAGES.c.id)
        .limit(limit)
    )
    rows = (await session.execute(locked(session, query, skip_locked=True))).all()
    return [(row[0], row[1], row[2]) for row in rows]
