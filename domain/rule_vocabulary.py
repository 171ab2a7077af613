"""What a challenge rule may say: the known names, and readers of its numbers that report what is wrong.

Every reader takes the value, the JSON path it came from (for the reason) and the list the problems
go to; it returns the value to use, or None when there is none or it is unusable.
"""

from __future__ import annotations

import math

from domain.jsvalues import brief, is_number

SIMPLE_FITNESS_METRICS = frozenset({
    "steps", "distance_km", "walking_km", "active_minutes", "cycling_km", "swimming_km", "hiking_km",
    "rowing_km", "strength_sessions", "yoga_min", "hiit_min", "exercise_time", "calories",
})
SIMPLE_FITNESS_PERIODS = ("daily", "total", "average")
SIMPLE_GAMING_METRICS = frozenset({"wins", "kills", "headshots", "kda"})
SIMPLE_GAMING_PERIODS = ("total", "per_match", "best_match")
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
# Metrics the full fitness rule's conditions can name (spec §3.5.4); the evaluator implements exactly
# these (a test keeps the two lists equal).
ACCUMULATING_FITNESS_METRICS = frozenset({
    "distance_km", "walking_km", "hiking_km", "rowing_km", "cycling_km", "swimming_km",
    "swim_distance_km", "duration_min", "yoga_min", "hiit_min", "crossfit_min", "active_minutes",
    "exercise_time", "elev_gain_m", "steps_count", "calories", "strength_sessions",
})
FITNESS_METRICS = ACCUMULATING_FITNESS_METRICS | {
    "avg_pace_min_per_km", "avg_speed_kmh", "avg_hr_bpm", "max_hr_bpm", "gps_continuity_score",
    "hr_activity_consistency",
}
# Metric names the templates write for a fitness metric (the example registration ranks "steps").
FITNESS_METRIC_ALIASES = {"steps": "steps_count"}
CONDITION_OPS = (">=", ">", "<=", "<", "==")
MODES = ("threshold", "competitive")

MAX_RULE_NUMBER = 1e12  # no threshold of steps, metres, minutes or kcal is larger
MAX_COUNT = 100_000  # days, matches, wins, weeks, winners


def canonical_challenge_type(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    lowered = value.strip().lower()
    lowered = CHALLENGE_TYPE_ALIASES.get(lowered, lowered)
    return lowered if lowered in FITNESS_CHALLENGE_TYPES else None


def canonical_fitness_metric(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    name = FITNESS_METRIC_ALIASES.get(value, value)
    return name if name in FITNESS_METRICS else None


def amount(value: object, where: str, problems: list[str], *, upper: float = MAX_RULE_NUMBER) -> float | None:
    """A JSON number in 0..upper (a threshold, a condition value)."""
    if value is None:
        return None
    if not is_number(value) or not 0 <= value <= upper:
        problems.append(f"{where} must be a number from 0 to {upper:g}, got {brief(value)}")
        return None
    return float(value)


def count(value: object, where: str, problems: list[str], *, lowest: int = 1, numeric_text: bool = False) -> int | None:
    """A whole number in lowest..MAX_COUNT; `numeric_text` also takes a digit string (the original
    compared `minDays` and `minMatches` loosely, so clients stored "3")."""
    if value is None:
        return None
    number: object = value
    if numeric_text and isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = value
    if not is_number(number) or not float(number).is_integer() or not lowest <= number <= MAX_COUNT:
        problems.append(f"{where} must be a whole number from {lowest} to {MAX_COUNT}, got {brief(value)}")
        return None
    return math.floor(number)


def one_of(value: object, allowed: tuple[str, ...] | frozenset[str], where: str, problems: list[str]) -> str | None:
    if isinstance(value, str) and value in allowed:
        return value
    problems.append(f"{where} must be one of {', '.join(sorted(allowed))}, got {brief(value)}")
    return None
