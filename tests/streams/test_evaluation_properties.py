"""Properties of evaluate() for generated records and rules (hypothesis).

- it returns a verdict for any JSON records and rules (never raises; a score is finite or None);
- the verdict does not depend on record order, the process time zone, a record delivered twice, or a
  record delivered again by a second provider;
- for threshold rules, adding a record that meets the rule (a new activity or match) never turns a
  pass into a fail.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.registration import InvalidRegistration, validate_registration
from streams.evaluation import evaluate, parse_challenge_rule
from streams.evaluation.engine import FITNESS_PROVIDERS, GAMING_PROVIDERS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FITNESS = sorted(FITNESS_PROVIDERS)
GAMING = sorted(GAMING_PROVIDERS)

# --- arbitrary JSON -----------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["run", "steps", "day", "activity", "2025-03-02", "2025-03-02T07:00:00Z", "competitive",
                     "total", "daily", "win", "RANKED_SOLO_5x5", "{", "9999-12-31T23:59:00Z"]),
)
KEYS = st.sampled_from([
    "type", "start", "end", "start_ts", "end_ts", "date", "dateTime", "value", "steps", "distance_km", "distance_m",
    "duration_s", "period", "activity_id", "match_id", "win", "kills", "game_creation", "start_time", "rule",
    "rules", "params", "challengeType", "metric", "threshold", "mode", "minWins", "conditions", "op",
    "competitiveMetric", "topN", "rankedOnly", "dailyTarget", "weeklyTarget", "timezone", "x",
])
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(KEYS, st.text(max_size=5)), inner, max_size=5)),
    max_leaves=25)


@SETTINGS
@given(params=json_values, proof=json_values, timeline=json_values,
       evidence=st.dictionaries(st.one_of(st.sampled_from(FITNESS + GAMING + ["manual", "Strava"]), st.text(max_size=4)),
                                st.one_of(st.lists(json_values, max_size=6), json_values), max_size=4))
def test_evaluate_returns_a_verdict_for_any_json(params, proof, timeline, evidence):
    rule = parse_challenge_rule(params, proof, timeline)
    verdict = evaluate(rule, evidence)
    assert isinstance(verdict.pass_, bool)
    assert verdict.score is None or math.isfinite(verdict.score)
    assert all(isinstance(reason, str) for reason in verdict.reasons)
    if rule.problems:
        assert verdict.pass_ is False


@SETTINGS
@given(document=st.dictionaries(st.sampled_from(["id", "subject", "model_id", "params", "timeline", "proof"]),
                                json_values, max_size=6),
       params=json_values, timeline=json_values)
def test_registration_only_ever_refuses_with_invalid_registration(document, params, timeline):
    base = {"id": 5, "subject": "0x" + "ab" * 20, "model_id": "m", "params": params, "timeline": timeline}
    for candidate in (document, {**base, **document}, base):
        try:
            validate_registration(candidate)
        except InvalidRegistration:
            pass


# --- fitness records and rules -------------------------------------------------------------------------

DAYS = [f"2025-03-0{d}" for d in range(1, 6)]
OFFSETS = ["Z", "+02:00", "-05:00"]


@st.composite
def fitness_records(draw: st.DrawFn, *, usable_only: bool = False) -> dict[str, Any]:
    """A record like the providers publish (activities on a 30-minute grid, date-only or `period: day`
    totals), sometimes with values or times that cannot be used."""
    kind = draw(st.sampled_from(["activity", "activity", "day", "date-only"]))
    day = draw(st.sampled_from(DAYS))
    record: dict[str, Any] = {"type": draw(st.sampled_from(["run", "walk", "steps", "cycle", "yoga", "Ride"]))}
    if kind == "activity":
        minute = draw(st.integers(min_value=0, max_value=47)) * 30
        record["start"] = f"{day}T{minute // 60 % 24:02d}:{minute % 60:02d}:00{draw(st.sampled_from(OFFSETS))}"
        if draw(st.booleans()):
            record["duration_s"] = draw(st.integers(min_value=0, max_value=20)) * 60
        record["period"] = "activity"
    elif kind == "day":
        record.update(start=f"{day}T00:00:00+02:00", end=f"{day}T23:59:59+02:00", date=day, period="day")
    else:
        record["dateTime" if draw(st.booleans()) else "date"] = day
    for field in draw(st.sets(st.sampled_from(["steps", "distance_km", "distance_m", "calories", "elev_gain_m"]),
                              max_size=3)):
        record[field] = draw(st.integers(min_value=0, max_value=20000) | st.floats(min_value=0, max_value=50))
    if draw(st.booleans()):
        record["activity_id"] = draw(st.sampled_from(["a", "b", "c", "d"]))
    if not usable_only and draw(st.integers(min_value=0, max_value=9)) == 0:
        record.update(draw(st.sampled_from([{"start_ts": 1741000000000}, {"steps": math.inf}, {"steps": -3},
                                            {"start": "9999-12-31T23:59:00Z", "duration_s": 600},
                                            {"distance_km": 10**400}])))
        record.pop("dateTime", None)
        record.pop("date", None)
    return record


WINDOW = {"startsAt": "2025-03-01T00:00:00Z", "endsAt": "2025-03-06T00:00:00Z"}
PERIOD = {"start": "2025-03-01T00:00:00Z", "end": "2025-03-06T00:00:00Z"}
SIMPLE_METRICS = ["steps", "distance_km", "walking_km", "cycling_km", "calories", "active_minutes"]
CONDITION_METRICS = ["steps_count", "distance_km", "calories", "duration_min", "walking_km"]
CHALLENGE_TYPES = ["run", "walk", "steps", "cycle"]


@st.composite
def fitness_threshold_rules(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"rules": {"type": "fitness", "metric": draw(st.sampled_from(SIMPLE_METRICS)),
                          "threshold": draw(st.integers(min_value=0, max_value=30000)),
                          "period": draw(st.sampled_from(["total", "daily", "average"])),
                          "minDays": draw(st.integers(min_value=1, max_value=4))}}
    conditions = [{"metric": metric, "op": draw(st.sampled_from([">=", ">"])),
                   "value": draw(st.integers(min_value=0, max_value=20000))}
                  for metric in draw(st.sets(st.sampled_from(CONDITION_METRICS), max_size=2))]
    rule: dict[str, Any] = {"challengeType": draw(st.sampled_from(CHALLENGE_TYPES)), "period": PERIOD,
                            "conditions": conditions}
    if draw(st.booleans()):
        rule["dailyTarget"] = {"consecutiveDays": draw(st.integers(min_value=1, max_value=3)),
                               "conditions": [{"metric": "steps_count", "op": ">=",
                                               "value": draw(st.integers(min_value=0, max_value=15000))}]}
    return {"rule": rule}


@st.composite
def fitness_rules(draw: st.DrawFn) -> dict[str, Any]:
    params = draw(fitness_threshold_rules())
    if draw(st.booleans()):
        params["mode"] = "competitive"
        params["competitiveMetric"] = draw(st.sampled_from(["steps_count", "distance_km", "duration_min"]))
    return params


def essence(verdict: Any) -> tuple[bool, float | None, tuple[str, ...]]:
    return verdict.pass_, verdict.score, verdict.reasons


fitness_evidence = st.dictionaries(st.sampled_from(FITNESS), st.lists(fitness_records(), max_size=8),
                                   min_size=1, max_size=3)


@SETTINGS
@given(params=fitness_rules(), evidence=fitness_evidence, data=st.data())
def test_fitness_verdict_does_not_depend_on_record_or_provider_order(params, evidence, data):
    rule = parse_challenge_rule(params, None, WINDOW)
    shuffled = {provider: data.draw(st.permutations(records)) for provider, records in reversed(evidence.items())}
    assert essence(evaluate(rule, shuffled)) == essence(evaluate(rule, evidence))


@contextmanager
def process_time_zone(name: str) -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


@SETTINGS
@given(params=fitness_rules(), evidence=fitness_evidence)
def test_fitness_verdict_does_not_depend_on_the_process_time_zone(params, evidence):
    rule = parse_challenge_rule(params, None, WINDOW)
    verdicts = set()
    for zone in ("UTC", "America/Los_Angeles", "Asia/Kathmandu", "Pacific/Kiritimati"):
        with process_time_zone(zone):
            verdicts.add(essence(evaluate(rule, evidence)))
    assert len(verdicts) == 1


@SETTINGS
@given(params=fitness_rules(), evidence=fitness_evidence, data=st.data())
def test_fitness_record_delivered_twice_counts_once(params, evidence, data):
    rule = parse_challenge_rule(params, None, WINDOW)
    provider = data.draw(st.sampled_from(sorted(evidence)))
    if not evidence[provider]:
        return
    again = data.draw(st.sampled_from(evidence[provider]))
    twice = {**evidence, provider: [*evidence[provider], dict(again)]}
    assert essence(evaluate(rule, twice))[:2] == essence(evaluate(rule, evidence))[:2]


@SETTINGS
@given(params=fitness_rules(), data=st.data())
def test_fitness_record_delivered_by_a_second_provider_counts_once(params, data):
    """The record is delivered again by a provider that delivered nothing else (one provider's records:
    distinct ids, distinct starts, so no record is already a duplicate within it)."""
    first, second = data.draw(st.permutations(FITNESS))[:2]
    records = data.draw(st.lists(fitness_records(usable_only=True), max_size=8,
                                 unique_by=lambda r: (r.get("start"), r.get("date"), r.get("dateTime"))))
    for number, record in enumerate(records):
        record["activity_id"] = f"id{number}"
    if not records:
        return
    again = data.draw(st.sampled_from(records))
    rule = parse_challenge_rule(params, None, WINDOW)
    once = evaluate(rule, {first: records})
    both = evaluate(rule, {first: records, second: [dict(again)]})
    assert essence(both)[:2] == essence(once)[:2]


def meeting(params: dict[str, Any], start: str) -> dict[str, Any]:
    """A new activity that meets the rule on its own: the rule's type, every value above the threshold."""
    if "rules" in params:
        metric = params["rules"]["metric"]
        activity_type = {"walking_km": "walk", "cycling_km": "cycle"}.get(metric, "run")
    else:
        activity_type = params["rule"]["challengeType"]
    return {"activity_id": "added", "type": activity_type, "start": start, "period": "activity", "steps": 40000,
            "distance_km": 40000, "calories": 40000, "duration_s": 40000 * 60}


