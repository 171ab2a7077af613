"""Garmin exports (spec/evidence.md §5.4): TCX, GPX, and Garmin Connect JSON.

TCX: one record per Activity; duration, distance and energy are the sums over its laps (the
device's own totals, so a slice of a longer activity whose cumulative distance starts at 42 km
still counts only its own distance); elevation gain from the trackpoints' altitudes. TCX and GPX
times are UTC, so their records carry the offset +00:00. GPX: one record per track; distance is
the haversine length within each segment (the jump between segments is not distance covered).
Connect JSON: an activity list (`activities/search/activities`), one activity detail
(`activity-service/activity/{id}`), or a daily steps array (`calendarDate`/`totalSteps`, or the
original's `date`/`steps`); the local offset of an activity is `startTimeLocal - startTimeGMT`.
A number that is not finite, or a track point outside ±90/±180 (domain.evidence_records), makes the
whole file a MalformedUpload: no device writes one, and every distance computed from it would be wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, BinaryIO

from domain.evidence_records import position_problem
from domain.untrusted import UntrustedInput, loads
from indexers.providers.uploads import safexml
from indexers.providers.uploads.activity_types import activity_type
from indexers.providers.uploads.errors import MalformedUpload, WrongKind
from indexers.providers.uploads.record import DAY, Record, local_midnight, make_record
from indexers.providers.uploads.timeparse import offset_between, parse_iso_instant

PROVIDER = "garmin"
EARTH_RADIUS_M = 6_371_000.0

def elevation_gain(altitudes: Iterable[float]) -> float:
    gain = 0.0
    previous: float | None = None
    for altitude in altitudes:
        if previous is not None and altitude > previous:
            gain += altitude - previous
        previous = altitude
    return gain


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MalformedUpload(f"{what}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise MalformedUpload(f"{what}: {text[:40]!r} is not a finite number")
    return value


# --- TCX -------------------------------------------------------------------------------------------


@dataclass
class _TcxActivity:
    sport: str
    started: datetime | None = None
    seconds: float = 0.0
    metres: float = 0.0
    kcal: float = 0.0
    heart_weighted: float = 0.0  # sum of lap average HR x lap seconds
    heart_seconds: float = 0.0
    heart_max: float | None = None
    steps: float | None = None
    last_time: datetime | None = None
    altitudes: list[float] = field(default_factory=list)
    lap_seconds: float = 0.0
    lap_heart: float | None = None


def _tcx_record(activity: _TcxActivity) -> Record | None:
    if activity.started is None:
        return None
    end = activity.last_time or activity.started + timedelta(seconds=activity.seconds)
    return make_record(
        provider=PROVIDER, activity_id=f"tcx:{int(activity.started.timestamp())}",
        activity_type=activity_type(activity.sport), start=activity.started, end=end,
        duration_s=activity.seconds, source_device="garmin_tcx", distance_m=activity.metres,
        elev_gain_m=elevation_gain(activity.altitudes), steps=activity.steps,
        avg_hr_bpm=activity.heart_weighted / activity.heart_seconds if activity.heart_seconds else None,
        max_hr_bpm=activity.heart_max, calories_kcal=activity.kcal,
    )


def parse_tcx(stream: BinaryIO, what: str = "TCX file") -> list[Record]:
    records: list[Record] = []
    path: list[str] = []
    activity: _TcxActivity | None = None
    for event, name, attrs, text in safexml.iter_elements(stream, what):
        if event == "start":
            path.append(name)
            if name == "Activity":
                activity = _TcxActivity(sport=attrs.get("Sport", "Other"))
            elif name == "Lap" and activity is not None:
                activity.lap_seconds, activity.lap_heart = 0.0, None
                if activity.started is None and "StartTime" in attrs:
                    activity.started = parse_iso_instant(attrs["StartTime"])
            continue
        path.pop()
        if activity is None:
            continue
        parent = path[-1] if path else ""
        grandparent = path[-2] if len(path) > 1 else ""
        if name == "Activity":
            record = _tcx_record(activity)
            if record is not None:
                records.append(record)
            activity = None
        elif name == "Id" and parent == "Activity":
            activity.started = parse_iso_instant(text) or activity.started
        elif parent == "Lap":
            if name == "TotalTimeSeconds":
                activity.lap_seconds = _float(text, what)
                activity.seconds += activity.lap_seconds
            elif name == "DistanceMeters":
                activity.metres += _float(text, what)
            elif name == "Calories":
                activity.kcal += _float(text, what)
        elif name == "Lap":
            if activity.lap_heart is not None:
                activity.heart_weighted += activity.lap_heart * activity.lap_seconds
                activity.heart_seconds += activity.lap_seconds
        elif name == "Value" and grandparent == "Lap":
            if parent == "AverageHeartRateBpm":
                activity.lap_heart = _float(text, what)
            elif parent == "MaximumHeartRateBpm":
                activity.heart_max = max(activity.heart_max or 0.0, _float(text, what))
        elif name == "Steps" and parent == "LX":
            activity.steps = (activity.steps or 0) + _float(text, what)
        elif parent == "Trackpoint":
            if name == "Time":
                activity.last_time = parse_iso_instant(text) or activity.last_time
            elif name == "AltitudeMeters":
                activity.altitudes.append(_float(text, what))
    return records


# --- GPX -------------------------------------------------------------------------------------------


@dataclass
class _GpxTrack:
    kind: str = ""
    first_time: datetime | None = None
    last_time: datetime | None = None
    metres: float = 0.0
    altitudes: list[float] = field(default_factory=list)
    heart_rates: list[float] = field(default_factory=list)
    previous_point: tuple[float, float] | None = None


def _gpx_record(track: _GpxTrack) -> Record | None:
    if track.first_time is None or track.last_time is None:
        return None
    return make_record(
        provider=PROVIDER, activity_id=f"gpx:{int(track.first_time.timestamp())}",
        activity_type=activity_type(track.kind) if track.kind else "other",
        start=track.first_time, end=track.last_time,
        duration_s=(track.last_time - track.first_time).total_seconds(), source_device="garmin_gpx",
        distance_m=track.metres, elev_gain_m=elevation_gain(track.altitudes),
        avg_hr_bpm=sum(track.heart_rates) / len(track.heart_rates) if track.heart_rates else None,
        max_hr_bpm=max(track.heart_rates) if track.heart_rates else None,
    )


def parse_gpx(stream: BinaryIO, what: str = "GPX file") -> list[Record]:
    records: list[Record] = []
    path: list[str] = []
    track: _GpxTrack | None = None
    for event, name, attrs, text in safexml.iter_elements(stream, what):
        if event == "start":
            path.append(name)
            if name == "trk":
                track = _GpxTrack()
            elif name == "trkseg" and track is not None:
                track.previous_point = None
            elif name == "trkpt" and track is not None:
                point = (_float(attrs.get("lat", ""), what), _float(attrs.get("lon", ""), what))
                problem = position_problem(*point)
                if problem:
                    raise MalformedUpload(f"{what}: a track point's {problem}")
                if track.previous_point is not None:
                    track.metres += haversine_m(*track.previous_point, *point)
                track.previous_point = point
            continue
        path.pop()
        if track is None:
            continue
        parent = path[-1] if path else ""
        if name == "trk":
            record = _gpx_record(track)
            if record is not None:
                records.append(record)
            track = None
        elif name == "type" and parent == "trk":
            track.kind = text
        elif name == "time" and parent == "trkpt":
            instant = parse_iso_instant(text)
            if instant is not None:
                track.first_time = track.first_time or instant
                track.last_time = instant
        elif name == "ele" and parent == "trkpt":
            track.altitudes.append(_float(text, what))
        elif name == "hr" and "trkpt" in path:
            track.heart_rates.append(_float(text, what))
    return records


# --- Garmin Connect JSON -----------------------------------------------------------------------------


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _connect_times(source: Mapping[str, Any]) -> tuple[datetime, timezone] | None:
    local_text, gmt_text = source.get("startTimeLocal"), source.get("startTimeGMT")
    if not isinstance(gmt_text, str):
        return None
    try:
        gmt = datetime.fromisoformat(gmt_text.replace(" ", "T"))
        local = datetime.fromisoformat(local_text.replace(" ", "T")) if isinstance(local_text, str) else gmt
    except ValueError:
        return None
    offset = offset_between(local.replace(tzinfo=None), gmt.replace(tzinfo=None))
    return gmt.replace(tzinfo=UTC).astimezone(offset), offset


def connect_activity_record(activity: Mapping[str, Any]) -> Record:
    """An activity of the list, or an activity detail (whose numbers are under `summaryDTO`)."""
    activity_id = activity.get("activityId")
    summary = activity.get("summaryDTO") if isinstance(activity.get("summaryDTO"), Mapping) else activity
    type_info = activity.get("activityTypeDTO") or activity.get("activityType") or {}
    type_key = type_info.get("typeKey", "") if isinstance(type_info, Mapping) else ""
    times = _connect_times(summary)
    if activity_id is None or times is None:
        raise MalformedUpload(f"Garmin Connect activity {activity_id}: no activityId or startTimeGMT")
    start, _offset = times
    duration = _number(summary.get("duration"))
    return make_record(
        provider=PROVIDER, activity_id=f"connect:{activity_id}", activity_type=activity_type(type_key),
        start=start, end=start + timedelta(seconds=duration or 0), duration_s=duration,
        source_device="garmin_connect", distance_m=_number(summary.get("distance")),
        elev_gain_m=_number(summary.get("elevationGain")), steps=_number(summary.get("steps")),
        avg_hr_bpm=_number(summary.get("averageHR")), max_hr_bpm=_number(summary.get("maxHR")),
        calories_kcal=_number(summary.get("calories")),
    )


def daily_steps_record(day_entry: Mapping[str, Any]) -> Record:
    """`{calendarDate, totalSteps}` (Garmin Connect) or the original's `{date, steps}`; the file has
    no time zone, so the day starts at midnight UTC and `date` names the day."""
    day_text = day_entry.get("calendarDate") or day_entry.get("date")
    steps = day_entry.get("totalSteps", day_entry.get("steps"))
    try:
        day = date.fromisoformat(str(day_text)[:10])
    except ValueError:
        raise MalformedUpload(f"Garmin daily steps: {day_text!r} is not a date") from None
    start = local_midnight(day, UTC)
    return make_record(
        provider=PROVIDER, activity_id=f"day:steps:{day.isoformat()}", activity_type="steps", start=start,
        end=start + DAY - timedelta(seconds=1), duration_s=None, source_device="garmin_daily",
        period="day", day=day, steps=_number(steps) or 0,
    )


def parse_connect_json(stream: BinaryIO, what: str = "Garmin Connect JSON") -> list[Record]:
    try:
        payload = loads(stream.read())
    except UntrustedInput as exc:
        raise MalformedUpload(f"{what} is not acceptable JSON: {exc}") from None
    if isinstance(payload, Mapping) and "activityId" in payload:
        return [connect_activity_record(payload)]
    if isinstance(payload, Mapping) and isinstance(payload.get("activities"), list):
        payload = payload["activities"]
    if not isinstance(payload, list) or not all(isinstance(item, Mapping) for item in payload):
        raise WrongKind(f"{what}: expected an activity, an activity list or a daily steps array")
    records = []
    for item in payload:
        if "activityId" in item:
            records.append(connect_activity_record(item))
        elif "calendarDate" in item or "date" in item:
            records.append(daily_steps_record(item))
        else:
            raise WrongKind(f"{what}: an entry has neither activityId nor calendarDate/date")
    return records
