"""Instants of the track and export formats, always timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone


def parse_iso_instant(text: str) -> datetime | None:
    """ISO-8601 with `Z` or an offset; a time without one is UTC (TCX/GPX times are UTC by spec)."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def offset_between(local: datetime, utc: datetime) -> timezone:
    """The UTC offset that turns `utc` into `local` (both naive), to the nearest quarter hour."""
    quarters = round((local - utc).total_seconds() / 900)
    return timezone(timedelta(minutes=15 * quarters))
