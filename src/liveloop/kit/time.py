"""Time helpers: UTC everywhere, local time only at the edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values from SQLite are UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


def is_valid_zone(name: str) -> bool:
    try:
        zone(name)
    except ValueError:
        return False
    return True


def local_date(value: datetime, tz: str) -> date:
    return as_utc(value).astimezone(zone(tz)).date()


def week_start(value: datetime, tz: str) -> date:
    """Monday of the ISO week that ``value`` falls in, in time zone ``tz``."""
    day = local_date(value, tz)
    return day - timedelta(days=day.weekday())


def week_start_utc(value: datetime, tz: str) -> datetime:
    """The UTC instant at which the week containing ``value`` (Monday 00:00 in ``tz``) began."""
    day = week_start(value, tz)
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)


def local_day_bounds(value: datetime, tz: str) -> tuple[datetime, datetime]:
    """UTC start and end of the calendar day containing ``value`` in ``tz``."""
    day = local_date(value, tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def add_months(value: datetime, months: int) -> datetime:
    month_index = value.month - 1 + months
    year = value.year + month_index // 12
    month = month_index % 12 + 1
    for day in (value.day, 30, 29, 28):
        try:
            return value.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")
