"""Metric values of one activity, condition checks and anti-cheat scores (spec/evaluation.md §3.5)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from domain.rule_vocabulary import ACCUMULATING_FITNESS_METRICS
from domain.rules import Condition
from streams.evaluation.activities import Activity

_GPS_JUMP_KM = 0.3
_EARTH_RADIUS_KM = 6371.0
_HR_BANDS = {"run": (110, 200), "cycle": (100, 190), "swim": (90, 180), "walk": (80, 160)}
_OTHER_HR_BAND = (70, 200)

# Metrics that accumulate over activities: a ">=" / ">" condition on them is a target for the whole
# period (summed), not a bar every single activity has to clear (spec §8.3).
ADDITIVE_METRICS = ACCUMULATING_FITNESS_METRICS
ACCUMULATING_OPS = frozenset({">=", ">"})

_TYPED_DISTANCE = {
    "walking_km": "walk", "hiking_km": "hike", "rowing_km": "rowing", "cycling_km": "cycle",
    "swimming_km": "swim", "swim_distance_km": "swim",
}


def _haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def has_gps_track(activity: Activity) -> bool:
    return activity.gps_path is not None and len(activity.gps_path) >= 3


def gps_jumps(activity: Activity) -> int:
    path = activity.gps_path or ()
    return sum(1 for a, b in zip(path, path[1:], strict=False) if _haversine_km(a, b) > _GPS_JUMP_KM)


def gps_continuity(activity: Activity) -> float:
    """Share of consecutive point pairs at most 0.3 km apart; 0 without a track of 3 points."""
    if not has_gps_track(activity):
        return 0.0
    pairs = len(activity.gps_path or ()) - 1
    return (pairs - gps_jumps(activity)) / pairs


def has_hr_data(activity: Activity) -> bool:
    return bool(activity.avg_hr_bpm) and bool(activity.duration_min)


def hr_consistency(activity: Activity) -> float:
    if not has_hr_data(activity):
        return 0.0
    low, high = _HR_BANDS.get(activity.type, _OTHER_HR_BAND)
    return 1.0 if low <= (activity.avg_hr_bpm or 0) <= high else 0.3


def _duration(activity: Activity) -> float | None:
    if activity.duration_min is not None:
        return activity.duration_min
    if activity.end > activity.start and not activity.daily_total:  # a day total spans its day, it lasts nothing
        return float(math.trunc((activity.end - activity.start).total_seconds() / 60))
    return None


def _typed(activity_type: str, field: Callable[[Activity], float | None]) -> Callable[[Activity], float | None]:
    return lambda a: (field(a) or 0.0) if a.type == activity_type else 0.0


def _pace(a: Activity) -> float | None:
    if not a.duration_min or a.distance_km is None or a.distance_km <= 0:
        return None
    return a.duration_min / a.distance_km


def _speed(a: Activity) -> float | None:
    if not a.duration_min or a.distance_km is None or a.distance_km <= 0:
        return None
    return a.distance_km / (a.duration_min / 60)


_METRICS: dict[str, Callable[[Activity], float | None]] = {
    "distance_km": lambda a: a.distance_km,
    "duration_min": _duration,
    "yoga_min": _typed("yoga", lambda a: a.duration_min),
    # hiit records normalise to crossfit, so both names read crossfit minutes.
    "hiit_min": _typed("crossfit", lambda a: a.duration_min),
    "crossfit_min": _typed("crossfit", lambda a: a.duration_min),
    "active_minutes": lambda a: a.duration_min or 0.0,
    "exercise_time": lambda a: (
        a.exercise_minutes if a.exercise_minutes is not None else (a.duration_min or 0.0)
    ),
    "avg_pace_min_per_km": _pace,
    "avg_speed_kmh": _speed,
    "elev_gain_m": lambda a: a.elev_gain_m or 0.0,
    "avg_hr_bpm": lambda a: a.avg_hr_bpm,
    "max_hr_bpm": lambda a: a.max_hr_bpm,
    "steps_count": lambda a: a.steps_count,
    "calories": lambda a: a.calories,
    "gps_continuity_score": gps_continuity,
    "hr_activity_consistency": hr_consistency,
    "strength_sessions": lambda a: (a.sessions or 1.0) if a.type == "strength" else 0.0,
}
_METRICS.update({name: _typed(kind, lambda a: a.distance_km) for name, kind in _TYPED_DISTANCE.items()})


def metric_value(activity: Activity, metric: str) -> float | None:
    """The metric's value for one activity; None when the activity cannot say (the condition fails)."""
    reader = _METRICS.get(metric)
    return reader(activity) if reader else None


def is_known_metric(metric: str) -> bool:
    return metric in _METRICS


def metric_total(activities: Iterable[Activity], metric: str) -> float:
    return sum(metric_value(a, metric) or 0.0 for a in activities)


def compare(left: float | None, op: str, right: float | None) -> bool:
    if left is None or right is None:
        return False
    if op == ">=":
        return left >= right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    if op == "<":
        return left < right
    if op == "==":
        return abs(left - right) < 1e-9
    return False


def holds(activity: Activity, condition: Condition) -> bool:
    return compare(metric_value(activity, condition.metric), condition.op, condition.value)


def is_accumulating(condition: Condition) -> bool:
    return condition.metric in ADDITIVE_METRICS and condition.op in ACCUMULATING_OPS
