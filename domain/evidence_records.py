"""Evidence records that could have happened: one check for every producer of evidence records (the
upload parsers, the provider collector, `lc ingest evidence`), so impossible data never becomes evidence.

What is impossible, field by field (a key that is absent or null is not checked):
- any value no stage could store or compute with: a non-finite number, an integer beyond 260 bits,
  a string holding NUL or a lone surrogate, nesting deeper than `MAX_RECORD_DEPTH` (domain.untrusted);
- a negative duration, distance, elevation gain, count (steps, kills, deaths, ...), energy or heart
  rate, or a non-number in one of those fields; a heart rate above `MAX_HEART_RATE`;
- an instant outside [1970-01-01, 2100-01-01) UTC (`start_ts`, `end_ts`, a match's `start_time`,
  `end_time`, and the ISO `start`/`end`), and time running backwards (an end before its start).
A record with any of these is dropped with a note naming it and the reason; the rest of the evidence
stands (one broken activity in a year of them is not a reason to refuse the year). Positions are not
part of the records: a parser that reads coordinates (GPX track points) checks each with
`position_problem`, and a file holding an impossible position is refused whole, because every
distance computed from that track would be wrong (indexers/providers/uploads/garmin.py).

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from domain.untrusted import UntrustedInput, check_value

EARLIEST_UNIX = 0  # 1970-01-01T00:00:00Z
LATEST_UNIX = 4_102_444_800  # 2100-01-01T00:00:00Z
EARLIEST = datetime.fromtimestamp(EARLIEST_UNIX, UTC)
LATEST = datetime.fromtimestamp(LATEST_UNIX, UTC)
MAX_HEART_RATE = 300
MAX_RECORD_DEPTH = 16

NON_NEGATIVE = (
    "duration_s", "duration_min", "duration", "game_duration", "distance_m", "distance_km", "distance",
    "elev_gain_m", "steps", "calories_kcal", "avg_speed_kmh", "avg_hr_bpm", "max_hr_bpm",
    "kills", "deaths", "assists", "headshots", "mvps",
)
HEART_RATES = ("avg_hr_bpm", "max_hr_bpm")
UNIX_SECONDS_PAIRS = (("start_ts", "end_ts"), ("start_time", "end_time"))
ISO_PAIRS = (("start", "end"),)
LABEL_KEYS = ("activity_id", "match_id", "dateTime", "startTime", "date")


class DroppedRecord(NamedTuple):
    label: str  # the record's id (activity_id, match_id, dateTime) or its position `#n`
    reason: str

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


class ScreenedRecords(NamedTuple):
    kept: list[Any]
    dropped: list[DroppedRecord]


def position_problem(latitude: float, longitude: float) -> str | None:
    """Why a (latitude, longitude) in degrees cannot be a place on Earth, or None."""
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return f"position ({latitude}, {longitude}) is not a finite number"
    if not -90.0 <= latitude <= 90.0:
        return f"latitude {latitude} is outside ±90"
    if not -180.0 <= longitude <= 180.0:
        return f"longitude {longitude} is outside ±180"
    return None


def plausible_unix_seconds(value: float) -> bool:
    return EARLIEST_UNIX <= value < LATEST_UNIX


def plausible_instant(instant: datetime) -> bool:
    """An aware instant within [1970, 2100) UTC."""
    return EARLIEST <= instant < LATEST


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def record_problem(record: object) -> str | None:
    """Why `record` cannot be evidence (see the module docstring), or None when it can."""
    if not isinstance(record, Mapping):
        return f"a record is a JSON object, got {type(record).__name__}"
    try:
        check_value(record, max_depth=MAX_RECORD_DEPTH)
    except UntrustedInput as exc:
        return str(exc)
    for key in NON_NEGATIVE:
        value = record.get(key)
        if value is None:
            continue
        if not _is_number(value):
            return f"{key} {str(value)[:40]!r} is not a number"
        if value < 0:
            return f"{key} {value} is negative"
    for key in HEART_RATES:
        value = record.get(key)
        if value is not None and value > MAX_HEART_RATE:
            return f"{key} {value} is above {MAX_HEART_RATE}"
    for start_key, end_key in UNIX_SECONDS_PAIRS:
        problem = _unix_pair_problem(record, start_key, end_key)
        if problem:
            return problem
    for start_key, end_key in ISO_PAIRS:
        problem = _iso_pair_problem(record, start_key, end_key)
        if problem:
            return problem
    return None


def _unix_pair_problem(record: Mapping[str, Any], start_key: str, end_key: str) -> str | None:
    start, end = record.get(start_key), record.get(end_key)
    for key, value in ((start_key, start), (end_key, end)):
        if value is not None and _is_number(value) and not plausible_unix_seconds(value):
            return f"{key} {value} is outside 1970..2100"
    if _is_number(start) and _is_number(end) and end < start:
        return f"{end_key} {end} is before {start_key} {start} (time running backwards)"
    return None


def _iso_instant(value: object) -> datetime | None:
    """An ISO-8601 instant (without an offset: UTC) of any year a datetime holds; None when unreadable."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        instant = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def _iso_pair_problem(record: Mapping[str, Any], start_key: str, end_key: str) -> str | None:
    instants: list[datetime | None] = []
    for key in (start_key, end_key):
        value = record.get(key)
        instant = _iso_instant(value)
        if instant is not None and not plausible_instant(instant):
            return f"{key} {value} is outside 1970..2100"
        instants.append(instant)
    start, end = instants
    if start is not None and end is not None and end < start:
        return f"{end_key} {record[end_key]} is before {start_key} {record[start_key]} (time running backwards)"
    return None


def record_label(record: object, index: int) -> str:
    if isinstance(record, Mapping):
        for key in LABEL_KEYS:
            value = record.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)[:80]
    return f"#{index}"


def screen_records(records: Sequence[Any]) -> ScreenedRecords:
    """The records that can be evidence, in their order, and a note for each one dropped."""
    kept: list[Any] = []
    dropped: list[DroppedRecord] = []
    for index, record in enumerate(records):
        problem = record_problem(record)
        if problem is None:
            kept.append(record)
        else:
            dropped.append(DroppedRecord(record_label(record, index), problem))
    return ScreenedRecords(kept, dropped)
