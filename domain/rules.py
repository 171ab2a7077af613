"""Reading a challenge's rule from its stored `params` / `proof` / `timeline` (spec/evaluation.md §1).

Parsing never raises: whatever is not recognised is simply absent from the result, and anything
suspicious is listed in `ChallengeRule.problems` so a stage can report it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.jsvalues import as_mapping, flag, is_number, parse_maybe_json
from domain.timeline import Timeline, parse_timeline
from domain.timeparse import from_unix_seconds, parse_instant

SIMPLE_FITNESS_METRICS = frozenset({
    "steps", "distance_km", "walking_km", "active_minutes", "cycling_km", "swimming_km", "hiking_km",
    "rowing_km", "strength_sessions", "yoga_min", "hiit_min", "exercise_time", "calories",
})
SIMPLE_GAMING_METRICS = frozenset({"wins", "kills", "headshots", "kda"})
GAMING_COMPETITIVE_METRICS = frozenset({"wins", "kills", "assists", "deaths", "kda", "damage"})
FITNESS_CHALLENGE_TYPES = frozenset({
    "run", "walk", "cycle", "swim", "steps", "strength", "hike", "yoga", "crossfit", "rowing",
    "exercise_time", "calories",
})
# Spellings the web and iOS templates store that the original did not recognise (spec §8.3, §8.4).
CHALLENGE_TYPE_ALIASES = {
    "walking": "walk", "running": "run", "cycling": "cycle", "hiking": "hike", "swimming": "swim",
    "hiit": "crossfit", "strength_training": "strength",
}
_GAMING_RULE_KEYS = ("minWins", "hero", "rankedOnly", "period", "streakLength")


@dataclass(frozen=True)
class SimpleFitnessRules:
    metric: str
    threshold: float
    period: str
    min_days: float = 1


@dataclass(frozen=True)
class SimpleGamingRules:
    metric: str
    threshold: float
    period: str
    min_matches: float = 1


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    value: float | None


@dataclass(frozen=True)
class AntiCheat:
    min_gps_continuity: float | None = None
    min_hr_consistency: float | None = None
    max_teleport_jumps: float | None = None


@dataclass(frozen=True)
class Period:
    start: datetime | None = None
    end: datetime | None = None

    def contains(self, instant: datetime) -> bool:
        return (self.start is None or instant >= self.start) and (self.end is None or instant <= self.end)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return (self.start is None or end >= self.start) and (self.end is None or start <= self.end)

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None


@dataclass(frozen=True)
class FitnessRule:
    challenge_type: str
    period: Period
    zone: ZoneInfo
    conditions: tuple[Condition, ...] = ()
    streak_days: int = 0
    streak_conditions: tuple[Condition, ...] = ()
    has_weekly_target: bool = False
    weekly_min_occurrences: float = 0
    weekly_weeks: float = 0
    anti_cheat: AntiCheat | None = None


@dataclass(frozen=True)
class GamingRule:
    min_wins: float = 1
    hero: str | None = None
    ranked_only: bool = False
    period: Period | None = None
    streak_length: float = 0


@dataclass(frozen=True)
class ChallengeRule:
    simple_fitness: SimpleFitnessRules | None = None
    simple_gaming: SimpleGamingRules | None = None
    fitness: FitnessRule | None = None
    gaming: GamingRule | None = None
    competitive: bool = False
    top_n: int = 1
    competitive_metric: str | None = None
    timeline: Timeline = field(default_factory=Timeline)
    problems: tuple[str, ...] = ()

    @property
    def mode(self) -> str:
        return "competitive" if self.competitive else "threshold"

    @cached_property  # read for every evaluated record; a rule lives as long as its registration
    def window(self) -> Period:
        """The challenge's activity window from the timeline (startsAt..endsAt)."""
        start, end = self.timeline.starts_at, self.timeline.ends_at
        return Period(
            start=from_unix_seconds(start) if start is not None else None,
            end=from_unix_seconds(end) if end is not None else None,
        )


