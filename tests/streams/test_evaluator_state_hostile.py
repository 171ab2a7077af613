"""The evaluator's state never raises on any registration or evidence event (issue 13.6, 13.8)."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.challenge_state import ChallengeRegistered
from domain.evidence import EvidenceFact
from streams.processors.evaluator_core import EvaluatorState

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
              st.sampled_from([1e300, 10**400, "9999-12-31T23:59:00Z", "competitive", "{", "run", "steps"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(
        st.sampled_from(["rule", "rules", "params", "challengeType", "period", "start", "end", "type", "metric",
                         "threshold", "mode", "topN", "minWins", "endsAt", "startsAt", "steps", "start_ts"]),
        inner, max_size=5)),
    max_leaves=20)


def evidence(provider: str, records: list[object], at: int) -> EvidenceFact:
    return EvidenceFact(challenge_id=1, subject="0xabc", provider=provider, records_json=json.dumps(records, default=str),
                        evidence_hash="0x01", raw_ref=None, occurred_at=at)


@settings(max_examples=200, deadline=None)
@given(params=json_values, proof=json_values, timeline=json_values,
       provider=st.sampled_from(["strava", "fitbit", "riot", "manual", "mystery"]),
       records=st.lists(json_values, max_size=5))
def test_any_registration_and_evidence_give_verdicts(params, proof, timeline, provider, records):
    state = EvaluatorState()
    outs = [state.on_evidence(evidence(provider, records, 1), records, "ev:1")]
    outs += state.on_registration(ChallengeRegistered(challenge_id=1, params=params, proof=proof, timeline=timeline),
                                  "reg:1", 2)
    outs.append(state.on_evidence(evidence("apple", records, 3), records, "ev:2"))
    for out in outs:
        payload = out.payload()
        assert payload["score"] is None or math.isfinite(payload["score"])
        assert isinstance(payload["pass"], bool)


def test_a_rule_with_problems_fails_every_subject_with_the_reason():
    state = EvaluatorState()
    runs = [{"type": "run", "start": "2026-01-02T07:00:00Z", "distance_km": 1}]
    state.on_evidence(evidence("strava", runs, 1), runs, "ev:1")
    params = {"rule": {"challengeType": "jogging", "period": {"start": "2026-01-01", "end": "2026-01-08"}}}
    [out] = state.on_registration(ChallengeRegistered(challenge_id=1, params=params, timeline={"endsAt": 1e300}),
                                  "reg:1", 2)
    assert (out.verdict.pass_, out.verdict.score) == (False, None)
    assert out.verdict.reasons == (
        "Challenge rule cannot be used: params.rule.challengeType: unknown challenge type 'jogging' (known: calories, "
        "crossfit, cycle, exercise_time, hike, rowing, run, steps, strength, swim, walk, yoga); timeline.endsAt 1e+300 "
        "is not a time (ISO-8601 or Unix seconds, 1970..9000)",)