@SETTINGS
@given(params=fitness_threshold_rules(), evidence=fitness_evidence, data=st.data())
def test_a_new_activity_that_meets_the_rule_never_turns_a_fitness_pass_into_a_fail(params, evidence, data):
    rule = parse_challenge_rule(params, None, WINDOW)
    before = evaluate(rule, evidence)
    # a new activity: its own id, starting 15 minutes off the grid of every other activity
    minute = data.draw(st.integers(min_value=0, max_value=47)) * 30 + 15
    start = f"{data.draw(st.sampled_from(DAYS))}T{minute // 60:02d}:{minute % 60:02d}:00Z"
    provider = data.draw(st.sampled_from(FITNESS))
    after = evaluate(rule, {**evidence, provider: [*evidence.get(provider, []), meeting(params, start)]})
    if before.pass_:
        assert after.pass_, (before, after)


# --- gaming ----------------------------------------------------------------------------------------------

T0 = 1740830400


@st.composite
def matches(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"start_time": T0 + draw(st.integers(min_value=0, max_value=200)) * 3600,
                              "kills": draw(st.integers(min_value=0, max_value=30)),
                              "deaths": draw(st.integers(min_value=0, max_value=10)),
                              "assists": draw(st.integers(min_value=0, max_value=20))}
    record[draw(st.sampled_from(["win", "result_for_player"]))] = draw(st.sampled_from([True, False, "win", "loss"]))
    if draw(st.booleans()):
        record["lobby_type"] = 7
    if draw(st.integers(min_value=0, max_value=3)):
        record["match_id"] = str(draw(st.integers(min_value=0, max_value=12)))
    return record