@dataclass(frozen=True)
class _Sources:
    """The parsed JSON containers the look-up chains of spec §1 read from."""

    params: Mapping[str, Any] | None
    proof_params: Mapping[str, Any] | None

    def candidates(self) -> list[Mapping[str, Any]]:
        """proof.params.rule, proof.params, params.rule, params (spec §1.4 / §1.6)."""
        found: list[Mapping[str, Any]] = []
        for container in (self.proof_params, self.params):
            if container is None:
                continue
            rule = as_mapping(parse_maybe_json(container.get("rule")))
            if rule is not None:
                found.append(rule)
            found.append(container)
        return found

    def simple_rules(self) -> list[Mapping[str, Any]]:
        """params.rules, then proof.params.rules (spec §1.2)."""
        found = []
        for container in (self.params, self.proof_params):
            rules = as_mapping(parse_maybe_json(container.get("rules"))) if container else None
            if rules is not None:
                found.append(rules)
        return found


def _number(value: object) -> float | None:
    return float(value) if is_number(value) else None


def _lenient_number(value: object, default: float) -> float:
    """A number, or a numeric string (the original compared `minDays` loosely); else the default."""
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return default
        return parsed if math.isfinite(parsed) else default
    return default


def _parse_simple_fitness(rules: Mapping[str, Any]) -> SimpleFitnessRules | None:
    metric, threshold, period = rules.get("metric"), rules.get("threshold"), rules.get("period")
    if rules.get("type") != "fitness" or metric not in SIMPLE_FITNESS_METRICS:
        return None
    if not is_number(threshold) or not isinstance(period, str):
        return None
    return SimpleFitnessRules(str(metric), float(threshold), period, _lenient_number(rules.get("minDays"), 1))


def _parse_simple_gaming(rules: Mapping[str, Any]) -> SimpleGamingRules | None:
    metric, threshold, period = rules.get("metric"), rules.get("threshold"), rules.get("period")
    if rules.get("type") != "gaming" or metric not in SIMPLE_GAMING_METRICS:
        return None
    if not is_number(threshold) or not isinstance(period, str):
        return None
    return SimpleGamingRules(
        str(metric), float(threshold), period, _lenient_number(rules.get("minMatches"), 1)
    )


def _parse_conditions(raw: object) -> tuple[Condition, ...]:
    if not isinstance(raw, list):
        return ()
    conditions = []
    for item in raw:
        item = as_mapping(item)
        if item is None or not isinstance(item.get("metric"), str):
            continue
        conditions.append(Condition(item["metric"], str(item.get("op")), _number(item.get("value"))))
    return tuple(conditions)


def _parse_period(raw: Mapping[str, Any]) -> Period:
    return Period(start=parse_instant(raw.get("start")), end=parse_instant(raw.get("end")))


def _parse_zone(name: object, problems: list[str]) -> ZoneInfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f'Unknown time zone "{name}" in rule period; UTC used')
    return ZoneInfo("UTC")


