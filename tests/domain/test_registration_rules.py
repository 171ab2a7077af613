"""Registrations whose rule the evaluator could not act on are refused at the door (issue 13.5, 13.6, 13.8)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from domain.registration import InvalidRegistration, validate_registration

SUBJECT = "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TIMELINE = {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-08T00:00:00Z",
            "proofDeadline": "2026-01-09T00:00:00Z"}
PERIOD = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"}


def register(params: object, proof: object = None, timeline: dict[str, Any] | None = None) -> None:
    document = {"id": 42, "subject": SUBJECT, "model_id": "fitness.steps@1", "params": params,
                "timeline": timeline or TIMELINE}
    if proof is not None:
        document["proof"] = proof
    validate_registration(document)


REFUSED = [
    # 5: what the original evaluated into a structural pass
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": "10000", "period": "total"}}, None, None,
     "params.rules.threshold must be a number from 0 to 1e+12, got '10000'"),
    ({"rule": {"challengeType": "jogging", "period": PERIOD,
               "conditions": [{"metric": "distance_km", "op": ">=", "value": 100}]}}, None, None,
     "params.rule.challengeType: unknown challenge type 'jogging'"),
    ({"rule": {"challengeType": "run", "period": "2026-01"}}, None, None,
     "params.rule.period must be an object {start, end}"),
    ({"templateId": "x"}, {"params": "{\"rule\": {\"challengeType\": \"run\""}, None, "proof.params is not valid JSON"),
    ({"rule": "[1, 2]"}, None, None, "params.rule is not a JSON object"),
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": math.nan, "period": "total"}}, None, None,
     "params.rules.threshold must be a number from 0 to 1e+12, got nan"),
    ({"rules": {"type": "fitness", "metric": "floors", "threshold": 10, "period": "total"}}, None, None,
     "params.rules.metric must be one of"),
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": 10, "period": "weekly"}}, None, None,
     "params.rules.period must be one of average, daily, total, got 'weekly'"),
    ({"rules": {"type": "running", "metric": "steps", "threshold": 10, "period": "total"}}, None, None,
     "params.rules.type must be one of fitness, gaming"),
    ({"rule": {"challengeType": "run", "period": PERIOD,
               "conditions": [{"metric": "speed_of_light", "op": ">=", "value": 1}]}}, None, None,
     "params.rule.conditions[0].metric: unknown metric 'speed_of_light'"),
    ({"rule": {"challengeType": "run", "period": PERIOD,
               "conditions": [{"metric": "distance_km", "op": "=>", "value": 5}]}}, None, None,
     "params.rule.conditions[0].op must be one of"),
    ({"rule": {"challengeType": "run", "period": PERIOD, "weeklyTarget": {"minOccurrences": 2}}}, None, None,
     "params.rule.weeklyTarget needs minOccurrences and perWeeks"),
    ({"rule": {"challengeType": "run", "period": PERIOD, "dailyTarget": {"consecutiveDays": 3}}}, None, None,
     "params.rule.dailyTarget needs both consecutiveDays and conditions"),
    ({"rule": {"hero": 7}}, None, None, "params.rule.hero must be a string"),
    ({"rule": {"minWins": 3, "mode": "ranked"}}, None, None, "params.rule.mode must be one of competitive, threshold"),
    ({"rule": {"minWins": 3, "mode": "competitive", "competitiveMetric": "mvps"}}, None, None,
     "params.rule.competitiveMetric: unknown competitive metric 'mvps'"),
    # a bad value in a place the merge does not read is not hidden by a good one read earlier
    ({"topN": "3", "rule": {"minWins": 1, "mode": "competitive", "topN": 3}}, None, None,
     "params.topN must be a whole number from 1 to 100000, got '3'"),
    ({"challengeType": "jogging", "rule": {"challengeType": "run", "period": PERIOD}}, None, None,
     "params.challengeType: unknown challenge type 'jogging'"),
    # 6: what made the original's parser raise OverflowError
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": 10**400, "period": "total"}}, None, None,
     "params.rules.threshold must be a number"),
    ({"rule": {"challengeType": "run", "period": {"start": 1e300, "end": "2026-01-08T00:00:00Z"}}}, None, None,
     "params.rule.period.start 1e+300 is not a time"),
    ({"rule": {"minWins": 1}}, None, {**TIMELINE, "proofDeadline": 1e300}, "timeline.proofDeadline 1e+300 is not a time"),
    # 8: infinite or negative counts and thresholds
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": 1, "period": "daily", "minDays": math.inf}},
     None, None, "params.rules.minDays must be a whole number from 1 to 100000, got inf"),
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": -5, "period": "total"}}, None, None,
     "params.rules.threshold must be a number from 0"),
    ({"rule": {"minWins": -1}}, None, None, "params.rule.minWins must be a whole number from 1"),
    ({"rule": {"minWins": 2.5}}, None, None, "params.rule.minWins must be a whole number from 1"),
    ({"rules": {"type": "gaming", "metric": "kills", "threshold": 5, "period": "total", "minMatches": 0}}, None, None,
     "params.rules.minMatches must be a whole number from 1"),
]


@pytest.mark.parametrize(("params", "proof", "timeline", "reason"), REFUSED, ids=[r[3][:48] for r in REFUSED])
def test_a_rule_the_evaluator_cannot_act_on_is_refused_with_the_reason(params, proof, timeline, reason):
    with pytest.raises(InvalidRegistration) as refused:
        register(params, proof, timeline)
    assert str(refused.value).startswith("rule: ")
    assert reason in str(refused.value)


def test_an_end_time_too_large_for_a_date_is_refused_not_an_overflow_error():
    with pytest.raises(InvalidRegistration, match="timeline needs startsAt and endsAt"):
        register({"rule": {"minWins": 1}}, timeline={"startsAt": "2026-01-01T00:00:00Z", "endsAt": 1e300})


ACCEPTED = [
    {"rules": {"type": "fitness", "metric": "steps", "threshold": 10000, "period": "daily", "minDays": "3"}},
    {"rule": {"challengeType": "walking", "period": PERIOD,
              "dailyTarget": {"consecutiveDays": 3, "conditions": [{"metric": "steps", "op": ">=", "value": 8000}]}}},
    {"rule": {"challengeType": "run", "period": {**PERIOD, "timezone": "Europe/Sofia"},
              "conditions": [{"metric": "distance_km", "op": ">=", "value": 5}],
              "antiCheat": {"minGpsContinuity": 0.6, "maxTeleportJumps": 3}}},
    {"rule": {"mode": "competitive", "rankedOnly": True, "period": PERIOD, "topN": 3}},
    {"rules": {}},  # an empty place holds no rule: a structural challenge, as before
    {"templateId": "x", "rule": ""},
]


@pytest.mark.parametrize("params", ACCEPTED)
def test_rules_of_the_templates_are_accepted(params):
    register(params)
