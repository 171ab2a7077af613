"""Parsing instants from evidence records and challenge timelines, without the server's time zone.

Every instant comes back as an aware datetime. Strings keep the offset they were written with, so the
local calendar date of an activity is `instant.date()`; strings without an offset are read as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from domain.jsvalues import is_number

# Unix times above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MILLISECONDS_ABOVE = 100_000_000_000
_APPLE_FORMAT = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-])(\d{2}):?(\d{2})$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def from_unix_seconds(seconds: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


def from_unix_number(value: float) -> datetime:
    """A Unix time given as a number: seconds, or milliseconds when it is too large to be seconds."""
    return from_unix_seconds(value / 1000 if abs(value) >= _MILLISECONDS_ABOVE else value)


def parse_date_only(text: str) -> date | None:
    if not _DATE_ONLY.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_instant_text(text: str) -> datetime | None:
    """ISO-8601 (with `Z`, an offset, or none = UTC), date-only (UTC midnight), Apple Health's
    `YYYY-MM-DD HH:MM:SS +HHMM`, or an all-digit Unix time."""
    text = text.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return _unix_number_or_none(int(text)) if len(text) <= 20 else None
    apple = _APPLE_FORMAT.match(text)
    if apple:
        day, clock, sign, hours, minutes = apple.groups()
        text = f"{day}T{clock}{sign}{hours}:{minutes}"
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_instant(value: object) -> datetime | None:
    """An instant from a string or a number; None when it is neither, unparsable, or beyond what a
    datetime holds (years 1 to 9999)."""
    if isinstance(value, str):
        return parse_instant_text(value)
    if is_number(value):
        return _unix_number_or_none(float(value))
    return None


def _unix_number_or_none(value: float) -> datetime | None:
    try:
        return from_unix_number(value)
    except (OverflowError, ValueError):
        return None


def to_unix_seconds(instant: datetime) -> int:
    return int(instant.timestamp() // 1)
