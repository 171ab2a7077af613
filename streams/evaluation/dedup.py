"""Each activity counted once: duplicates within a provider, the same activity from two providers, and
a provider's activities inside its own daily totals (docs/compatibility.md E20-E22).

- Within one provider, records with the same record id, or the same start and type, are one record:
  the one with the most data is kept.
- Across providers, two activity records (not daily totals) are the same activity when they have the
  same type, start within `START_TOLERANCE` of each other, overlap in time (or, without a duration,
  start at the same instant) and, when both have a distance, their distances differ by at most
  `DISTANCE_TOLERANCE` (relative, or `DISTANCE_FLOOR_KM`). The closest pairs are joined first and an
  activity takes at most one record of each provider. Of each group the record of the provider first in
  `PROVIDER_PRIORITY` is kept; its missing fields are filled from the others in that order.
- A daily total already holds the day's activities: see `count_once`.

Everything is decided from the content, never from the order the records arrived in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

from streams.evaluation.activities import Activity

# Device makers' own services first (they recorded the activity), then the services that import it
# from them (Strava imports Garmin and Apple Watch activities; Google Fit aggregates phone apps).
PROVIDER_PRIORITY = ("garmin", "apple_health", "apple", "fitbit", "strava", "googlefit")
START_TOLERANCE = timedelta(minutes=5)
DISTANCE_TOLERANCE = 0.10
DISTANCE_FLOOR_KM = 0.2

_METRIC_FIELDS = (
    "distance_km", "duration_min", "steps_count", "calories", "elev_gain_m", "sessions", "exercise_minutes",
    "avg_hr_bpm", "max_hr_bpm",
)
_FILLABLE = (*_METRIC_FIELDS, "gps_path")
_TOLERANCE_SECONDS = START_TOLERANCE.total_seconds()


def _rank(provider: str) -> tuple[int, str]:
    try:
        return PROVIDER_PRIORITY.index(provider), provider
    except ValueError:
        return len(PROVIDER_PRIORITY), provider


def _content_key(a: Activity) -> tuple[Any, ...]:
    """A total order on activities that prefers the one with more data, then larger values; two
    activities with the same key are equal in every field."""
    values = [getattr(a, name) for name in _METRIC_FIELDS]
    return (
        -sum(value is not None for value in values),
        *(-(value if value is not None else -1.0) for value in values),
        -a.end.timestamp(), a.start.timestamp(), a.start.utcoffset() or timedelta(0),
        a.local_day.toordinal() if a.local_day is not None else -1, a.type, a.record_id or "",
        a.daily_total, a.gps_path or (),
    )


def _keep_one(activities: Iterable[Activity], key_of: Callable[[Activity], Any]) -> list[Activity]:
    """One activity per key (None: always kept), the one with the most data."""
    kept: dict[Any, Activity] = {}
    rest = []
    for activity in activities:
        key = key_of(activity)
        if key is None:
            rest.append(activity)
            continue
        found = kept.get(key)
        if found is None or _content_key(activity) < _content_key(found):
            kept[key] = activity
    return [*kept.values(), *rest]


def within_provider(activities: list[Activity]) -> list[Activity]:
    """Records delivered twice by one provider: the same record id, or the same start and type."""
    if len(activities) < 2:
        return activities
    ids = [a.record_id for a in activities if a.record_id is not None]
    if len(set(ids)) == len(ids) and len({(a.start, a.type, a.daily_total) for a in activities}) == len(activities):
        return activities  # the usual case: nothing delivered twice
    by_id = _keep_one(activities, lambda a: a.record_id)
    return _keep_one(by_id, lambda a: (a.start, a.type, a.daily_total))


def _distances_similar(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return True
    return abs(a - b) <= max(DISTANCE_FLOOR_KM, DISTANCE_TOLERANCE * max(a, b))


def _same_activity(a: Activity, b: Activity) -> bool:
    if a.type != b.type or abs((a.start - b.start).total_seconds()) > _TOLERANCE_SECONDS:
        return False
    if a.end > a.start and b.end > b.start:
        overlapping = max(a.start, b.start) < min(a.end, b.end)
    else:
        overlapping = a.start == b.start
    return overlapping and _distances_similar(a.distance_km, b.distance_km)


def _pair_cost(a: Activity, b: Activity) -> tuple[Any, ...]:
    first, second = sorted((_content_key(a), _content_key(b)))
    distance_gap = abs(a.distance_km - b.distance_km) if a.distance_km is not None and b.distance_km is not None else 0.0
    return abs((a.start - b.start).total_seconds()), distance_gap, first, second


def _merge(group: list[Activity]) -> Activity:
    ordered = sorted(group, key=lambda a: (_rank(a.provider), _content_key(a)))
    kept = ordered[0]
    fills = {}
    for name in _FILLABLE:
        if getattr(kept, name) is None:
            value = next((getattr(other, name) for other in ordered[1:] if getattr(other, name) is not None), None)
            if value is not None:
                fills[name] = value
    return kept._replace(**fills) if fills else kept


def across_providers(activities: list[Activity]) -> list[Activity]:
    """The same activity delivered by several providers, counted once (daily totals are left alone)."""
    candidates = [a for a in activities if not a.daily_total]
    if len({a.provider for a in candidates}) < 2:
        return activities
    candidates.sort(key=lambda a: (a.start, _content_key(a), a.provider))
    pairs = []
    for i, a in enumerate(candidates):
        for j in range(i + 1, len(candidates)):
            b = candidates[j]
            if (b.start - a.start).total_seconds() > _TOLERANCE_SECONDS:
                break
            if a.provider != b.provider and _same_activity(a, b):
                pairs.append((_pair_cost(a, b), i, j))
    if not pairs:
        return activities

    group_of = list(range(len(candidates)))  # union-find over candidate indexes
    providers = [{a.provider} for a in candidates]

    def root(index: int) -> int:
        while group_of[index] != index:
            group_of[index] = group_of[group_of[index]]
            index = group_of[index]
        return index

    for _cost, i, j in sorted(pairs):
        ri, rj = root(i), root(j)
        if ri != rj and not providers[ri] & providers[rj]:
            group_of[rj] = ri
            providers[ri] |= providers[rj]
    groups: dict[int, list[Activity]] = {}
    for index, activity in enumerate(candidates):
        groups.setdefault(root(index), []).append(activity)
    return [a for a in activities if a.daily_total] + [_merge(group) for group in groups.values()]


def canonical_order(activity: Activity) -> tuple[Any, ...]:
    """A total order on distinct activities: within a provider, start, type and kind are unique once
    `within_provider` has run; across providers, the provider differs."""
    return activity.start, activity.provider, activity.type, activity.daily_total


def distinct_activities(by_provider: dict[str, list[Activity]]) -> list[Activity]:
    """Every activity once, in an order fixed by content (float sums then do not depend on the
    order the records arrived in)."""
    distinct = across_providers([a for provider in by_provider for a in within_provider(by_provider[provider])])
    if len(distinct) > 1:
        distinct.sort(key=canonical_order)
    return distinct


# --- daily totals ----------------------------------------------------------------------------------

# the values a day's total can hold that its activities also hold
_DAY_TOTAL_FIELDS = ("steps_count", "distance_km", "calories", "duration_min", "exercise_minutes", "elev_gain_m",
                     "sessions")
# A day's distance total covers the activities of its kind only: Apple's walking+running distance
# holds the day's walks, runs and hikes, its cycling distance the rides.
_DISTANCE_GROUP = {"walk": "foot", "run": "foot", "hike": "foot", "steps": "foot"}


def _group(field: str, activity_type: str) -> str:
    return _DISTANCE_GROUP.get(activity_type, activity_type) if field == "distance_km" else "*"


def count_once(activities: list[Activity], day_of: Callable[[Activity], date] | None = None) -> list[Activity]:
    """The activities with the values a day total already holds taken out, so that a plain sum counts
    each step, metre and kcal once.

    For each day and metric (and, for distance, kind of activity) that has a daily total among
    `activities`, the largest daily total counts (two providers' totals of one day measure the same
    day), unless the activity records of that day add up to more (a total fetched before the day
    ended): then they count instead. The other values of the bucket become None. Decided per call, on
    the activities being counted: a run challenge, which does not count daily totals, keeps the run's
    distance."""
    if not any(a.daily_total for a in activities):
        return activities
    day = day_of or (lambda a: a.day_key)
    buckets: dict[tuple[date, str, str], list[int]] = {}
    for index, activity in enumerate(activities):  # the buckets that have a daily total
        if activity.daily_total:
            for field in _DAY_TOTAL_FIELDS:
                if getattr(activity, field) is not None:
                    buckets.setdefault((day(activity), field, _group(field, activity.type)), []).append(index)
    for index, activity in enumerate(activities):  # and the activity records that fall into them
        if not activity.daily_total:
            for field in _DAY_TOTAL_FIELDS:
                if getattr(activity, field) is not None:
                    bucket = buckets.get((day(activity), field, _group(field, activity.type)))
                    if bucket is not None:
                        bucket.append(index)
    cleared: dict[int, dict[str, None]] = {}
    for (_day, field, _kind), indexes in buckets.items():
        totals = [i for i in indexes if activities[i].daily_total]
        records = [i for i in indexes if not activities[i].daily_total]
        best = max(totals, key=lambda i: getattr(activities[i], field))
        if getattr(activities[best], field) >= sum(getattr(activities[i], field) for i in records):
            losers = [i for i in indexes if i != best]
        else:
            losers = totals
        for i in losers:
            cleared.setdefault(i, {})[field] = None
    if not cleared:
        return activities
    return [a._replace(**cleared[i]) if i in cleared else a for i, a in enumerate(activities)]
