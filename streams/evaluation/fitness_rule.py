"""The full fitness `Rule` (spec/evaluation.md §3.5, §3.6) with the original's bugs fixed (§8)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from domain.jsvalues import clean_number, round2
from domain.rules import Condition, FitnessRule
from streams.evaluation.activities import Activity
from streams.evaluation.dedup import count_once
from streams.evaluation.fitness_metrics import (
    ADDITIVE_METRICS,
    compare,
    gps_continuity,
    gps_jumps,
    has_gps_track,
    has_hr_data,
    holds,
    hr_consistency,
    is_accumulating,
    metric_total,
    metric_value,
)
from streams.evaluation.verdict import Outcome

_WEEK_DAYS = 7
_MAX_PERIOD_DAYS = 3660  # a day list longer than ten years is a broken rule, not a challenge
PERIOD_REQUIRED = "needs a period with start and end, at most ten years apart"
_COMPETITIVE_DEFAULT_METRIC = "steps_count"


def in_scope_types(challenge_type: str) -> frozenset[str]:
    # A walking challenge is usually measured in steps, which arrive as daily `steps` records.
    return frozenset({"walk", "steps"}) if challenge_type == "walk" else frozenset({challenge_type})


def activity_day(activity: Activity, zone: ZoneInfo) -> date:
    return activity.local_day if activity.local_day is not None else activity.start.astimezone(zone).date()


def _period_days(rule: FitnessRule) -> list[date] | None:
    if rule.period.start is None or rule.period.end is None:
        return None
    first = rule.period.start.astimezone(rule.zone).date()
    last = rule.period.end.astimezone(rule.zone).date()
    if not 0 <= (last - first).days <= _MAX_PERIOD_DAYS:
        return None
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _day_summary(challenge_type: str, activities: list[Activity]) -> Activity:
    """One activity holding the day's sums, so daily conditions read day totals."""
    def total(field: str) -> float | None:
        values = [getattr(a, field) for a in activities if getattr(a, field) is not None]
        return sum(values) if values else None

    first = activities[0]
    return Activity(
        type=challenge_type, start=first.start, end=first.start,
        distance_km=total("distance_km"), duration_min=total("duration_min"),
        elev_gain_m=total("elev_gain_m"), steps_count=total("steps_count") or 0.0,
        calories=total("calories"), sessions=total("sessions"),
        exercise_minutes=total("exercise_minutes"),
    )


def _best_streak(rule: FitnessRule, days: list[date], activities: list[Activity]) -> int:
    by_day: dict[date, list[Activity]] = {}
    for activity in activities:
        if rule.period.overlaps(activity.start, activity.end):
            by_day.setdefault(activity_day(activity, rule.zone), []).append(activity)
    best = current = 0
    for day in days:
        day_activities = by_day.get(day, [])
        passed = False
        if day_activities:
            summary = _day_summary(rule.challenge_type, count_once(day_activities, lambda _a, day=day: day))
            passed = all(holds(summary, c) for c in rule.streak_conditions)
        current = current + 1 if passed else 0
        best = max(best, current)
    return best


def _anti_cheat_reasons(rule: FitnessRule, in_scope: list[Activity]) -> list[str]:
    """Checks run only on activities that carry the data; an activity without a GPS track or heart
    rate is not evidence of cheating (the original failed every HealthKit and upload record)."""
    checks = rule.anti_cheat
    if checks is None:
        return []
    reasons = []
    for activity in in_scope:
        if has_gps_track(activity):
            if checks.min_gps_continuity is not None and (score := gps_continuity(activity)) < checks.min_gps_continuity:
                reasons.append(f"Low GPS continuity ({score:.2f} < {clean_number(checks.min_gps_continuity)})")
            if checks.max_teleport_jumps is not None and (jumps := gps_jumps(activity)) > checks.max_teleport_jumps:
                reasons.append(f"Too many GPS jumps ({jumps} > {clean_number(checks.max_teleport_jumps)})")
        if has_hr_data(activity) and checks.min_hr_consistency is not None:
            if (score := hr_consistency(activity)) < checks.min_hr_consistency:
                reasons.append(
                    f"Low HR/activity consistency ({score:.2f} < {clean_number(checks.min_hr_consistency)})"
                )
    return reasons


