from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liveloop.models.base import Base, BigIntPK, CreatedAt, EnumText


class ShowStatus(StrEnum):
    SCHEDULED = "scheduled"  # planned; mechanics cannot run yet
    LIVE = "live"  # on air: viewers join, mechanics run, high points fire
    ENDED = "ended"  # over for good: viewers are closed out, only title, video and replay change


class VideoProvider(StrEnum):
    NONE = "none"  # no video in the room (a test card)
    HLS = "hls"  # an HLS playlist the show names
    LIVEKIT = "livekit"  # a LiveKit room: the host and approved co-hosts publish


class CuePhase(StrEnum):
    ANNOUNCE = "announce"  # a high point is coming (before_seconds ahead)
    FIRE = "fire"  # the high point is now


class RestrictionKind(StrEnum):
    MUTE = "mute"  # the viewer may watch but not comment
    BAN = "ban"  # the viewer is closed out of the show


class InteractionKind(StrEnum):
    KEYWORD_LOTTERY = "keyword_lottery"  # comment a keyword to enter a provably fair draw
    LIKE_SPRINT = "like_sprint"  # a likes target; every member watching is rewarded when it is reached
    DANMAKU_CHALLENGE = "danmaku_challenge"  # a target of keyword comments, rewarded the same way
    QUIZ = "quiz"  # one answer per viewer; points for the right one
    POLL = "poll"  # one vote per viewer (a "which product next" poll lists pinned SKUs)
    TEAM_PK = "team_pk"  # teams compete on invites, interactions or watch time
    FLASH_OFFER = "flash_offer"  # the first N claims get a bonus


class InteractionStatus(StrEnum):
    OPEN = "open"  # viewers take part
    SETTLING = "settling"  # one process is handing out what it promised
    SETTLED = "settled"  # done, with its result


class CohostStatus(StrEnum):
    WAITING = "waiting"  # the viewer asked; the host has not decided
    APPROVED = "approved"  # the viewer's token may publish video
    DECLINED = "declined"  # the host said no (the viewer may ask again)
    LEFT = "left"  # the co-host left (the viewer may ask again)


