"""`lc run evaluator`: lc.evidence + lc.challenges.registered → VerdictIssued on lc.verdicts.

Plain confluent-kafka (`MergedStage` on the foundation's `ConsumerLoop`), consumer group
`lc-evaluator`, at least once with deterministic verdict ids (`evaluator_core`). Evidence and
registrations of a partition are processed in Kafka-timestamp order, so evidence published after a
registration is always evaluated with that rule; each verdict carries its input's timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from domain.chain_time import ChainTime
from domain.challenge_state import ChallengeRegistered
from eventlog.consumer import Received, Reject, StopFlag
from eventlog.processing.inputs import EvidenceFact, evidence_fact, registration
from eventlog.processing.merge import Timed
from eventlog.processing.stage import MergedStage
from eventlog.topics import CHALLENGES_REGISTERED, EVIDENCE, VERDICTS
from streams.processors.evaluator_core import EvaluatorState
from streams.settings import StreamSettings

GROUP = "lc-evaluator"


class EvidenceInput(NamedTuple):
    fact: EvidenceFact
    records: list[object]
    event_id: str


@dataclass(frozen=True)
class RegistrationInput:
    fact: ChallengeRegistered
    event_id: str
    occurred_at: int


class Evaluator(MergedStage[EvidenceInput | RegistrationInput]):
    group = GROUP
    inputs = (EVIDENCE, CHALLENGES_REGISTERED)

    def __init__(self, settings: StreamSettings, *, stop: StopFlag | None = None, batch_size: int = 1000) -> None:
        super().__init__(settings, stop=stop, batch_size=batch_size)
        self.state = EvaluatorState()
        self.partition_of: dict[int, int] = {}  # challenge id -> partition

    def read(self, received: Received, reject: Reject) -> EvidenceInput | RegistrationInput | None:
        event = received.event
        if received.topic == EVIDENCE and event.event_type == "EvidenceSubmitted":
            try:
                fact, records = evidence_fact(received)
            except ValueError as exc:
                reject(received, f"invalid evidence: {exc}")
                return None
            return EvidenceInput(fact, records, event.event_id)
        if received.topic == CHALLENGES_REGISTERED and event.event_type == "ChallengeRegistered":
            try:
                return RegistrationInput(registration(received), event.event_id, event.occurred_at)
            except ValueError as exc:
                reject(received, f"invalid challenge registration: {exc}")
        return None

    def apply(self, partition: int, entry: Timed[EvidenceInput | RegistrationInput | ChainTime], emit: bool) -> None:
        item = entry.item
        if isinstance(item, EvidenceInput):
            self.partition_of[item.fact.challenge_id] = partition
            out = self.state.on_evidence(item.fact, item.records, item.event_id, emit=emit)
            outs = [out] if out is not None else []
        elif isinstance(item, RegistrationInput):
            self.partition_of[item.fact.challenge_id] = partition
            outs = self.state.on_registration(item.fact, item.event_id, item.occurred_at, emit=emit)
        else:
            return
        for out in outs:
            self.producer.publish(VERDICTS, str(out.challenge_id), "VerdictIssued", out.payload(),
                                  event_id=out.event_id, occurred_at=out.occurred_at, timestamp_ms=entry.timestamp)

    def forget(self, partition: int) -> None:
        kept = {cid for cid, p in self.partition_of.items() if p != partition}
        self.state.drop_challenges(kept)
        self.partition_of = {cid: p for cid, p in self.partition_of.items() if cid in kept}


def run_evaluator(settings: StreamSettings, stop: StopFlag) -> None:
    Evaluator(settings, stop=stop).run()
