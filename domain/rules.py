"""Reading a challenge's rule from its stored `params` / `proof` / `timeline` (spec/evaluation.md §1).

One precedence over every place a rule can be stored, each as an object or a JSON string of one:

- the full rule (fitness `challengeType` rules, gaming rules, `mode`, `topN`, `competitiveMetric`):
  `proof.params.rule`, then `proof.params`, then `params.rule`, then `params` (the original's chain);
- the simplified rules (`{type, metric, threshold, period}`): `params.rules`, then `proof.params.rules`.

The places are merged key by key: each key comes from the first place that sets it (not null), so a
place that holds part of a rule (`{"competitiveMetric": "kills"}`) no longer hides the `period` and
`rankedOnly` another place holds. Nested objects (`period`, `dailyTarget`, ...) are taken whole.
A complete simplified rule wins over a full rule (R11, as in the original).

Parsing never raises. Whatever cannot be acted on (a place that is not a JSON object, an unknown
challenge type, metric, period, operator or mode, a number that is not finite or out of range, a time
that cannot be read) is listed in `ChallengeRule.problems` with its JSON path: a registration with
problems is refused, and a rule with problems fails every verdict instead of passing structurally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.jsvalues import as_mapping, brief, flag, is_number, parse_maybe_json
from domain.rule_vocabulary import (
    ACCUMULATING_FITNESS_METRICS,
    CONDITION_OPS,
    FITNESS_CHALLENGE_TYPES,
    FITNESS_METRIC_ALIASES,
    FITNESS_METRICS,
    GAMING_COMPETITIVE_METRICS,
    MODES,
    SIMPLE_FITNESS_METRICS,
    SIMPLE_FITNESS_PERIODS,
    SIMPLE_GAMING_METRICS,
    SIMPLE_GAMING_PERIODS,
    amount,
    canonical_challenge_type,
    canonical_fitness_metric,
    count,
    one_of,
)
from domain.timeline import Timeline, parse_timeline, timeline_problems
from domain.timeparse import NOT_A_TIME, from_unix_seconds, parse_instant

_GAMING_RULE_KEYS = ("minWins", "hero", "rankedOnly", "period", "streakLength")
_FULL_RULE_PLACES = ("proof.params.rule", "proof.params", "params.rule", "params")
_SIMPLE_RULE_PLACES = ("params.rules", "proof.params.rules")


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


class _Merged:
    """The places of one rule kind merged key by key, remembering where each key came from."""

    def __init__(self, places: list[tuple[str, Mapping[str, Any]]]) -> None:
        self.values: dict[str, Any] = {}
        self.origin: dict[str, str] = {}
        for name, place in places:
            for key, value in place.items():
                if value is not None and key not in self.values:
                    self.values[key] = value
                    self.origin[key] = name

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def has(self, key: str) -> bool:
        return key in self.values

    def where(self, key: str) -> str:
        return f"{self.origin.get(key, 'rule')}.{key}"


def _place(value: object, name: str, problems: list[str]) -> Mapping[str, Any] | None:
    """One stored place: an object, a JSON string of one, or absent (null, empty string)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parsed = parse_maybe_json(value)
    mapping = as_mapping(parsed)
    if mapping is None:
        what = "is not valid JSON" if isinstance(value, str) and parsed is None else "is not a JSON object"
        problems.append(f"{name} {what}: {brief(value)}")
    return mapping


