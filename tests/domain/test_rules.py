"""Rule parsing: every format, the four mode paths, topN, timelines (spec/evaluation.md §1)."""

from __future__ import annotations

import json

import pytest

from domain.timeline import Timeline
from streams.evaluation import parse_challenge_rule, parse_timeline

SIMPLE_FITNESS = {"type": "fitness", "metric": "steps", "threshold": 1000, "period": "daily", "minDays": "2"}
FULL_FITNESS = {"challengeType": "run", "period": {"start": "2025-03-01T00:00:00Z", "end": "2025-03-02T00:00:00Z",
                                                    "timezone": "Europe/Sofia"},
                "conditions": [{"metric": "distance_km", "op": ">=", "value": 5}]}


def test_simple_fitness_from_params_then_proof():
    rule = parse_challenge_rule({"rules": SIMPLE_FITNESS})
    assert rule.simple_fitness is not None
    assert (rule.simple_fitness.metric, rule.simple_fitness.min_days) == ("steps", 2)
    from_proof = parse_challenge_rule(None, {"params": {"rules": json.dumps(SIMPLE_FITNESS)}})
    assert from_proof.simple_fitness == rule.simple_fitness


@pytest.mark.parametrize("broken", [
    {**SIMPLE_FITNESS, "threshold": "1000"},
    {**SIMPLE_FITNESS, "threshold": True},
    {**SIMPLE_FITNESS, "metric": "floors"},
    {k: v for k, v in SIMPLE_FITNESS.items() if k != "type"},
    {"metric": "steps", "threshold": 1000},
])
def test_simple_fitness_not_recognised(broken):
    assert parse_challenge_rule({"rules": broken}).simple_fitness is None


def test_simple_gaming():
    rule = parse_challenge_rule({"rules": {"type": "gaming", "metric": "kda", "threshold": 2, "period": "total",
                                           "minMatches": 3}})
    assert rule.simple_gaming is not None
    assert (rule.simple_gaming.metric, rule.simple_gaming.min_matches) == ("kda", 3)
    assert rule.simple_fitness is None


@pytest.mark.parametrize("where", ["proof.params.rule", "proof.params", "params.rule", "params"])
def test_full_fitness_rule_on_each_path(where):
    container, _, leaf = where.partition(".")
    if container == "proof":
        proof = {"params": {"rule": FULL_FITNESS}} if leaf == "params.rule" else {"params": FULL_FITNESS}
        rule = parse_challenge_rule(None, proof)
    else:
        rule = parse_challenge_rule({"rule": FULL_FITNESS} if leaf == "rule" else FULL_FITNESS)
    assert rule.fitness is not None
    assert rule.fitness.challenge_type == "run"
    assert rule.fitness.zone.key == "Europe/Sofia"
    assert rule.fitness.conditions[0].value == 5


def test_first_candidate_wins():
    other = {**FULL_FITNESS, "challengeType": "swim"}
    rule = parse_challenge_rule({"rule": other}, {"params": {"rule": FULL_FITNESS}})
    assert rule.fitness.challenge_type == "run"


def test_fitness_rule_needs_a_period_object():
    assert parse_challenge_rule({"challengeType": "run"}).fitness is None
    assert parse_challenge_rule({"challengeType": "dance", "period": {}}).fitness is None


def test_unknown_time_zone_is_a_problem():
    rule = parse_challenge_rule({"challengeType": "run", "period": {"timezone": "Mars/Olympus"}})
    assert rule.fitness.zone.key == "UTC"
    assert rule.problems == ("params.period.timezone: unknown time zone 'Mars/Olympus'",)


def test_gaming_rule_fields_and_defaults():
    rule = parse_challenge_rule({"rule": {"hero": "Axe", "rankedOnly": "true", "streakLength": 0}})
    assert rule.gaming is not None
    assert (rule.gaming.min_wins, rule.gaming.hero, rule.gaming.ranked_only, rule.gaming.streak_length) == (
        1, "Axe", True, 0)


def test_stray_mode_key_is_not_a_gaming_rule():
    assert parse_challenge_rule({"mode": "competitive"}).gaming is None
    assert parse_challenge_rule({"minWins": None}).gaming is None
    assert parse_challenge_rule({"mode": "competitive", "competitiveMetric": "kills"}).gaming is not None


@pytest.mark.parametrize("where", ["proof.params.rule", "proof.params", "params.rule", "params"])
def test_competitive_mode_and_top_n_on_each_path(where):
    settings = {"mode": "competitive", "topN": 3, "competitiveMetric": "distance_km"}
    params = proof = None
    if where == "proof.params.rule":
        proof = {"params": {"rule": settings}}
    elif where == "proof.params":
        proof = {"params": settings}
    elif where == "params.rule":
        params = {"rule": settings}
    else:
        params = settings
    rule = parse_challenge_rule(params, proof)
    assert (rule.competitive, rule.mode, rule.top_n, rule.competitive_metric) == (
        True, "competitive", 3, "distance_km")


@pytest.mark.parametrize(("top_n", "expected"), [("3", 1), (0, 1), (-2, 1), (True, 1), (2.7, 1), (1e300, 1), (5, 5)])
def test_top_n_must_be_a_positive_whole_number(top_n, expected):
    rule = parse_challenge_rule({"mode": "competitive", "topN": top_n})
    assert rule.top_n == expected
    assert bool(rule.problems) is (top_n != 5)


def test_threshold_by_default():
    assert parse_challenge_rule({}).mode == "threshold"
    rule = parse_challenge_rule({"mode": "Competitive"})
    assert (rule.competitive, rule.mode, rule.top_n) == (False, "threshold", 1)
    assert rule.problems == ("params.mode must be one of competitive, threshold, got 'Competitive'",)


def test_params_as_json_string_and_garbage():
    rule = parse_challenge_rule(json.dumps({"rule": FULL_FITNESS}))
    assert rule.fitness is not None
    garbage = parse_challenge_rule("{not json")
    assert garbage.fitness is None
    assert garbage.problems == ("params is not valid JSON: '{not json'",)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"startsAt": "2025-03-01T00:00:00Z", "endsAt": "2025-03-02T00:00:00+02:00", "proofDeadline": "1740960000"},
     Timeline(starts_at=1740787200, ends_at=1740866400, proof_deadline=1740960000)),
    ({"startTs": 1740787200, "ends": 1740873600000, "proofDeadlineAt": "2025-03-03"},
     Timeline(starts_at=1740787200, ends_at=1740873600, proof_deadline=1740960000)),
    ({"startsAt": 0, "endsAt": "soon", "joinClosesAt": "2025-03-01T00:00:00"},
     Timeline(join_closes_at=1740787200)),
    (None, Timeline()),
    ('{"startsAt": 5}', Timeline(starts_at=5)),
])
def test_timeline_parsing(raw, expected):
    assert parse_timeline(raw) == expected
