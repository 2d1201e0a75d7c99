from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liveloop.models.base import Base, BigIntPK, CreatedAt


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
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled live ended
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    replay_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    video_provider: Mapped[str] = mapped_column(String(16), default="none")  # none hls livekit
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
    __table_args__ = (UniqueConstraint("show_id", "viewer_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    viewer_key: Mapped[str] = mapped_column(String(80))
    member_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    device_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
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
    phase: Mapped[str] = mapped_column(String(16))  # announce fire
    done_at: Mapped[datetime]


class ShowRestriction(CreatedAt, Base):
    """A host's mute (no comments) or ban (no entry) of one viewer in one show."""

    __tablename__ = "show_restrictions"
    __table_args__ = (UniqueConstraint("show_id", "viewer_key", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id", ondelete="CASCADE"))
    viewer_key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))  # mute ban
    until: Mapped[datetime | None] = mapped_column(nullable=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