@st.composite
def gaming_rules(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"rules": {"type": "gaming", "metric": draw(st.sampled_from(["wins", "kills", "kda"])),
                          "threshold": draw(st.integers(min_value=0, max_value=40)),
                          "period": draw(st.sampled_from(["total", "per_match", "best_match"])),
                          "minMatches": draw(st.integers(min_value=1, max_value=4))}}
    rule: dict[str, Any] = {"minWins": draw(st.integers(min_value=1, max_value=5))}
    if draw(st.booleans()):
        rule["rankedOnly"] = True
    if draw(st.booleans()):
        rule["streakLength"] = draw(st.integers(min_value=1, max_value=3))
    return {"rule": rule}


gaming_evidence = st.dictionaries(st.sampled_from(GAMING), st.lists(matches(), max_size=8), min_size=1, max_size=2)


@SETTINGS
@given(params=gaming_rules(), evidence=gaming_evidence, data=st.data())
def test_gaming_verdict_does_not_depend_on_order_or_a_match_delivered_twice(params, evidence, data):
    rule = parse_challenge_rule(params)
    expected = essence(evaluate(rule, evidence))
    shuffled = {provider: data.draw(st.permutations(records)) for provider, records in reversed(evidence.items())}
    assert essence(evaluate(rule, shuffled)) == expected
    provider = data.draw(st.sampled_from(sorted(evidence)))
    if evidence[provider]:
        again = data.draw(st.sampled_from(evidence[provider]))
        twice = {**evidence, provider: [*evidence[provider], dict(again)]}
        assert essence(evaluate(rule, twice))[:2] == expected[:2]


@SETTINGS
@given(params=gaming_rules(), evidence=gaming_evidence, data=st.data())
def test_a_new_winning_match_never_turns_a_gaming_pass_into_a_fail(params, evidence, data):
    rule = parse_challenge_rule(params)
    before = evaluate(rule, evidence)
    added = data.draw(matches())
    added.update(match_id="added", win=True, lobby_type=7, kills=40, assists=20, deaths=0)
    added.pop("result_for_player", None)
    provider = data.draw(st.sampled_from(GAMING))
    after = evaluate(rule, {**evidence, provider: [*evidence.get(provider, []), added]})
    if before.pass_:
        assert after.pass_, (before, after)
