"""Presence and watch time from heartbeats, exactly as the analytics define them.

- A viewer's client sends a heartbeat every 15 s. Heartbeats with gaps of at most 45 s form one segment;
  a longer gap ends it. Watch time is the union of the segments, clipped to the show, capped at its length.
- An effective view is at least 10 s of watching. The first one of a member can convert a referral.
- Viewers watching now are those whose last heartbeat is at most 45 s old.

Heartbeats are kept in memory and written in batches (one transaction every few seconds per process).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.ids import new_id
from liveloop.live import repository
from liveloop.live.aliases import alias

SEGMENT_GAP = timedelta(seconds=45)
EFFECTIVE = timedelta(seconds=10)


def watch_seconds(segments: Iterable[tuple[datetime, datetime]], show_start: datetime, show_end: datetime) -> float:
    """The union of ``segments`` within [show_start, show_end], in seconds (so at most the show's length)."""
    clipped = sorted(
        (max(start, show_start), min(end, show_end)) for start, end in segments if end > show_start and start < show_end
    )
    total = 0.0
    current_start: datetime | None = None
    current_end: datetime | None = None
    for start, end in clipped:
        if current_end is None or start > current_end:
            if current_start is not None and current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_start is not None and current_end is not None:
        total += (current_end - current_start).total_seconds()
    return total


@dataclass(slots=True)
class _Viewer:
    shop_id: str
    show_id: str
    key: str
    member_id: str | None
    device_id: str | None
    first_seen: datetime
    segment_id: str
    segment_start: datetime
    last_seen: datetime
    watched_before: timedelta = timedelta(0)  # closed segments of this process
    stored: bool = False  # the show_viewers row exists
    segment_stored: bool = False
    dirty: bool = True
    effective: bool = False
    version: int = 0  # bumped by every heartbeat, so a flush only settles what it wrote


@dataclass
class EffectiveView:
    shop_id: str
    show_id: str
    key: str
    member_id: str | None
    at: datetime


@dataclass
class Flush:
    """What one :meth:`Presence.flush` wrote: per viewer, the heartbeat version and segment it covered."""

    written: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    effective: list[EffectiveView] = field(default_factory=list)


@dataclass
class Presence:
    """One process's view of who is watching which show.

    With the server's ``secret``, each viewer's row is written with its alias in the show, which is how the
    host's moderation finds the viewer a comment came from.
    """

    viewers: dict[tuple[str, str], _Viewer] = field(default_factory=dict)
    secret: str | None = None

    def beat(
        self, shop_id: str, show_id: str, key: str, member_id: str | None, device_id: str | None, now: datetime
    ) -> None:
        viewer = self.viewers.get((show_id, key))
        if viewer is None:
            self.viewers[(show_id, key)] = _Viewer(
                shop_id, show_id, key, member_id, device_id, now, new_id("seg"), now, now
            )
            return
        if now - viewer.last_seen > SEGMENT_GAP:
            viewer.watched_before += viewer.last_seen - viewer.segment_start
            viewer.segment_id = new_id("seg")
            viewer.segment_start = now
            viewer.segment_stored = False
        viewer.last_seen = now
        viewer.member_id = viewer.member_id or member_id
        viewer.dirty = True
        viewer.version += 1

    def counts(self, now: datetime) -> dict[str, int]:
        """Viewers watching now, per show."""
        out: dict[str, int] = {}
        for (show_id, _), v in self.viewers.items():
            if now - v.last_seen <= SEGMENT_GAP:
                out[show_id] = out.get(show_id, 0) + 1
        return out

    async def flush(self, session: AsyncSession) -> Flush:
        """Write what changed since the last flush, in the caller's transaction.

        Call :meth:`flushed` with the result once that transaction has committed.
        """
        batch = Flush()
        new_viewers = []
        new_segments = []
        extended = []
        effective: list[EffectiveView] = []
        for v in self.viewers.values():
            if not v.dirty:
                continue
            batch.written[(v.show_id, v.key)] = (v.version, v.segment_id)
            if not v.stored:
                new_viewers.append(
                    {
                        "shop_id": v.shop_id,
                        "show_id": v.show_id,
                        "viewer_key": v.key,
                        "member_id": v.member_id,
                        "device_id": v.device_id,
                        "alias": alias(self.secret, v.show_id, v.key) if self.secret else None,
                        "first_seen_at": v.first_seen,
                    }
                )
            if not v.segment_stored:
                new_segments.append(
                    {
                        "id": v.segment_id,
                        "shop_id": v.shop_id,
                        "show_id": v.show_id,
                        "viewer_key": v.key,
                        "member_id": v.member_id,
                        "device_id": v.device_id,
                        "started_at": v.segment_start,
                        "last_seen_at": v.last_seen,
                    }
                )
            else:
                extended.append({"b_id": v.segment_id, "b_last": v.last_seen})
            if not v.effective and v.watched_before + (v.last_seen - v.segment_start) >= EFFECTIVE:
                effective.append(EffectiveView(v.shop_id, v.show_id, v.key, v.member_id, v.last_seen))
        if new_viewers:
            await repository.add_viewers(session, new_viewers)  # an executemany, compiled once
        if new_segments:
            await repository.add_segments(session, new_segments)
        if extended:
            await repository.extend_segments(session, extended)
        batch.effective = await _mark_effective(session, effective)
        return batch

    def flushed(self, batch: Flush, now: datetime) -> None:
        """Settle a committed flush: what it wrote is stored; heartbeats that came since stay dirty."""
        for key, (version, segment_id) in batch.written.items():
            v = self.viewers.get(key)
            if v is None:
                continue
            v.stored = True
            if v.segment_id == segment_id:
                v.segment_stored = True
            if v.version == version:
                v.dirty = False
            if v.watched_before + (v.last_seen - v.segment_start) >= EFFECTIVE:
                v.effective = True
        for key, v in list(self.viewers.items()):
            if now - v.last_seen > SEGMENT_GAP * 4:
                del self.viewers[key]  # gone for minutes: a new heartbeat starts afresh


async def _mark_effective(session: AsyncSession, views: list[EffectiveView]) -> list[EffectiveView]:
    """Stamp the viewers' first effective view; returns those this call stamped (not already stamped elsewhere).

    One statement per show and chunk, however many viewers reach 10 s together (a show's opening minute):
    a statement per viewer would hold the event loop for as long as it takes to run thousands of them.
    """
    by_show: dict[str, dict[str, EffectiveView]] = {}
    for view in views:
        by_show.setdefault(view.show_id, {})[view.key] = view
    stamped: list[EffectiveView] = []
    for show_id, pending in by_show.items():
        keys = sorted(pending)
        for at in range(0, len(keys), _CHUNK):
            chunk = keys[at : at + _CHUNK]
            done = await repository.stamp_effective(session, show_id, {key: pending[key].at for key in chunk})
            stamped.extend(pending[key] for key in sorted(done))
    return stamped


_CHUNK = 500
