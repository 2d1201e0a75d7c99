"""Viewers taking part in the mechanics from the room: what the gateway does with their answers, votes, team
joins, flash-offer claims, co-host requests, and the keyword comments that enter lotteries and count towards
challenges.

Inputs that write to the database are queued and written for many viewers at once, in one short transaction
(see :class:`liveloop.kit.batching.TransactionBatcher`); the reply (``{"t":"ok",…}`` or ``{"t":"err",…}``)
comes after the commit. When the queue is full the input is refused with ``try_again``. Keyword comments are
counted in memory and written about once a second (:meth:`Participation.apply_progress`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveloop.kit.batching import TransactionBatcher, TTLCache
from liveloop.kit.db import transaction
from liveloop.live import cohost, interactions, moderation, repository
from liveloop.live.notify import to_room
from liveloop.live.protocol import TAKES_PART_IN, BusKind, ClientKind
from liveloop.live.viewers import Busy, ShowInfo, Viewer, write_failed
from liveloop.live.viewers import refuse as _refuse  # the name the error-code scan knows a room refusal by
from liveloop.models import Interaction, InteractionKind

log = logging.getLogger(__name__)

CHALLENGE_PER_VIEWER = 10  # keyword comments a danmaku challenge counts per viewer (its config's per_viewer wins)

# Called with (show id, counter name, increment): the gateway's counters, written in its batches.
Count = Callable[[str, str, int], None]


@dataclass
class OpenInteraction:
    id: str
    kind: InteractionKind
    config: dict[str, Any]
    closes_at: datetime | None


class Participation:
    """One gateway process's side of the mechanics: inputs queued as room writes, keyword comments counted."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        writes: TransactionBatcher,
        count: Count,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.writes = writes
        self._count = count
        self.clock = clock
        self._open: TTLCache[str, list[OpenInteraction]] = TTLCache(2.0)
        self._entered: dict[str, set[str]] = {}  # keyword lottery → viewer keys already entered (or queued)
        self._progress: dict[str, int] = {}  # challenge → keyword comments not yet counted
        self._counted: dict[str, dict[str, int]] = {}  # challenge → viewer key → keyword comments counted

    def forget(self, show_id: str) -> None:
        """An interaction of the show was launched or settled: read its open ones again."""
        self._open.forget(show_id)

    async def open_interactions(self, show_id: str) -> list[OpenInteraction]:
        found = self._open.get(show_id)
        if found is None:
            async with self.sessions() as session:
                found = [
                    OpenInteraction(i.id, i.kind, i.config, i.closes_at)
                    for i in await interactions.open_in_show(session, show_id)
                ]
            self._open.put(show_id, found)
        return found

    # --- keyword comments ------------------------------------------------------------------------------

    async def on_comment(self, show_id: str, viewer: Viewer, text: str) -> None:
        """A comment hook: a keyword comment enters a lottery or counts towards a challenge."""
        key = viewer.claims.key
        for ia in await self.open_interactions(show_id):
            keyword = ia.config.get("keyword")
            if not keyword or not moderation.contains_keyword(text, keyword):
                continue
            if ia.closes_at is not None and self.clock() >= ia.closes_at:
                continue
            if ia.kind == InteractionKind.DANMAKU_CHALLENGE:
                # A count that pays out: each viewer's keyword comments count up to a cap, however many it sends.
                counted = self._counted.setdefault(ia.id, {})
                n = counted.get(key, 0)
                if n >= int(ia.config.get("per_viewer") or CHALLENGE_PER_VIEWER):
                    continue
                counted[key] = n + 1
                self._progress[ia.id] = self._progress.get(ia.id, 0) + 1
            elif ia.kind == InteractionKind.KEYWORD_LOTTERY:
                entered = self._entered.setdefault(ia.id, set())
                if key in entered:
                    continue
                entered.add(key)  # queued: a second comment while the entry is written does not enter twice
                self._enter_lottery(viewer, ia.id, entered)

    def _enter_lottery(self, viewer: Viewer, interaction_id: str, entered: set[str]) -> None:
        async def work(session: AsyncSession) -> Callable[[], object] | None:
            interaction = await repository.interaction(session, interaction_id)
            if interaction is None:
                return lambda: entered.discard(viewer.claims.key)
            await interactions.enter_lottery(session, interaction, viewer.claims)
            return lambda: viewer.conn.push(orjson.dumps({"t": "ok", "card": interaction_id, "entered": True}))

        def failed(exc: BaseException) -> None:
            entered.discard(viewer.claims.key)
            write_failed(viewer, exc)

        if not self.writes.submit(work, failed):
            failed(Busy())

    async def apply_progress(self) -> None:
        """Write the keyword comments counted since the last pass; settle the challenges that reached their target."""
        pending, self._progress = self._progress, {}
        for interaction_id, n in pending.items():
            async with transaction(self.sessions) as session:
                total = await interactions.add_progress(session, interaction_id, n)
                interaction = await repository.interaction(session, interaction_id)
                if total is None or interaction is None:
                    self._counted.pop(interaction_id, None)  # closed: its per-viewer counts are done with
                    continue
                if total >= int(interaction.config["target"]):
                    await interactions.settle(session, interaction, reached=True)
                    self._counted.pop(interaction_id, None)
                else:
                    to_room(
                        session,
                        interaction.show_id,
                        {"k": BusKind.PROGRESS, "card": interaction_id, "progress": total},
                    )

    # --- inputs: answers, votes, team joins, claims, co-host requests ----------------------------------------

    def take_part(self, show: ShowInfo, viewer: Viewer, message: dict[str, Any]) -> None:
        """``a`` (a quiz answer), ``v`` (a poll vote), ``team`` (join a team PK), ``claim`` (a flash offer)."""
        interaction_id = message.get("i")
        if not isinstance(interaction_id, str):
            _refuse(viewer, "invalid_interaction", "i is the id of the card you are answering.")
            return
        if not viewer.inputs.allow(time.monotonic()):
            _refuse(viewer, "rate_limited", "You are answering too fast; wait a few seconds.")
            return
        kind = message["t"]
        expected = TAKES_PART_IN[kind]
        option, team = message.get("o"), message.get("team")

        async def work(session: AsyncSession) -> Callable[[], object]:
            interaction = await repository.interaction(session, interaction_id)
            if interaction is None or interaction.show_id != show.id:
                raise interactions.Refused("unknown_interaction", "There is no such card in this show.")
            if interaction.kind not in expected:
                raise interactions.Refused("wrong_interaction", f"This card is a {interaction.kind}.")
            reply: dict[str, Any] = {"t": "ok", "card": interaction_id}
            joined: str | None = None
            if kind in (ClientKind.ANSWER, ClientKind.VOTE):
                await interactions.choose(session, interaction, viewer.claims, option)
                reply["choice"] = option
                if kind == ClientKind.VOTE:
                    self._publish_vote(session, interaction, option)
            elif kind == ClientKind.TEAM:
                joined = await interactions.join_team(session, interaction, viewer.claims, team)
                reply["team"] = joined
            else:
                reply["place"] = await interactions.claim_flash(session, interaction, viewer.claims)

            def answer() -> None:
                if joined is not None:
                    viewer.teams[interaction_id] = joined
                viewer.conn.push(orjson.dumps(reply))

            return answer

        if not self.writes.submit(work, lambda exc: write_failed(viewer, exc)):
            write_failed(viewer, Busy())

    def _publish_vote(self, session: AsyncSession, interaction: Interaction, option: Any) -> None:
        to_room(session, interaction.show_id, {"k": BusKind.VOTE, "card": interaction.id, "o": option})

    def team_score(self, show_id: str, viewer: Viewer, n: int) -> None:
        """A viewer's likes and comments score for the teams it plays for (team PKs on interactions)."""
        for interaction_id, team in viewer.teams.items():
            self._count(show_id, f"pk:{interaction_id}:{team}", n)

    def ask_to_cohost(self, show: ShowInfo, viewer: Viewer, message: dict[str, Any]) -> None:
        """``cohost``: join the queue of viewers asking to join the host on video."""
        if not viewer.inputs.allow(time.monotonic()):
            _refuse(viewer, "rate_limited", "You are asking too fast; wait a few seconds.")
            return

        async def work(session: AsyncSession) -> Callable[[], object]:
            status = (await cohost.ask(session, show.shop_id, show.id, viewer.claims)).status
            return lambda: viewer.conn.push(orjson.dumps({"t": "ok", "cohost": status}))

        if not self.writes.submit(work, lambda exc: write_failed(viewer, exc)):
            write_failed(viewer, Busy())