def _split_conditions(rule: FitnessRule) -> tuple[list[Condition], list[Condition]]:
    """(per-activity filters, period totals). With a weekly target every condition describes one
    occurrence; otherwise accumulating conditions are totals over the period."""
    if rule.has_weekly_target:
        return list(rule.conditions), []
    per_activity = [c for c in rule.conditions if not is_accumulating(c)]
    totals = [c for c in rule.conditions if is_accumulating(c)]
    return per_activity, totals


def _weekly_reason(rule: FitnessRule, eligible: list[Activity]) -> str | None:
    """Weeks are consecutive 7-day blocks from the first day of the period, in the rule's zone."""
    if not (rule.weekly_min_occurrences and rule.weekly_weeks):
        return None
    days = _period_days(rule)
    if days is None:
        return f"Weekly target {PERIOD_REQUIRED}"
    counts = [0] * ((len(days) + _WEEK_DAYS - 1) // _WEEK_DAYS)
    for activity in eligible:
        offset = (activity_day(activity, rule.zone) - days[0]).days
        if 0 <= offset < len(days):
            counts[offset // _WEEK_DAYS] += 1
    achieved = sum(1 for count in counts if count >= rule.weekly_min_occurrences)
    if achieved >= rule.weekly_weeks:
        return None
    return f"Weekly target not met ({achieved}/{clean_number(rule.weekly_weeks)} weeks achieved)"


def evaluate_fitness_rule(rule: FitnessRule, activities: list[Activity], total_records: int) -> Outcome:
    types = in_scope_types(rule.challenge_type)
    in_scope = [a for a in activities if a.type in types and rule.period.overlaps(a.start, a.end)]
    score = sum(a.steps_count or 0.0 for a in count_once(in_scope))
    metadata = {"validActivityCount": len(activities), "totalRecords": total_records,
                "challengeType": rule.challenge_type, "inScopeCount": len(in_scope)}

    streak_checked = bool(rule.streak_days and rule.streak_conditions)
    if streak_checked:
        days = _period_days(rule)
        if days is None:
            return Outcome(False, score, (f"Daily streak {PERIOD_REQUIRED}",), metadata)
        best = _best_streak(rule, days, activities)
        if best < rule.streak_days:
            streak_reasons = ("Daily streak not met", f"Consecutive days achieved: {best}/{rule.streak_days}")
            return Outcome(False, score, streak_reasons, {**metadata, "bestStreak": best})
        metadata["bestStreak"] = best

    # A rule with nothing else to check still promises at least one activity of its type (§8.17).
    if not in_scope and not streak_checked:
        return Outcome(False, score, ("No activities in period for challengeType",), metadata)

    reasons = _anti_cheat_reasons(rule, in_scope)
    per_activity, totals = _split_conditions(rule)
    eligible = [a for a in in_scope if all(holds(a, c) for c in per_activity)]
    if per_activity and not eligible:
        reasons.append("No activity met the required conditions")
    counted = count_once(eligible)
    for condition in totals:
        total = metric_total(counted, condition.metric)
        metadata[f"total_{condition.metric}"] = clean_number(round2(total))
        if not compare(total, condition.op, condition.value):
            required = clean_number(condition.value) if condition.value is not None else None
            reasons.append(f"Total {condition.metric}: {clean_number(round2(total))}, "
                           f"required {condition.op} {required}")
    if rule.has_weekly_target and (weekly := _weekly_reason(rule, eligible)) is not None:
        reasons.append(weekly)
    metadata["eligibleCount"] = len(eligible)
    return Outcome(not reasons, score, tuple(reasons), metadata)


def competitive_fitness_metric(requested: str | None) -> str:
    """Any accumulating metric can be ranked; anything else falls back to steps as in the original."""
    return requested if requested in ADDITIVE_METRICS else _COMPETITIVE_DEFAULT_METRIC


def score_fitness_competitive(
    rule: FitnessRule, activities: list[Activity], total_records: int, requested_metric: str | None
) -> Outcome:
    metric = competitive_fitness_metric(requested_metric)
    types = in_scope_types(rule.challenge_type)
    in_scope = [a for a in activities if a.type in types and rule.period.overlaps(a.start, a.end)]
    score = sum(metric_value(a, metric) or 0.0 for a in count_once(in_scope))
    metadata = {"mode": "competitive", "metric": metric, "validActivityCount": len(activities),
                "totalRecords": total_records, "challengeType": rule.challenge_type,
                "inScopeCount": len(in_scope)}
    return Outcome(True, score, (), metadata)
