"""What a gateway process keeps of a show and of each verified viewer's sockets, and how it refuses an input.

A viewer's budgets are per verified viewer, not per socket: its sockets in a show share one comment, like and
input budget. A refusal is answered on the socket (``{"t":"err","code","message"}``); the socket stays open.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import orjson

from liveloop.kit import errors
from liveloop.live import interactions, moderation, tokens
from liveloop.live.protocol import PublicShow
from liveloop.live.room import Connection
from liveloop.models import ShowStatus

log = logging.getLogger(__name__)

HOLD_SECONDS = 0.05  # a viewer over its budget is not read from for this long (TCP pushes back on a flood)


@dataclass
class ShowInfo:
    """A show as the gateway keeps it in memory for a couple of seconds (its rules, who is muted or banned)."""

    id: str
    shop_id: str
    status: ShowStatus
    language: str
    rules: moderation.Rules
    muted: set[str]
    banned: set[str]
    public: PublicShow  # what its hello carries


@dataclass(eq=False, slots=True)
class Budget:
    """What one verified viewer may still do in a show, shared by all of its sockets in this process."""

    comments: moderation.TokenBucket
    likes: moderation.TokenBucket
    inputs: moderation.TokenBucket  # answers, votes, team joins, claims, co-host requests
    last_comment: float = 0.0
    teams: dict[str, str] = field(default_factory=dict)  # team PK → the team this viewer plays for
    sockets: int = 0
    idle_since: float = 0.0
    hold_until: float = 0.0  # over budget: its sockets are not read from until then


@dataclass(eq=False, slots=True)
class Viewer:
    """One socket of a verified viewer; its budget is the viewer's, shared with the viewer's other sockets."""

    claims: tokens.ViewerClaims
    conn: Connection
    budget: Budget
    address: str = ""
    close_reason: str = ""

    @property
    def comments(self) -> moderation.TokenBucket:
        return self.budget.comments

    @property
    def likes(self) -> moderation.TokenBucket:
        return self.budget.likes

    @property
    def inputs(self) -> moderation.TokenBucket:
        return self.budget.inputs

    @property
    def last_comment(self) -> float:
        return self.budget.last_comment

    @last_comment.setter
    def last_comment(self, value: float) -> None:
        self.budget.last_comment = value

    @property
    def teams(self) -> dict[str, str]:
        return self.budget.teams


class Busy(Exception):
    """The queue of room writes is full."""


def refuse(viewer: Viewer, code: str, message: str) -> None:
    """Answer a refused input on the viewer's socket; ``rate_limited`` also holds its reading for a moment."""
    if code == "rate_limited":
        viewer.budget.hold_until = time.monotonic() + HOLD_SECONDS
    if errors.recorder is not None:
        errors.recorder(code, errors.ROOM)
    viewer.conn.push(orjson.dumps({"t": "err", "code": code, "message": message}))


_refuse = refuse  # the name the error-code scan knows a room refusal by


def write_failed(viewer: Viewer, exc: BaseException) -> None:
    """A queued input's refusal, or ``try_again`` when the queue was full or the write failed."""
    if isinstance(exc, interactions.Refused):
        _refuse(viewer, exc.code, exc.message)
        return
    if not isinstance(exc, Busy):
        log.error("a room input could not be written", exc_info=exc)
    _refuse(viewer, "try_again", "The room is busy; send it again in a moment.")
