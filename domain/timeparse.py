"""Parsing instants from evidence records and challenge timelines, without the server's time zone.

Every instant comes back as an aware datetime. Strings keep the offset they were written with, so the
local calendar date of an activity is `instant.date()`; strings without an offset are read as UTC.
Nothing here raises on untrusted input: an instant that cannot be read, or that lies outside
1970-01-01 .. 9000-01-01 (a Unix time in the wrong unit, `1e300`, a year-9999 date whose end or
local day would overflow), comes back as None.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

from domain.jsvalues import is_number

# Unix times above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MILLISECONDS_ABOVE = 100_000_000_000
_APPLE_FORMAT = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-])(\d{2}):?(\d{2})$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MAX_DIGITS = 20  # an all-digit string longer than this is no Unix time (and int() of 5,000 digits raises)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Instants a record or a rule can mean; far enough from datetime's year 9999 that adding a duration
# or a day, or converting to any zone, cannot overflow.
EARLIEST = EPOCH
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_LATEST_SECONDS = (LATEST - EPOCH).total_seconds()


NOT_A_TIME = "is not a time (ISO-8601 or Unix seconds, 1970..9000)"  # how a reason says a value is none


def in_range(instant: datetime) -> bool:
    return EARLIEST <= instant < LATEST


def from_unix_seconds(seconds: float) -> datetime:
    """A Unix time already known to be in range (e.g. a parsed timeline)."""
    return EPOCH + timedelta(seconds=seconds)


def unix_instant(seconds: float) -> datetime | None:
    """Unix seconds as an instant; None when not finite or out of range."""
    if not math.isfinite(seconds) or not 0 <= seconds < _LATEST_SECONDS:
        return None
    return from_unix_seconds(seconds)


def from_unix_number(value: float) -> datetime | None:
    """A Unix time given as a number: seconds, or milliseconds when it is too large to be seconds."""
    if not math.isfinite(value):
        return None
    return unix_instant(value / 1000 if abs(value) >= _MILLISECONDS_ABOVE else value)


def parse_date_only(text: str) -> date | None:
    if not _DATE_ONLY.match(text):
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if EARLIEST.date() <= day < LATEST.date() else None


def parse_instant_text(text: str) -> datetime | None:
    """ISO-8601 (with `Z`, an offset, or none = UTC), date-only (UTC midnight), Apple Health's
    `YYYY-MM-DD HH:MM:SS +HHMM`, or an all-digit Unix time."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():  # ASCII only: str.isdigit() also takes superscripts, which int() refuses
        return from_unix_number(int(text)) if text.isascii() and len(text) <= _MAX_DIGITS else None
    apple = _APPLE_FORMAT.match(text)
    if apple:
        day, clock, sign, hours, minutes = apple.groups()
        text = f"{day}T{clock}{sign}{hours}:{minutes}"
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed if in_range(parsed) else None
    except (ValueError, OverflowError):  # an offset pushing year 1 or 9999 over the edge overflows
        return None


def parse_instant(value: object) -> datetime | None:
    if isinstance(value, str):
        return parse_instant_text(value)
    if is_number(value):
        return from_unix_number(float(value))
    return None


def to_unix_seconds(instant: datetime) -> int:
    return int(instant.timestamp() // 1)