class Show(CreatedAt, Base):
    """A live show: scheduled → live → ended, with its host, market, rhythm plan and video source."""

    __tablename__ = "shows"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    market: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(16))
    host_name: Mapped[str] = mapped_column(String(120))
    host_member_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    host_timezone: Mapped[str] = mapped_column(String(64))
    scheduled_at: Mapped[datetime]
    status: Mapped[ShowStatus] = mapped_column(EnumText(ShowStatus, 16), default=ShowStatus.SCHEDULED)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    replay_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    video_provider: Mapped[VideoProvider] = mapped_column(EnumText(VideoProvider, 16), default=VideoProvider.NONE)
    hls_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    pinned: Mapped[list[Any]] = mapped_column(default=list)  # products pinned, in display order
    rhythm: Mapped[list[Any]] = mapped_column(default=list)  # planned high points
    moderation: Mapped[dict[str, Any]] = mapped_column(default=dict)  # slow mode, length, blocked words
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WatchSegment(Base):
    """A stretch of one viewer's heartbeats with no gap over 45 s; watch time is the union of these."""

    __tablename__ = "watch_segments"
    __table_args__ = (Index("ix_watch_segments_show_viewer", "show_id", "viewer_key", "started_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    viewer_key: Mapped[str] = mapped_column(String(80))  # m:<member id> or d:<device id>
    member_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class ShowViewer(Base):
    """One row per viewer per show: first join, whether the view became effective, interactions."""

    __tablename__ = "show_viewers"
    __table_args__ = (
        UniqueConstraint("show_id", "viewer_key"),
        Index("ix_show_viewers_show_alias", "show_id", "alias"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    viewer_key: Mapped[str] = mapped_column(String(80))
    member_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    device_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # What the room shows instead of the key (live/aliases.py); the host's moderation targets resolve through it.
    alias: Mapped[str | None] = mapped_column(String(16), nullable=True)
    first_seen_at: Mapped[datetime]
    effective_at: Mapped[datetime | None] = mapped_column(nullable=True)
    interacted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    team: Mapped[str | None] = mapped_column(String(40), nullable=True)


class ShowCounter(Base):
    """Running totals of a show (likes, shares per channel…), incremented in batches by the gateways."""

    __tablename__ = "show_counters"
    __table_args__ = (UniqueConstraint("show_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))  # likes, share:whatsapp, comments…
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ShowCue(Base):
    """A rhythm point's announcement or firing, recorded once so that one process acts on it."""

    __tablename__ = "show_cues"
    __table_args__ = (UniqueConstraint("show_id", "point", "phase"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    point: Mapped[int]
    phase: Mapped[CuePhase] = mapped_column(EnumText(CuePhase, 16))
    done_at: Mapped[datetime]


class RoomMessage(CreatedAt, Base):
    """A room message that must not be lost (a card, a result, a show change), kept until it is published.

    Written in the transaction that produced it; deleted once the bus has it. A process that dies in
    between leaves the row, and the room relay of any process publishes it a few seconds later.
    """

    __tablename__ = "room_messages"
    __table_args__ = (Index("ix_room_messages_created", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class ShowRestriction(CreatedAt, Base):
    """A host's mute (no comments) or ban (no entry) of one viewer in one show."""

    __tablename__ = "show_restrictions"
    __table_args__ = (UniqueConstraint("show_id", "viewer_key", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    viewer_key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[RestrictionKind] = mapped_column(EnumText(RestrictionKind, 8))
    until: Mapped[datetime | None] = mapped_column(nullable=True)
    reason: Mapped[str] = mapped_column(String(200), default="")


class Interaction(CreatedAt, Base):
    """A mechanic launched in a show: keyword lottery, like sprint, danmaku challenge, quiz, poll, team PK,
    flash offer. ``progress`` is its running count (likes, keyword comments, claims)."""

    __tablename__ = "show_interactions"
    __table_args__ = (Index("ix_show_interactions_show_status", "show_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    kind: Mapped[InteractionKind] = mapped_column(EnumText(InteractionKind, 24))
    status: Mapped[InteractionStatus] = mapped_column(EnumText(InteractionStatus, 16), default=InteractionStatus.OPEN)
    title: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[int] = mapped_column(BigInteger, default=0)
    base: Mapped[int] = mapped_column(BigInteger, default=0)  # e.g. the show's likes when a sprint began
    seed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seed_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closes_at: Mapped[datetime | None] = mapped_column(nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(nullable=True)


class InteractionEntry(Base):
    """One viewer's part in an interaction: a lottery entry, a vote, an answer, a claim, a team, a reward."""

    __tablename__ = "interaction_entries"
    __table_args__ = (UniqueConstraint("interaction_id", "viewer_key", "slot"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    interaction_id: Mapped[str] = mapped_column(ForeignKey("show_interactions.id", ondelete="CASCADE"))
    viewer_key: Mapped[str] = mapped_column(String(80))
    slot: Mapped[int] = mapped_column(default=1)  # a buyer's 1st, 2nd… claim of a flash offer
    member_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    choice: Mapped[str | None] = mapped_column(String(80), nullable=True)
    name: Mapped[str | None] = mapped_column(String(60), nullable=True)  # as the room showed the viewer
    reward_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime]


class CohostRequest(CreatedAt, Base):
    """A viewer asking to join the host on video; the host approves or declines."""

    __tablename__ = "cohost_requests"
    __table_args__ = (UniqueConstraint("show_id", "viewer_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    viewer_key: Mapped[str] = mapped_column(String(80))
    member_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    name: Mapped[str] = mapped_column(String(60))
    status: Mapped[CohostStatus] = mapped_column(EnumText(CohostStatus, 16), default=CohostStatus.WAITING)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
