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


def test_a_later_registration_of_another_wallet_or_another_rule_does_not_change_the_verdicts() -> None:
    """The id's owner rule (domain.registration.check_update) holds in the evaluator too: the first
    registration's rule stands against a takeover and against a rule change by the owner."""
    owner, squatter = "0x" + "aa" * 20, "0x" + "bb" * 20
    strict = {"rule": {"challengeType": "steps", "conditions": [{"metric": "steps", "op": ">=", "value": 10_000}]}}
    lax = {"rule": {"challengeType": "steps", "conditions": [{"metric": "steps", "op": ">=", "value": 1}]}}
    state = EvaluatorState()
    state.on_registration(ChallengeRegistered(challenge_id=7, params=strict, subject=owner), "r1", 1_000)
    records = [{"date": "2025-01-01", "steps": 500, "period": "day"}]
    fact = EvidenceFact(7, "0x" + "cc" * 20, "fitbit", json.dumps(records), "0x" + "11" * 32, None, 2_000)
    first = state.on_evidence(fact, records, "e1")
    assert first is not None and first.verdict.pass_ is False

    assert state.on_registration(ChallengeRegistered(challenge_id=7, params=lax, subject=squatter), "r2", 3_000) == []
    assert state.on_registration(ChallengeRegistered(challenge_id=7, params=lax, subject=owner), "r3", 4_000) == []
    [again] = state.on_registration(ChallengeRegistered(challenge_id=7, params=strict, subject=owner, title="t"),
                                    "r4", 5_000)
    assert again.verdict.pass_ is False
