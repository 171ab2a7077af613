"""The fitness evaluator (apple, garmin, strava, fitbit, googlefit): spec/evaluation.md §3."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.jsvalues import as_mapping
from domain.rules import ChallengeRule
from streams.evaluation.activities import Activity, Unusable, read_activity
from streams.evaluation.dedup import distinct_activities
from streams.evaluation.fitness_rule import evaluate_fitness_rule, score_fitness_competitive
from streams.evaluation.fitness_simple import evaluate_simple_fitness
from streams.evaluation.verdict import Outcome, record_label, with_problems

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


def _read(records_by_provider: Mapping[str, Sequence[object]], problems: list[str]) -> dict[str, list[Activity]]:
    by_provider: dict[str, list[Activity]] = {}
    for provider, records in records_by_provider.items():
        activities = by_provider.setdefault(provider, [])
        for raw in records:
            try:
                activity = read_activity(raw, provider)
            except Unusable as why:
                problems.append(f"{provider} {record_label(raw)}: {why}; not counted")
                continue
            if activity is not None:
                activities.append(activity)
    return by_provider


def evaluate_fitness(rule: ChallengeRule | None, records_by_provider: Mapping[str, Sequence[object]]) -> Outcome:
    """Every provider's records together; each activity counted once (streams/evaluation/dedup.py)."""
    total_records = sum(len(records) for records in records_by_provider.values())
    if not total_records:
        return Outcome(False, None, ("No records in fitness evidence",))
    problems: list[str] = []
    by_provider = _read(records_by_provider, problems)
    readable = sum(len(activities) for activities in by_provider.values())
    activities = distinct_activities(by_provider)
    if not activities:
        records = [record for provider_records in records_by_provider.values() for record in provider_records]
        reason = (f"Evidence contains {total_records} record(s) but none could be normalized "
                  "to a recognised activity shape")
        metadata = {"totalRecords": total_records, "sampleTypes": _sample_types(records)}
        return with_problems(Outcome(False, None, (reason,), metadata), problems)
    return with_problems(_evaluate(rule or _NO_RULE, activities, total_records), problems,
                         readable - len(activities))


def _evaluate(rule: ChallengeRule, activities: list[Activity], total_records: int) -> Outcome:
    if rule.simple_fitness is not None:
        # The simplified format has no period of its own: the challenge window applies (spec §8.7).
        window = rule.window
        in_window = [a for a in activities if window.overlaps(a.start, a.end)]
        return evaluate_simple_fitness(rule.simple_fitness, in_window, rule.competitive)
    if rule.fitness is not None:
        if rule.competitive:
            return score_fitness_competitive(rule.fitness, activities, total_records, rule.competitive_metric)
        return evaluate_fitness_rule(rule.fitness, activities, total_records)

    window = rule.window
    in_window = [a for a in activities if window.overlaps(a.start, a.end)]
    if not in_window:
        return Outcome(False, 0, ("No activities within the challenge window",),
                       {"validActivityCount": 0, "totalRecords": total_records})
    metadata = {"validActivityCount": len(in_window), "totalRecords": total_records,
                "types": _distinct_types(in_window),
                "note": "No challenge rule config found — structural pass applied"}
    return Outcome(True, len(in_window), (), metadata)
