"""Simplified fitness rules: `{type:"fitness", metric, threshold, period, minDays}` (spec §3.4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from domain.jsvalues import clean_number, round2
from domain.rules import SimpleFitnessRules
from streams.evaluation.activities import Activity
from streams.evaluation.dedup import count_once
from streams.evaluation.verdict import Outcome

_ANY = None
# metric -> (activity type it counts, or None for every type; per-activity value)
_SIMPLE_METRICS: dict[str, tuple[str | None, Callable[[Activity], float]]] = {
    "steps": (_ANY, lambda a: a.steps_count or 0.0),
    "distance_km": (_ANY, lambda a: a.distance_km or 0.0),
    "walking_km": ("walk", lambda a: a.distance_km or 0.0),
    "active_minutes": (_ANY, lambda a: a.duration_min or 0.0),
    "cycling_km": ("cycle", lambda a: a.distance_km or 0.0),
    "swimming_km": ("swim", lambda a: a.distance_km or 0.0),
    "hiking_km": ("hike", lambda a: a.distance_km or 0.0),
    "rowing_km": ("rowing", lambda a: a.distance_km or 0.0),
    "strength_sessions": ("strength", lambda a: a.sessions or 1.0),
    "yoga_min": ("yoga", lambda a: a.duration_min or 0.0),
    # hiit records normalise to crossfit; the original looked for a "hiit" type that never exists.
    "hiit_min": ("crossfit", lambda a: a.duration_min or 0.0),
    "exercise_time": (
        _ANY,
        lambda a: a.exercise_minutes if a.exercise_minutes is not None else (a.duration_min or 0.0),
    ),
    "calories": (_ANY, lambda a: a.calories or 0.0),
}


def _fmt(value: float) -> str:
    """Numbers in reasons as JavaScript prints them (10000, not 10000.0)."""
    return repr(clean_number(value))


def evaluate_simple_fitness(rules: SimpleFitnessRules, activities: list[Activity], competitive: bool) -> Outcome:
    wanted_type, value_of = _SIMPLE_METRICS[rules.metric]
    relevant = [a for a in activities if wanted_type is None or a.type == wanted_type]
    base = {"rulesFormat": "simple", "metric": rules.metric, "period": rules.period}
    if not relevant:
        return Outcome(
            False, 0, (f'No activities found matching metric "{rules.metric}"',),
            {**base, "totalActivities": len(activities)},
        )

    counted = count_once(relevant)
    per_day: dict[date, float] = {}
    for activity in counted:
        per_day[activity.day_key] = per_day.get(activity.day_key, 0.0) + value_of(activity)
    total = sum(value_of(a) for a in counted)

    if competitive:
        # A ranked challenge scores the period total; the threshold does not decide who passes.
        return Outcome(True, round2(total), (), {**base, "mode": "competitive", "total": round2(total),
                                                 "activityCount": len(relevant)})

    threshold = rules.threshold
    if rules.period == "daily":
        qualifying = sum(1 for value in per_day.values() if value >= threshold)
        passed = qualifying >= rules.min_days
        details = {
            day.isoformat(): {"value": clean_number(round2(value)), "passed": value >= threshold}
            for day, value in sorted(per_day.items())
        }
        metadata = {**base, "threshold": clean_number(threshold), "minDays": clean_number(rules.min_days),
                    "qualifyingDays": qualifying, "totalDays": len(per_day), "dayDetails": details}
        reason = (f"Only {qualifying} of {_fmt(rules.min_days)} required days met the "
                  f"{_fmt(threshold)} {rules.metric} threshold")
        return Outcome(passed, qualifying, () if passed else (reason,), metadata)
    if rules.period == "total":
        passed = total >= threshold
        metadata = {**base, "threshold": clean_number(threshold), "total": clean_number(round2(total)),
                    "activityCount": len(relevant)}
        reason = f"Total {rules.metric}: {_fmt(round2(total))}, required: {_fmt(threshold)}"
        return Outcome(passed, round2(total), () if passed else (reason,), metadata)
    if rules.period == "average":
        average = total / len(per_day)
        passed = average >= threshold
        metadata = {**base, "threshold": clean_number(threshold), "average": average,
                    "totalDays": len(per_day), "totalValue": clean_number(round2(total))}
        reason = f"Average daily {rules.metric}: {_fmt(round2(average))}, required: {_fmt(threshold)}"
        return Outcome(passed, round2(average), () if passed else (reason,), metadata)
    return Outcome(
        False, 0, (f'Unknown period type "{rules.period}" in simplified fitness rules',),
        {"rulesFormat": "simple", "rules": {"type": "fitness", "metric": rules.metric,
                                            "threshold": clean_number(threshold), "period": rules.period,
                                            "minDays": clean_number(rules.min_days)}},
    )
