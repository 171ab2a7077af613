"""The normalized upload record (spec/evidence.md §5), one shape for every upload provider.

The original's upload keys come first, in its order (`provider`, `user_id`, `activity_id`, `type`,
`start_ts`, `end_ts`, `duration_s`, `distance_m`, `elev_gain_m`, `steps`, `avg_hr_bpm`,
`source_device`, `checksum`); the keys evaluation needs and the original lacked follow
(spec/evaluation.md §3.3, §8): `start`/`end` as ISO-8601 with the source's UTC offset (so the local
calendar day is known), `date` (the local day of a daily total), `period` (`day` for a daily total,
`activity` for one workout/session/track, so a reader can avoid counting an activity again inside
its day's total), `calories_kcal`, `max_hr_bpm`. Every key is always present (null when unknown).
"""

from __future__ import annotations

import hashlib
import math
from datetime import date, datetime, timedelta, timezone
from typing import Any

from indexers.providers.evidence_hash import js_stringify

Record = dict[str, Any]

METRES_PER_UNIT = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048, "cm": 0.01, "mm": 0.001}
KCAL_PER_UNIT = {"kcal": 1.0, "cal": 1.0, "kj": 1 / 4.184, "j": 1 / 4184}  # Apple's `Cal` is the kilocalorie

DAY = timedelta(days=1)


def js_round(value: float) -> int:
    """JS `Math.round` (halves toward +infinity), as the original rounded."""
    return math.floor(value + 0.5)


def _whole(value: float | None) -> int | None:
    """JS-rounded, or None for a missing or non-finite value (the record check drops what is impossible)."""
    if value is None or not math.isfinite(value):
        return None
    return js_round(value)


def _rounded(value: float | None, digits: int) -> float | int | None:
    if value is None or not math.isfinite(value):
        return None
    rounded = round(value, digits)
    return int(rounded) if rounded == int(rounded) else rounded


def to_metres(value: float, unit: str) -> float | None:
    factor = METRES_PER_UNIT.get(unit.strip().lower())
    return None if factor is None else value * factor


def to_kcal(value: float, unit: str) -> float | None:
    factor = KCAL_PER_UNIT.get(unit.strip().lower())
    return None if factor is None else value * factor


def unix_seconds(instant: datetime) -> int:
    return math.floor(instant.timestamp())


def iso(instant: datetime) -> str:
    """ISO-8601 with the instant's own offset, whole seconds (`2019-06-15T06:37:34-04:00`)."""
    return instant.isoformat(timespec="seconds")


def local_midnight(day: date, offset: timezone) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=offset)


def checksum(record: Record) -> str:
    """`0x` + SHA-256 of the record's JSON without `user_id` and `checksum`: the data's identity."""
    data = {key: value for key, value in record.items() if key not in ("user_id", "checksum")}
    return "0x" + hashlib.sha256(js_stringify(data).encode("utf-8")).hexdigest()


def make_record(
    *,
    provider: str,
    activity_id: str,
    activity_type: str,
    start: datetime,
    end: datetime,
    duration_s: float | None,
    source_device: str | None,
    period: str = "activity",
    day: date | None = None,
    distance_m: float | None = None,
    elev_gain_m: float | None = None,
    steps: float | None = None,
    avg_hr_bpm: float | None = None,
    max_hr_bpm: float | None = None,
    calories_kcal: float | None = None,
) -> Record:
    """One record in the shared key order; `start`/`end` must be timezone-aware."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError(f"{activity_id}: start and end need a UTC offset")
    record: Record = {
        "provider": provider,
        "user_id": None,
        "activity_id": activity_id,
        "type": activity_type,
        "start_ts": unix_seconds(start),
        "end_ts": unix_seconds(end),
        "duration_s": _whole(duration_s),
        "distance_m": _rounded(distance_m, 2),
        "elev_gain_m": _rounded(elev_gain_m, 2),
        "steps": _whole(steps),
        "avg_hr_bpm": _rounded(avg_hr_bpm, 1),
        "source_device": source_device,
        "checksum": None,
        "start": iso(start),
        "end": iso(end),
        "date": day.isoformat() if day is not None else None,
        "period": period,
        "calories_kcal": _rounded(calories_kcal, 2),
        "max_hr_bpm": _rounded(max_hr_bpm, 1),
    }
    record["checksum"] = checksum(record)
    return record


def with_user_id(record: Record, subject: str) -> Record:
    """The record with the original's `user_id`: `0x` + SHA-256 of the subject as submitted."""
    return {**record, "user_id": "0x" + hashlib.sha256(subject.encode("utf-8")).hexdigest()}
