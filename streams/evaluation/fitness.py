"""The fitness evaluator (apple, garmin, strava, fitbit, googlefit): spec/evaluation.md §3."""

from __future__ import annotations

from collections.abc import Sequence

from domain.jsvalues import as_mapping
from domain.rules import ChallengeRule
from streams.evaluation.activities import Activity, normalize_activities
from streams.evaluation.fitness_rule import evaluate_fitness_rule, score_fitness_competitive
from streams.evaluation.fitness_simple import evaluate_simple_fitness
from streams.evaluation.verdict import Outcome

_SAMPLE_TYPES = 5
_NO_RULE = ChallengeRule()


def _sample_types(records: Sequence[object]) -> list[str]:
    types = []
    for raw in records[:_SAMPLE_TYPES]:
        record = as_mapping(raw)
        value = record.get("type") if record is not None else None
        types.append(value if isinstance(value, str) else "unknown")
    return types


def _distinct_types(activities: list[Activity]) -> list[str]:
    return list(dict.fromkeys(a.type for a in activities))


def evaluate_fitness(rule: ChallengeRule | None, records: Sequence[object]) -> Outcome:
    if not records:
        return Outcome(False, None, ("No records in fitness evidence",))
    activities = normalize_activities(records)
    if not activities:
        reason = (f"Evidence contains {len(records)} record(s) but none could be normalized "
                  "to a recognised activity shape")
        return Outcome(False, None, (reason,), {"totalRecords": len(records), "sampleTypes": _sample_types(records)})
    rule = rule or _NO_RULE

    if rule.simple_fitness is not None:
        # The simplified format has no period of its own: the challenge window applies (spec §8.7).
        window = rule.window
        in_window = [a for a in activities if window.overlaps(a.start, a.end)]
        return evaluate_simple_fitness(rule.simple_fitness, in_window, rule.competitive)
    if rule.fitness is not None:
        if rule.competitive:
            return score_fitness_competitive(rule.fitness, activities, len(records), rule.competitive_metric)
        return evaluate_fitness_rule(rule.fitness, activities, len(records))

    window = rule.window
    in_window = [a for a in activities if window.overlaps(a.start, a.end)]
    if not in_window:
        return Outcome(False, 0, ("No activities within the challenge window",),
                       {"validActivityCount": 0, "totalRecords": len(records)})
    metadata = {"validActivityCount": len(in_window), "totalRecords": len(records),
                "types": _distinct_types(in_window),
                "note": "No challenge rule config found — structural pass applied"}
    return Outcome(True, len(in_window), (), metadata)
