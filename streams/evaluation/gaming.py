"""The gaming evaluator (opendota, riot, steam, faceit): spec/evaluation.md §4."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from domain.jsvalues import as_mapping, clean_number, round2
from domain.rule_vocabulary import GAMING_COMPETITIVE_METRICS
from domain.rules import ChallengeRule, GamingRule, Period, SimpleGamingRules
from streams.evaluation import matches
from streams.evaluation.verdict import Outcome, record_label, with_problems

Match = Mapping[str, Any]

_SIMPLE_VALUES: dict[str, Callable[[Match], float]] = {
    "wins": lambda m: 1.0 if matches.is_win(m) else 0.0,
    "kills": matches.kills,
    "headshots": matches.headshots,
    "kda": matches.match_kda,
}


def _fmt(value: float) -> str:
    return repr(clean_number(value))


def _in_period(records: list[Match], period: Period) -> list[Match]:
    """Records inside the period; with a bounded period a record without a time cannot be placed in
    it and does not count (the original kept it, spec §8.15)."""
    if not period.bounded:
        return records
    kept = []
    for record in records:
        instant = matches.match_time(record)
        if instant is not None and period.contains(instant):
            kept.append(record)
    return kept


def _evaluate_simple(rules: SimpleGamingRules, records: list[Match], competitive: bool) -> Outcome:
    base: dict[str, Any] = {"rulesFormat": "simple", "metric": rules.metric, "period": rules.period,
            "threshold": clean_number(rules.threshold)}
    min_matches = rules.min_matches
    if len(records) < min_matches:
        reason = f"Only {len(records)} match(es) found, minimum required: {_fmt(min_matches)}"
        return Outcome(False, 0, (reason,), {**base, "minMatches": clean_number(min_matches),
                                             "matchCount": len(records)})
    values = [_SIMPLE_VALUES[rules.metric](record) for record in records]
    total = sum(values)
    counts = {"matchCount": len(records), "minMatches": clean_number(min_matches)}
    if competitive:
        return Outcome(True, round2(total), (), {**base, **counts, "mode": "competitive", "total": round2(total)})
    if rules.period == "total":
        passed = total >= rules.threshold
        reason = f"Total {rules.metric}: {_fmt(round2(total))}, required: {_fmt(rules.threshold)}"
        return Outcome(passed, round2(total), () if passed else (reason,), {**base, "total": round2(total), **counts})
    if rules.period == "per_match" and values:
        average = total / len(values)
        passed = average >= rules.threshold
        reason = f"Average {rules.metric} per match: {_fmt(round2(average))}, required: {_fmt(rules.threshold)}"
        metadata = {**base, "average": round2(average), "total": round2(total), **counts}
        return Outcome(passed, round2(average), () if passed else (reason,), metadata)
    if rules.period == "best_match" and values:
        best = max(values)
        passed = best >= rules.threshold
        reason = f"Best single-match {rules.metric}: {_fmt(round2(best))}, required: {_fmt(rules.threshold)}"
        return Outcome(passed, round2(best), () if passed else (reason,), {**base, "best": round2(best), **counts})
    if rules.period in ("per_match", "best_match"):
        return Outcome(False, 0, ("No matches to evaluate",), {**base, **counts})
    return Outcome(False, 0, (f'Unknown period type "{rules.period}" in simplified gaming rules',),
                   {"rulesFormat": "simple", "rules": {**base, "minMatches": clean_number(min_matches)}})


def _competitive_score(metric: str, eligible: list[Match]) -> float:
    if metric == "kills":
        return sum(map(matches.kills, eligible))
    if metric == "assists":
        return sum(map(matches.assists, eligible))
    if metric == "deaths":
        return sum(map(matches.deaths, eligible))
    if metric == "damage":
        return sum(map(matches.damage, eligible))
    if metric == "kda":
        contribution = sum(map(matches.kills, eligible)) + sum(map(matches.assists, eligible))
        total_deaths = sum(map(matches.deaths, eligible))
        return contribution / total_deaths if total_deaths else contribution
    return float(sum(1 for record in eligible if matches.is_win(record)))


def _competitive_metric(requested: str | None) -> str:
    return requested if requested in GAMING_COMPETITIVE_METRICS else "wins"


def _longest_win_streak(eligible: list[Match]) -> int:
    def order(record: Match) -> tuple[float, str]:
        instant = matches.match_time(record)
        return (instant.timestamp() if instant is not None else 0.0), matches.identity(record)

    best = current = 0
    for record in sorted(eligible, key=order):
        current = current + 1 if matches.is_win(record) else 0
        best = max(best, current)
    return best


def _evaluate_rule(rule: GamingRule, challenge: ChallengeRule, records: list[Match]) -> Outcome:
    period = rule.period if rule.period is not None else challenge.window
    eligible = _in_period(records, period)
    if rule.ranked_only:
        eligible = [r for r in eligible if matches.is_ranked(r)]
    if rule.hero:
        eligible = [r for r in eligible if matches.matches_hero(r, rule.hero)]
    wins = sum(1 for r in eligible if matches.is_win(r))
    counts: dict[str, Any] = {"totalRecords": len(records), "eligibleRecords": len(eligible), "wins": wins}

    if challenge.competitive:
        metric = _competitive_metric(challenge.competitive_metric)
        metadata = {"mode": "competitive", "metric": metric, **counts, "hero": rule.hero,
                    "rankedOnly": rule.ranked_only}
        return Outcome(True, _competitive_score(metric, eligible), (), metadata)
    if rule.streak_length > 0:
        streak = _longest_win_streak(eligible)
        passed = streak >= rule.streak_length
        metadata = {**counts, "maxStreak": streak, "requiredStreak": clean_number(rule.streak_length),
                    "rankedOnly": rule.ranked_only}
        reason = f"Best win streak: {streak}/{_fmt(rule.streak_length)}"
        return Outcome(passed, streak, () if passed else (reason,), metadata)
    passed = wins >= rule.min_wins
    reason = f"Qualifying wins: {wins}/{_fmt(rule.min_wins)}"
    if rule.ranked_only:
        reason += " (ranked only)"
    if rule.hero:
        reason += f" (hero: {rule.hero})"
    if rule.period is not None:
        reason += " (within period)"
    metadata = {**counts, "minWins": clean_number(rule.min_wins), "hero": rule.hero, "rankedOnly": rule.ranked_only}
    return Outcome(passed, wins, () if passed else (reason,), metadata)


def _structural(records: list[Match], total_records: int) -> Outcome:
    wins = sum(1 for r in records if matches.is_win(r))
    losses = sum(1 for r in records if not matches.is_win(r) and matches.is_loss(r))
    other = len(records) - wins - losses
    if wins == 0:
        reason = f"No winning records found in evidence (records: {len(records)}, losses: {losses})"
        return Outcome(False, 0, (reason,), {"totalRecords": total_records, "wins": 0, "losses": losses,
                                             "other": other})
    return Outcome(True, wins, (), {"totalRecords": total_records, "wins": wins, "losses": losses, "other": other,
                                    "note": "No challenge gaming rule config found — structural pass applied"})


def _distinct_matches(records_by_provider: Mapping[str, Sequence[object]], problems: list[str]) -> list[Match]:
    """Each match once (the same match id, or the same record, delivered twice counts once), without
    the records whose numbers cannot be counted."""
    kept: dict[str, Match] = {}
    for provider in sorted(records_by_provider):
        for raw in records_by_provider[provider]:
            record = as_mapping(raw)
            if record is None:
                continue
            unusable = matches.unusable_number(record)
            if unusable is not None:
                problems.append(f"{provider} {record_label(record)}: {unusable}; not counted")
                continue
            key = matches.identity(record)
            found = kept.get(key)
            if found is None or matches.canonical(record) < matches.canonical(found):
                kept[key] = record
    return [kept[key] for key in sorted(kept)]


def evaluate_gaming(rule: ChallengeRule | None, records_by_provider: Mapping[str, Sequence[object]]) -> Outcome:
    problems: list[str] = []
    games = _distinct_matches(records_by_provider, problems)
    readable = sum(1 for records in records_by_provider.values() for r in records if as_mapping(r) is not None)
    duplicates = readable - len(games) - len(problems)
    if not games:
        return with_problems(Outcome(False, None, ("No game records in evidence",)), problems)
    return with_problems(_evaluate(rule or ChallengeRule(), games), problems, duplicates)


def _evaluate(rule: ChallengeRule, games: list[Match]) -> Outcome:
    if rule.simple_gaming is not None:
        return _evaluate_simple(rule.simple_gaming, _in_period(games, rule.window), rule.competitive)
    if rule.gaming is not None:
        return _evaluate_rule(rule.gaming, rule, games)
    if rule.competitive:
        return _evaluate_rule(GamingRule(), rule, games)
    return _structural(_in_period(games, rule.window), len(games))
