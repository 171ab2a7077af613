"""Fitness evidence records normalised to activities (spec/evaluation.md §3.3).

Accepts the original record shapes (connectors, uploads, legacy examples) and the fields the
rewritten providers add (offset-bearing `start`/`startTime`, `calories_kcal`, Fitbit daily steps).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from domain.jsvalues import as_mapping, brief, is_number
from domain.timeparse import parse_date_only, parse_instant_text, unix_instant

_KJ_PER_KCAL = 4.184

_TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "run": ("run", "virtualrun", "trail_run", "trailrun", "running"),
    "walk": ("walk", "distance", "walking"),
    "hike": ("hike", "hiking", "trail", "mountaineering"),
    "cycle": ("cycle", "ride", "virtualride", "ebikeride", "cycling", "bike"),
    "swim": ("swim", "swimming", "openwater", "openwatersw"),
    "strength": (
        "strength", "weighttraining", "weight_training", "weights", "strength_training",
        "functional_training",
    ),
    "yoga": ("yoga", "pilates", "flexibility"),
    "crossfit": (
        "crossfit", "crosstraining", "cross_training", "hiit", "highintensityintervaltraining",
        "mixed_cardio", "mixedcardio", "workout", "circuit_training",
    ),
    "rowing": ("rowing", "rowing_machine", "indoor_rowing", "indoorrowing"),
    "exercise_time": ("exercise_time",),
    "calories": ("calories", "active_energy", "calorie_burn"),
    "steps": ("steps",),
}
CANONICAL_TYPES: dict[str, str] = {raw: canonical for canonical, raws in _TYPE_ALIASES.items() for raw in raws}


class Activity(NamedTuple):
    """One normalised record (a named tuple: one is built per record, see verdict.py)."""

    type: str
    start: datetime
    end: datetime
    # The calendar day a date-only record (a daily total) stands for, whatever the zone.
    local_day: date | None = None
    distance_km: float | None = None
    duration_min: float | None = None
    avg_hr_bpm: float | None = None
    max_hr_bpm: float | None = None
    elev_gain_m: float | None = None
    steps_count: float | None = None
    calories: float | None = None
    sessions: float | None = None
    exercise_minutes: float | None = None
    gps_path: tuple[tuple[float, float], ...] | None = None
    provider: str = ""
    record_id: str | None = None
    # A day's total (`period: "day"`, or a date-only record): it already holds the day's activities.
    daily_total: bool = False

    @property
    def day_key(self) -> date:
        """The activity's own calendar day: the date as written in its start (local for an
        offset-bearing string, UTC for Unix times, the given date for date-only records)."""
        return self.local_day if self.local_day is not None else self.start.date()


def canonical_type(raw: Mapping[str, Any]) -> str | None:
    value = raw.get("type")
    if isinstance(value, str):
        return CANONICAL_TYPES.get(value.strip().lower())
    # Fitbit's daily steps series carries no type: {dateTime, value}.
    if value is None and isinstance(raw.get("dateTime"), str) and is_number(raw.get("value")):
        return "steps"
    return None


class Unusable(ValueError):
    """A record of a known activity type that cannot be counted; the message says why."""


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _instant(raw: Mapping[str, Any], key: str) -> datetime:
    instant = parse_instant_text(raw[key])
    if instant is None:
        raise Unusable(f"{key} {brief(raw[key])} is not a time from 1970 to 9000")
    return instant


def _unix(raw: Mapping[str, Any], key: str) -> datetime:
    instant = unix_instant(float(raw[key]))
    if instant is None:
        raise Unusable(f"{key} {brief(raw[key])} is not Unix seconds from 1970 to 9000")
    return instant


def _resolve_start(raw: Mapping[str, Any]) -> tuple[datetime, date | None] | None:
    for key in ("start", "startTime"):
        if isinstance(raw.get(key), str):
            return _instant(raw, key), None
    start_ts = raw.get("start_ts")
    if is_number(start_ts) and start_ts > 0:
        return _unix(raw, "start_ts"), None
    for key in ("date", "dateTime"):
        text = raw.get(key)
        if not isinstance(text, str):
            continue
        day = parse_date_only(text)
        if day is not None:
            return _day_start(day), day
        return _instant(raw, key), None
    return None


def _resolve_end(
    raw: Mapping[str, Any], start: datetime, local_day: date | None, duration_min: float | None
) -> datetime:
    for key in ("end", "endTime"):
        if isinstance(raw.get(key), str):
            return _instant(raw, key)
    end_ts = raw.get("end_ts")
    if is_number(end_ts) and end_ts > 0:
        return _unix(raw, "end_ts")
    if duration_min is not None and duration_min > 0:
        return start + timedelta(minutes=duration_min)
    if local_day is not None:  # a daily total covers its whole day
        return start + timedelta(days=1, seconds=-1)
    return start


def _gps_path(value: object) -> tuple[tuple[float, float], ...] | None:
    if not isinstance(value, list):
        return None
    points = []
    for point in value:
        if isinstance(point, list | tuple) and len(point) >= 2 and is_number(point[0]) and is_number(point[1]):
            points.append((float(point[0]), float(point[1])))
    return tuple(points)


def _record_id(record: Mapping[str, Any]) -> str | None:
    for key in ("activity_id", "logId", "id"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
        if value.__class__ is int:
            return str(value)
    return None


def read_activity(raw: object, provider: str = "") -> Activity | None:
    """One record as an Activity; None when it is no activity (no object, no recognised type, no
    start at all). Raises `Unusable` for an activity that cannot be counted: a time that cannot be
    read or lies outside 1970..9000 (a millisecond `start_ts`), a number that is not finite or not in
    0..1e9."""
    record = as_mapping(raw)
    if record is None:
        return None
    activity_type = canonical_type(record)
    if activity_type is None:
        return None
    resolved = _resolve_start(record)
    if resolved is None:
        return None
    start, local_day = resolved

    numbers = _numbers(record)
    distance_km = numbers.get("distance_km")
    if distance_km is None and (metres := numbers.get("distance_m")) is not None:
        distance_km = metres / 1000
    duration_min = numbers.get("duration_min")
    if duration_min is None and (seconds := numbers.get("duration_s")) is not None:
        duration_min = seconds / 60
    calories = _first(numbers, "calories", "calories_kcal")
    if calories is None and (kilojoules := numbers.get("kilojoules")) is not None:
        calories = kilojoules / _KJ_PER_KCAL
    steps = _first(numbers, "steps_count", "steps")
    if steps is None and record.get("type") is None:
        steps = numbers.get("value")

    period = record.get("period")
    if period == "day" and isinstance(record.get("date"), str):
        local_day = parse_date_only(record["date"]) or local_day
    return Activity(
        type=activity_type,
        start=start,
        end=_resolve_end(record, start, local_day, duration_min),
        local_day=local_day,
        distance_km=distance_km,
        duration_min=duration_min,
        avg_hr_bpm=_first(numbers, "avg_hr_bpm", "average_heartrate"),
        max_hr_bpm=_first(numbers, "max_hr_bpm", "max_heartrate"),
        elev_gain_m=_first(numbers, "elev_gain_m", "total_elevation_gain"),
        steps_count=steps,
        calories=calories,
        sessions=numbers.get("sessions"),
        exercise_minutes=numbers.get("exercise_minutes"),
        gps_path=_gps_path(record.get("gps_path")),
        provider=provider,
        record_id=_record_id(record),
        daily_total=period == "day" or (period != "activity" and local_day is not None),
    )


def normalize_activity(raw: object) -> Activity | None:
    """One record as an Activity, or None when it is no activity or cannot be counted."""
    try:
        return read_activity(raw)
    except Unusable:
        return None


# every numeric field an activity reads; a record has a few of them, so it is read once (a hot path)
_NUMERIC_FIELDS = frozenset({
    "distance_km", "distance_m", "duration_min", "duration_s", "calories", "calories_kcal", "kilojoules",
    "steps_count", "steps", "value", "avg_hr_bpm", "average_heartrate", "max_hr_bpm", "max_heartrate",
    "elev_gain_m", "total_elevation_gain", "sessions", "exercise_minutes",
})
# No step count, distance in metres, duration in seconds or energy of one record is larger; bounding
# them keeps every sum finite (two 1e308 step values would add up to infinity).
MAX_RECORD_NUMBER = 1e9


def _numbers(record: Mapping[str, Any]) -> dict[str, float]:
    """The record's numeric fields that hold a JSON number (numeric strings do not count), as floats."""
    numbers = {}
    for key, value in record.items():
        if key not in _NUMERIC_FIELDS or value.__class__ not in (int, float):  # bool is not counted
            continue
        if not (is_number(value) and 0 <= value <= MAX_RECORD_NUMBER):
            raise Unusable(f"{key} {brief(value)} is not a number from 0 to {MAX_RECORD_NUMBER:g}")
        numbers[key] = float(value)
    return numbers


def _first(numbers: dict[str, float], preferred: str, fallback: str) -> float | None:
    value = numbers.get(preferred)
    return value if value is not None else numbers.get(fallback)