def _canonical_challenge_type(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    lowered = value.strip().lower()
    lowered = CHALLENGE_TYPE_ALIASES.get(lowered, lowered)
    return lowered if lowered in FITNESS_CHALLENGE_TYPES else None


def _parse_fitness_rule(candidate: Mapping[str, Any], problems: list[str]) -> FitnessRule | None:
    challenge_type = _canonical_challenge_type(candidate.get("challengeType"))
    period = as_mapping(candidate.get("period"))
    if challenge_type is None or period is None:
        return None
    daily = as_mapping(candidate.get("dailyTarget")) or {}
    weekly = as_mapping(candidate.get("weeklyTarget"))
    anti_cheat = as_mapping(candidate.get("antiCheat"))
    streak_days = _number(daily.get("consecutiveDays")) or 0
    return FitnessRule(
        challenge_type=challenge_type,
        period=_parse_period(period),
        zone=_parse_zone(period.get("timezone"), problems),
        conditions=_parse_conditions(candidate.get("conditions")),
        streak_days=max(0, math.ceil(streak_days)),
        streak_conditions=_parse_conditions(daily.get("conditions")),
        has_weekly_target=weekly is not None,
        weekly_min_occurrences=(_number(weekly.get("minOccurrences")) or 0) if weekly else 0,
        weekly_weeks=(_number(weekly.get("perWeeks")) or 0) if weekly else 0,
        anti_cheat=(
            AntiCheat(
                min_gps_continuity=_number(anti_cheat.get("minGpsContinuity")),
                min_hr_consistency=_number(anti_cheat.get("minHrConsistency")),
                max_teleport_jumps=_number(anti_cheat.get("maxTeleportJumps")),
            )
            if anti_cheat is not None
            else None
        ),
    )


def _is_gaming_rule(candidate: Mapping[str, Any]) -> bool:
    """Key presence as in the original, but a key must carry a value, and `mode` alone no longer makes
    an object a gaming rule (spec §8.17): a gaming-only `competitiveMetric` does."""
    if "challengeType" in candidate:
        return False
    if any(candidate.get(key) is not None for key in _GAMING_RULE_KEYS):
        return True
    return candidate.get("competitiveMetric") in GAMING_COMPETITIVE_METRICS


def _parse_gaming_rule(candidate: Mapping[str, Any]) -> GamingRule:
    period = as_mapping(candidate.get("period"))
    hero = candidate.get("hero")
    streak = _number(candidate.get("streakLength"))
    min_wins = _number(candidate.get("minWins"))
    return GamingRule(
        min_wins=1 if min_wins is None else min_wins,
        hero=hero.strip() if isinstance(hero, str) and hero.strip() else None,
        ranked_only=flag(candidate.get("rankedOnly")),
        period=_parse_period(period) if period is not None else None,
        streak_length=streak if streak is not None and streak > 0 else 0,
    )


def _top_n(candidates: list[Mapping[str, Any]], sources: _Sources) -> int:
    for candidate in candidates:
        value = candidate.get("topN")
        if is_number(value) and value >= 1:
            return math.floor(value)
    # iOS templates keep topN only in the form values (spec §8.19).
    for container in (sources.proof_params, sources.params):
        form = as_mapping(container.get("form")) if container else None
        value = _lenient_number(form.get("topN"), 0) if form else 0
        if value >= 1:
            return math.floor(value)
    return 1


def _competitive_metric(candidates: list[Mapping[str, Any]]) -> str | None:
    for key in ("competitiveMetric", "metric"):  # iOS stores `metric` (spec §8.19)
        for candidate in candidates:
            value = candidate.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def parse_challenge_rule(params: object, proof: object = None, timeline: object = None) -> ChallengeRule:
    """The rule of a challenge from its `params`, `proof` and `timeline` (objects or JSON strings)."""
    problems: list[str] = []
    params_map = as_mapping(parse_maybe_json(params))
    if params is not None and params_map is None:
        problems.append("params is neither an object nor a JSON object string")
    proof_map = as_mapping(parse_maybe_json(proof))
    proof_params = as_mapping(parse_maybe_json(proof_map.get("params"))) if proof_map else None
    sources = _Sources(params=params_map, proof_params=proof_params)
    candidates = sources.candidates()

    simple_fitness = simple_gaming = None
    for rules in sources.simple_rules():
        simple_fitness = simple_fitness or _parse_simple_fitness(rules)
        simple_gaming = simple_gaming or _parse_simple_gaming(rules)

    fitness = None
    for candidate in candidates:
        fitness = _parse_fitness_rule(candidate, problems)
        if fitness is not None:
            break
    gaming = next((_parse_gaming_rule(c) for c in candidates if _is_gaming_rule(c)), None)
    competitive = any(candidate.get("mode") == "competitive" for candidate in candidates)

    return ChallengeRule(
        simple_fitness=simple_fitness,
        simple_gaming=simple_gaming,
        fitness=fitness,
        gaming=gaming,
        competitive=competitive,
        top_n=_top_n(candidates, sources),
        competitive_metric=_competitive_metric(candidates) if competitive else None,
        timeline=parse_timeline(timeline),
        problems=tuple(problems),
    )


__all__ = [
    "AntiCheat", "ChallengeRule", "Condition", "FitnessRule", "GamingRule", "Period",
    "SimpleFitnessRules", "SimpleGamingRules", "parse_challenge_rule",
]
