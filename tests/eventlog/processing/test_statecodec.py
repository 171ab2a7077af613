"""The changelog encoding of every stage's state: exact round trips, and the stored shapes pinned, so a
change of a state type shows up here (bump the stage's state_version unless only fields with defaults
were added)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import NamedTuple

import pytest
from kits.processors import TIMELINE, competitive, steps

from domain import job_state as js
from domain.challenge_state import (
    ChallengeCreated,
    ChallengeRegistered,
    ChallengeState,
    ParticipantJoined,
    apply_challenge_fact,
)
from effects.finalizer_state import FinalizerView
from effects.registry_writer import RegistryView
from effects.request_plan import RequestRef
from effects.worker_state import WorkerView
from eventlog.processing.statecodec import StateCodec
from streams.dispatch import DispatchState, VerdictFact
from streams.evaluation import ChallengeRule, parse_challenge_rule
from streams.processors.evaluator_core import ProviderEvidence, SubjectEvidence
from streams.ranking import RankedOutcome

FITNESS_RULE = {
    "challengeType": "run", "period": {"start": "2025-01-06T00:00:00+02:00", "end": "2025-02-02T23:59:59+02:00",
                                       "timezone": "Europe/Sofia"},
    "weeklyTarget": {"minOccurrences": 3, "perWeeks": 4},
    "conditions": [{"metric": "distance_km", "op": ">=", "value": 10}],
    "antiCheat": {"minGpsContinuity": 0.85, "minHrConsistency": 0.7, "maxTeleportJumps": 2},
}


def challenge(params: object) -> ChallengeState:
    state = apply_challenge_fact(ChallengeState(challenge_id=7),
                                 ChallengeRegistered(7, params, {"params": {"x": 1}}, TIMELINE, subject="0xC0"))
    state = apply_challenge_fact(state, ChallengeCreated(7, "0xaa", 1))
    return apply_challenge_fact(state, ParticipantJoined(7, "0xBB"))


def job() -> js.JobState:
    state = js.apply_to_job(None, js.JobQueued("q", "job", 7, ("0xbb", "0xaa"), "competitive"))
    state = js.apply_to_job(state, js.JobProcessing("p", "job"))
    state = js.apply_to_job(state, js.JobFailed("f", "job", "boom"))
    state = js.apply_to_job(state, js.JobProcessing("p2", "job"))
    return js.apply_to_job(state, js.JobExpired("x", "job", "0x98", "deadline passed", 4))


STATES = [
    SubjectEvidence("0xAbC", 1_700_000_000_000, {"fitbit": ProviderEvidence(steps(1234.5), "0x01"),
                                                  "strava": ProviderEvidence([{"a": [1, {"b": None}]}], "0x02")}),
    parse_challenge_rule({"rule": FITNESS_RULE}, None, TIMELINE),
    parse_challenge_rule(competitive(3), None, TIMELINE),
    DispatchState(7, challenge(competitive(2)), (VerdictFact(7, "0xaa", True, 3.5, 12), VerdictFact(7, "0xbb", False, None)),
                  None, "job", frozenset({"0xaa"}), False, (RankedOutcome("0xaa", 1, True, 3.5, None),)),
    WorkerView(7, challenge({"rule": FITNESS_RULE}), job(), participants=frozenset({"0xaa", "0xbb"}),
               requests=frozenset({RequestRef(4, "0x98"), RequestRef(5, "0x99")}),
               bound=frozenset({("0xaa", "0x99")}), binding_attempts=((("0xbb", "0x99"), 2),),
               finalized=(("e1", "0x99"),)),
    FinalizerView(7, challenge(competitive(1)), job_id="job", participants=frozenset({"0xaa"}), task_id="0x99",
                  retired_tasks=frozenset({"0x98"}), bound=frozenset({("0xaa", "0x99")}),
                  inference_finalized={"e1": ("0x99", 1_700_000_000)}, winners=frozenset({"0xaa"}),
                  proof_attempts={"0xbb": 2}, given_up=frozenset({"0xcc"}), finalize_attempts=1,
                  refused_at=1_700_000_100),
    RegistryView(7, True, "failed", 2, False, attempt_base=1),
    ChallengeRegistered(7, {"rule": FITNESS_RULE}, {"params": {"x": 1}}, TIMELINE, "m", "0xmh", "0xC0", "title"),
]


@pytest.mark.parametrize("state", STATES, ids=lambda s: type(s).__name__)
def test_every_stage_state_round_trips_exactly(state: object) -> None:
    codec = StateCodec(type(state))
    again = codec.decode(codec.encode(state))
    assert again == state
    assert codec.encode(again) == codec.encode(state)


def test_a_fitness_rule_keeps_its_zone_and_instants() -> None:
    rule = STATES[1]
    assert isinstance(rule, ChallengeRule) and rule.fitness is not None
    again = StateCodec(ChallengeRule).decode(StateCodec(ChallengeRule).encode(rule))
    assert again.fitness is not None and again.fitness.zone.key == "Europe/Sofia"
    assert again.fitness.period.start == datetime(2025, 1, 5, 22, tzinfo=UTC)


@dataclass(frozen=True)
class Old:
    a: int
    b: tuple[str, ...] = ()


@dataclass(frozen=True)
class New:
    a: int
    b: tuple[str, ...] = ()
    c: frozenset[str] = frozenset({"x"})
    d: dict[int, str] = field(default_factory=dict)


class Pair(NamedTuple):
    left: int
    right: tuple[int, ...]


def test_a_field_added_with_a_default_reads_what_was_written_before_and_unknown_fields_are_ignored() -> None:
    written = StateCodec(Old).encode(Old(1, ("p",)))
    assert StateCodec(New).decode(written) == New(1, ("p",))
    assert StateCodec(Old).decode(StateCodec(New).encode(New(2, (), frozenset({"y"}), {3: "z"}))) == Old(2)


def test_containers_keep_their_types() -> None:
    value = New(1, ("a", "b"), frozenset({"b", "a"}), {2: "two", 10: "ten"})
    encoded = StateCodec(New).encode(value)
    assert json.loads(encoded) == {"a": 1, "b": ["a", "b"], "c": ["a", "b"], "d": {"2": "two", "10": "ten"}}
    assert StateCodec(New).decode(encoded) == value
    pair = StateCodec(Pair)
    assert pair.decode(pair.encode(Pair(1, (2, 3)))) == Pair(1, (2, 3))


def test_a_type_without_an_encoding_is_refused_when_the_codec_is_built() -> None:
    @dataclass(frozen=True)
    class Ambiguous:
        value: Old | New

    with pytest.raises(TypeError):
        StateCodec(Ambiguous)


# The stored shape of each stage's state, field by field. A failure here means a state type changed:
# if a field was renamed, removed or retyped, bump that stage's `state_version` (a restore then rebuilds
# from the inputs instead of misreading the changelog); if fields were only added with defaults, just
# update the list.
SHAPES = {
    SubjectEvidence: ["subject", "first_at", "by_provider"],
    ChallengeRule: ["simple_fitness", "simple_gaming", "fitness", "gaming", "competitive", "top_n",
                    "competitive_metric", "timeline", "problems"],
    DispatchState: ["challenge_id", "challenge", "verdicts", "chain_time", "job_id", "job_participants",
                    "job_canceled", "ranking"],
    WorkerView: ["challenge_id", "challenge", "job", "participants", "requests", "bound", "binding_attempts",
                 "finalized"],
    FinalizerView: ["challenge_id", "challenge", "job_id", "job_canceled", "participants", "task_id", "retired_tasks",
                    "bound", "inference_finalized", "winners", "reported", "proof_attempts", "given_up",
                    "finalized_by_us", "finalize_attempts", "refused_at"],
    RegistryView: ["challenge_id", "registered", "status", "attempts", "final", "attempt_base"],
    ChallengeRegistered: ["challenge_id", "params", "proof", "timeline", "model_id", "model_hash", "subject", "title"],
    ChallengeState: ["challenge_id", "registered", "params", "proof", "timeline_raw", "rule", "model_id",
                     "model_hash", "subject", "title", "status", "chain_outcome", "creator", "chain_start_ts",
                     "chain_proof_deadline", "participants", "ignored"],
    js.JobState: ["job_id", "challenge_id", "mode", "status", "attempts", "last_error", "participants", "task_id",
                  "request_id", "worker_address", "poi_count", "retired_tasks", "retired_requests",
                  "expired_requests", "attempt_base", "requeues", "operator_command", "operator", "operator_reason",
                  "operator_event_id", "seen_event_ids", "ignored"],
}


@pytest.mark.parametrize("cls", list(SHAPES), ids=lambda c: c.__name__)
def test_stored_shapes_are_pinned(cls: type) -> None:
    sample = {type(s): s for s in STATES}.get(cls)
    if sample is None:
        sample = STATES[4].challenge if cls is ChallengeState else STATES[4].job  # type: ignore[attr-defined]
    assert list(json.loads(StateCodec(cls).encode(sample))) == SHAPES[cls]


def test_the_dispatch_state_is_stored_without_chain_time_by_the_dispatcher() -> None:
    state = replace(STATES[3], chain_time=123)  # type: ignore[type-var]
    assert json.loads(StateCodec(DispatchState).encode(replace(state, chain_time=None)))["chain_time"] is None


def test_the_evaluator_stores_a_subject_as_its_codec_reads_it_with_the_records_text_as_it_came() -> None:
    from streams.processors.evaluator import SUBJECTS, encode_subject

    texts = ['[ {"dateTime" : "2025-03-01", "value": 1e3},\n {"note": "caf\u00e9 \\"q\\" \\u00e9\\n", "n": -0.5} ]',
             '[]', '[{"deep": [[{"x": null}], true, false, 12345678901234567890123]}]']
    for text in texts:
        subject = SubjectEvidence("0xAbC\u00e9\"", 1_700_000_000_000, {
            "fitbit": ProviderEvidence(json.loads(text), "0x01", text),
            "strava": ProviderEvidence([{"a": [1, {"b": None}]}], "0x02"),  # restored: no text kept
        })
        stored = encode_subject(subject)
        again = SUBJECTS.decode(stored)
        assert again == subject
        assert [p.records for p in again.by_provider.values()] == [p.records for p in subject.by_provider.values()]
        assert text.encode() in stored  # written as sent, not encoded again
        assert json.loads(stored) == {**json.loads(SUBJECTS.encode(subject)), "by_provider": {
            name: {"records": p.records, "evidence_hash": p.evidence_hash} for name, p in subject.by_provider.items()}}


def test_a_set_of_unorderable_items_is_encoded_alike_whatever_the_hash_seed() -> None:
    """A set iterates in an order that depends on string hashing, which differs between processes: the
    same state must still be stored as the same bytes (a round trip once compared unequal 1 time in 10)."""
    script = ("from effects.request_plan import RequestRef\n"
              "from eventlog.processing.statecodec import encode_json\n"
              "print(encode_json(frozenset(RequestRef(n, f'0x{n:02x}') for n in range(8))).decode())")
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(12)}
    assert len(outputs) == 1, outputs