def _places(params: object, proof: object, problems: list[str]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    containers = {"params": _place(params, "params", problems)}
    proof_map = _place(proof, "proof", problems)
    containers["proof.params"] = _place(proof_map.get("params"), "proof.params", problems) if proof_map else None
    for name, container in containers.items():
        if container is None:
            continue
        found[name] = container
        for leaf in ("rule", "rules"):
            place = _place(container.get(leaf), f"{name}.{leaf}", problems)
            if place is not None:
                found[f"{name}.{leaf}"] = place
    return found


def _instant(raw: Mapping[str, Any], key: str, where: str, problems: list[str]) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    instant = parse_instant(value)
    if instant is None:
        problems.append(f"{where}.{key} {brief(value)} {NOT_A_TIME}")
    return instant


def _period(value: object, where: str, problems: list[str]) -> Period | None:
    raw = as_mapping(value)
    if raw is None:
        problems.append(f"{where} must be an object {{start, end}}, got {brief(value)}")
        return None
    period = Period(start=_instant(raw, "start", where, problems), end=_instant(raw, "end", where, problems))
    if period.start is not None and period.end is not None and period.end < period.start:
        problems.append(f"{where}.end is before {where}.start")
    return period


def _zone(name: object, where: str, problems: list[str]) -> ZoneInfo:
    if name is None or name == "":
        return ZoneInfo("UTC")
    if isinstance(name, str):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    problems.append(f"{where}: unknown time zone {brief(name)}")
    return ZoneInfo("UTC")


def _conditions(raw: object, where: str, problems: list[str]) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{where} must be a list of {{metric, op, value}}, got {brief(raw)}")
        return ()
    conditions = []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        condition = as_mapping(item)
        if condition is None:
            problems.append(f"{at} must be an object {{metric, op, value}}, got {brief(item)}")
            continue
        metric = canonical_fitness_metric(condition.get("metric"))
        if metric is None:
            problems.append(f"{at}.metric: unknown metric {brief(condition.get('metric'))} "
                            f"(known: {', '.join(sorted(FITNESS_METRICS))})")
        op = one_of(condition.get("op"), CONDITION_OPS, f"{at}.op", problems)
        value = amount(condition.get("value"), f"{at}.value", problems)
        if condition.get("value") is None:
            problems.append(f"{at}.value is missing")
        if metric is not None and op is not None and value is not None:
            conditions.append(Condition(metric, op, value))
    return tuple(conditions)


def _object(merged: _Merged, key: str, problems: list[str]) -> Mapping[str, Any] | None:
    value = merged.get(key)
    if value is None:
        return None
    mapping = as_mapping(value)
    if mapping is None:
        problems.append(f"{merged.where(key)} must be an object, got {brief(value)}")
    return mapping


def _fitness_rule(merged: _Merged, problems: list[str]) -> FitnessRule | None:
    raw_type = merged.get("challengeType")
    challenge_type = canonical_challenge_type(raw_type)
    if challenge_type is None:
        problems.append(f"{merged.where('challengeType')}: unknown challenge type {brief(raw_type)} "
                        f"(known: {', '.join(sorted(FITNESS_CHALLENGE_TYPES))})")
    if not merged.has("period"):
        problems.append(f"{merged.where('challengeType')}: a fitness rule needs a period {{start, end}}")
        return None
    period = _period(merged.get("period"), merged.where("period"), problems)
    zone = _zone(as_mapping(merged.get("period")).get("timezone") if period else None,
                 f"{merged.where('period')}.timezone", problems)
    conditions = _conditions(merged.get("conditions"), merged.where("conditions"), problems)

    daily = _object(merged, "dailyTarget", problems) or {}
    streak_days = count(daily.get("consecutiveDays"), f"{merged.where('dailyTarget')}.consecutiveDays", problems,
                        lowest=0) or 0
    streak_conditions = _conditions(daily.get("conditions"), f"{merged.where('dailyTarget')}.conditions", problems)
    if daily and (streak_days > 0) != bool(streak_conditions):
        problems.append(f"{merged.where('dailyTarget')} needs both consecutiveDays and conditions")

    weekly = _object(merged, "weeklyTarget", problems)
    weekly_where = merged.where("weeklyTarget")
    occurrences = weeks = None
    if weekly is not None:
        occurrences = count(weekly.get("minOccurrences"), f"{weekly_where}.minOccurrences", problems)
        weeks = count(weekly.get("perWeeks"), f"{weekly_where}.perWeeks", problems)
        if weekly.get("minOccurrences") is None or weekly.get("perWeeks") is None:
            problems.append(f"{weekly_where} needs minOccurrences and perWeeks")

    checks = _object(merged, "antiCheat", problems)
    anti_cheat = None
    if checks is not None:
        at = merged.where("antiCheat")
        anti_cheat = AntiCheat(
            min_gps_continuity=amount(checks.get("minGpsContinuity"), f"{at}.minGpsContinuity", problems, upper=1),
            min_hr_consistency=amount(checks.get("minHrConsistency"), f"{at}.minHrConsistency", problems, upper=1),
            max_teleport_jumps=count(checks.get("maxTeleportJumps"), f"{at}.maxTeleportJumps", problems, lowest=0),
        )
    if challenge_type is None or period is None:
        return None
    return FitnessRule(
        challenge_type=challenge_type, period=period, zone=zone, conditions=conditions,
        streak_days=streak_days, streak_conditions=streak_conditions,
        has_weekly_target=weekly is not None, weekly_min_occurrences=occurrences or 0,
        weekly_weeks=weeks or 0, anti_cheat=anti_cheat,
    )


def _is_gaming_rule(merged: _Merged) -> bool:
    """Key presence as in the original, but a key must carry a value, and `mode` alone no longer makes
    an object a gaming rule (spec §8.17): a gaming-only `competitiveMetric` does."""
    if merged.has("challengeType"):
        return False
    if any(merged.has(key) for key in _GAMING_RULE_KEYS):
        return True
    return merged.get("competitiveMetric") in GAMING_COMPETITIVE_METRICS


def _ranked_only(value: object, where: str, problems: list[str]) -> bool:
    if value is None or isinstance(value, bool | str) or is_number(value):
        return flag(value)
    problems.append(f"{where} must be true or false, got {brief(value)}")
    return False


def _gaming_rule(merged: _Merged, problems: list[str]) -> GamingRule:
    hero = merged.get("hero")
    if hero is not None and not isinstance(hero, str):
        problems.append(f"{merged.where('hero')} must be a string, got {brief(hero)}")
        hero = None
    min_wins = count(merged.get("minWins"), merged.where("minWins"), problems)
    streak = count(merged.get("streakLength"), merged.where("streakLength"), problems, lowest=0)
    return GamingRule(
        min_wins=1 if min_wins is None else min_wins,
        hero=hero.strip() if hero and hero.strip() else None,
        ranked_only=_ranked_only(merged.get("rankedOnly"), merged.where("rankedOnly"), problems),
        period=_period(merged.get("period"), merged.where("period"), problems) if merged.has("period") else None,
        streak_length=streak or 0,
    )


def _simple_rules(merged: _Merged, problems: list[str]) -> SimpleFitnessRules | SimpleGamingRules | None:
    kind = one_of(merged.get("type"), ("fitness", "gaming"), merged.where("type"), problems)
    if kind is None:
        return None
    fitness = kind == "fitness"
    metric = one_of(merged.get("metric"), SIMPLE_FITNESS_METRICS if fitness else SIMPLE_GAMING_METRICS,
                    merged.where("metric"), problems)
    period = one_of(merged.get("period"), SIMPLE_FITNESS_PERIODS if fitness else SIMPLE_GAMING_PERIODS,
                    merged.where("period"), problems)
    threshold = amount(merged.get("threshold"), merged.where("threshold"), problems)
    if not merged.has("threshold"):
        problems.append(f"{merged.where('threshold')} is missing")
    minimum_key = "minDays" if fitness else "minMatches"
    minimum = count(merged.get(minimum_key), merged.where(minimum_key), problems, numeric_text=True)
    if metric is None or period is None or threshold is None:
        return None
    if fitness:
        return SimpleFitnessRules(metric, threshold, period, 1 if minimum is None else minimum)
    return SimpleGamingRules(metric, threshold, period, 1 if minimum is None else minimum)


def _top_n(merged: _Merged, places: dict[str, Mapping[str, Any]], problems: list[str]) -> int:
    if merged.has("topN"):
        return count(merged.get("topN"), merged.where("topN"), problems) or 1
    # iOS templates keep topN only in the form values (spec §8.19).
    for name in ("proof.params", "params"):
        form = as_mapping(places[name].get("form")) if name in places else None
        if form is not None and form.get("topN") is not None:
            return count(form["topN"], f"{name}.form.topN", problems, numeric_text=True) or 1
    return 1


def _competitive_metric(merged: _Merged, fitness: bool, gaming: bool, problems: list[str]) -> str | None:
    key = "competitiveMetric" if merged.has("competitiveMetric") else "metric"  # iOS stores `metric` (§8.19)
    value = merged.get(key)
    if value is None:
        return None
    known = ACCUMULATING_FITNESS_METRICS if fitness else GAMING_COMPETITIVE_METRICS if gaming else (
        ACCUMULATING_FITNESS_METRICS | GAMING_COMPETITIVE_METRICS)
    name = value if gaming or not isinstance(value, str) else FITNESS_METRIC_ALIASES.get(value, value)
    if not isinstance(name, str) or name not in known:
        problems.append(f"{merged.where(key)}: unknown competitive metric {brief(value)} "
                        f"(known: {', '.join(sorted(known))})")
        return None
    return name


def _check_challenge_type(value: object, where: str, problems: list[str]) -> None:
    if canonical_challenge_type(value) is None:
        problems.append(f"{where}: unknown challenge type {brief(value)}")


# Scalar keys whose value in a place the merge does not read is still checked: a bad value must not
# hide behind a good one in a place read earlier.
_SHADOWED_CHECKS: dict[str, Callable[[object, str, list[str]], object]] = {
    "challengeType": _check_challenge_type,
    "topN": count,
    "minWins": count,
    "streakLength": lambda value, where, problems: count(value, where, problems, lowest=0),
    "mode": lambda value, where, problems: one_of(value, MODES, where, problems),
    "rankedOnly": _ranked_only,
    "type": lambda value, where, problems: one_of(value, ("fitness", "gaming"), where, problems),
    "metric": lambda value, where, problems: one_of(value, SIMPLE_FITNESS_METRICS | SIMPLE_GAMING_METRICS, where,
                                                    problems),
    "threshold": amount,
    "minDays": lambda value, where, problems: count(value, where, problems, numeric_text=True),
    "minMatches": lambda value, where, problems: count(value, where, problems, numeric_text=True),
}
_SIMPLE_ONLY_KEYS = ("type", "metric", "threshold", "minDays", "minMatches")


def _check_shadowed(merged: _Merged, places: list[tuple[str, Mapping[str, Any]]], simple: bool,
                    problems: list[str]) -> None:
    for name, place in places:
        for key, check in _SHADOWED_CHECKS.items():
            if (key in _SIMPLE_ONLY_KEYS) != simple:
                continue
            value = place.get(key)
            if value is not None and merged.origin.get(key) != name:
                check(value, f"{name}.{key}", problems)


def _parse(params: object, proof: object, timeline: object) -> ChallengeRule:
    problems: list[str] = []
    places = _places(params, proof, problems)
    full = _Merged([(name, places[name]) for name in _FULL_RULE_PLACES if name in places])
    simple_places = [(name, places[name]) for name in _SIMPLE_RULE_PLACES if name in places and places[name]]

    simple_merged = _Merged(simple_places)
    simple = _simple_rules(simple_merged, problems) if simple_places else None
    fitness = _fitness_rule(full, problems) if full.has("challengeType") else None
    gaming = _gaming_rule(full, problems) if _is_gaming_rule(full) else None
    _check_shadowed(simple_merged, simple_places, True, problems)
    _check_shadowed(full, [(name, places[name]) for name in _FULL_RULE_PLACES if name in places], False, problems)

    mode = full.get("mode")
    if mode is not None:
        mode = one_of(mode, MODES, full.where("mode"), problems)
    competitive = mode == "competitive"
    top_n = _top_n(full, places, problems)
    metric = None
    if competitive:
        metric = _competitive_metric(full, full.has("challengeType"), gaming is not None, problems)
    problems.extend(timeline_problems(timeline))
    return ChallengeRule(
        simple_fitness=simple if isinstance(simple, SimpleFitnessRules) else None,
        simple_gaming=simple if isinstance(simple, SimpleGamingRules) else None,
        fitness=fitness,
        gaming=gaming,
        competitive=competitive,
        top_n=top_n,
        competitive_metric=metric,
        timeline=parse_timeline(timeline),
        problems=tuple(problems),
    )


def parse_challenge_rule(params: object, proof: object = None, timeline: object = None) -> ChallengeRule:
    """The rule of a challenge from its `params`, `proof` and `timeline` (objects or JSON strings).
    Never raises: a rule nobody foresaw becomes a rule with a problem."""
    try:
        return _parse(params, proof, timeline)
    except Exception as error:  # the stages must not stop on a registration nobody foresaw
        return ChallengeRule(problems=(f"rule could not be read: {type(error).__name__}: {error}",))


__all__ = [
    "AntiCheat", "ChallengeRule", "Condition", "FitnessRule", "GamingRule", "Period",
    "SimpleFitnessRules", "SimpleGamingRules", "parse_challenge_rule",
]
