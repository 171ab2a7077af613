"""`lc run evaluator`: lc.evidence + lc.challenges.registered → VerdictIssued on lc.verdicts.

Plain confluent-kafka (`ConsumerLoop`), consumer group `lc-evaluator`, at least once: a batch's
verdicts are flushed before its offsets are committed, and every verdict id is derived from its
inputs. The two input topics are co-partitioned (same key, same partition count) and the group uses
the range assignor, so one instance owns all of a challenge's evidence and registrations. State is
rebuilt on assignment by re-reading the assigned partitions up to the committed position.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

from confluent_kafka import TopicPartition

from eventlog.config import Settings
from eventlog.consumer import ConsumerLoop, Received, Reject, StopFlag
from eventlog.producer import EventProducer
from eventlog.topics import CHALLENGES_REGISTERED, EVIDENCE, VERDICTS
from streams.processors.evaluator_core import EvaluatorState, VerdictOut
from streams.processors.inputs import evidence_fact, registration
from streams.processors.restore import committed_positions, read_up_to

log = logging.getLogger(__name__)

GROUP = "lc-evaluator"
INPUTS = (EVIDENCE, CHALLENGES_REGISTERED)
# Co-partitioning: partition p of every input topic goes to the same instance.
CO_PARTITIONED = {"group.remote.assignor": "range"}


def _ignore(_received: Received, _reason: str) -> None:
    return None


class Evaluator:
    def __init__(self, settings: Settings, *, stop: StopFlag | None = None, batch_size: int = 500) -> None:
        self.settings = settings
        self.state = EvaluatorState()
        self.partition_of: dict[int, int] = {}  # challenge id -> input partition
        self.producer = EventProducer(settings, GROUP)
        self.loop = ConsumerLoop(
            settings, GROUP, INPUTS, stop=stop, on_assign=self._on_assign, on_revoke=self._on_revoke,
            batch_size=batch_size, poll_timeout=settings.stream_poll_seconds, extra_config=CO_PARTITIONED,
        )

    @property
    def stop(self) -> StopFlag:
        return self.loop.stop

    def run(self, until: Callable[[], bool] | None = None) -> None:
        try:
            self.loop.run(self.handle, until)
        finally:
            self.producer.close()

    def handle(self, batch: Sequence[Received], reject: Reject) -> None:
        for received in batch:
            for out in self.apply(received, reject, emit=True):
                self.producer.publish(VERDICTS, str(out.challenge_id), "VerdictIssued", out.payload(),
                                      event_id=out.event_id, occurred_at=out.occurred_at)
        self.producer.flush()  # before the loop commits the batch's offsets

    def apply(self, received: Received, reject: Reject, *, emit: bool) -> list[VerdictOut]:
        event = received.event
        if received.topic == EVIDENCE and event.event_type == "EvidenceSubmitted":
            try:
                fact = evidence_fact(received)
                records = json.loads(fact.records_json)
            except ValueError as exc:
                reject(received, f"invalid evidence: {exc}")
                return []
            self.partition_of[fact.challenge_id] = received.partition
            out = self.state.on_evidence(fact, records, event.event_id, emit=emit)
            return [out] if out is not None else []
        if received.topic == CHALLENGES_REGISTERED and event.event_type == "ChallengeRegistered":
            try:
                fact = registration(received)
            except ValueError as exc:
                reject(received, f"invalid challenge registration: {exc}")
                return []
            self.partition_of[fact.challenge_id] = received.partition
            return self.state.on_registration(fact, event.event_id, event.occurred_at, emit=emit)
        return []

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        restored = 0
        for received in read_up_to(self.settings, committed_positions(self.loop.consumer, partitions),
                                   self.loop.catalogue_topic, GROUP):
            self.apply(received, _ignore, emit=False)
            restored += 1
        log.info("%s restored %d input events for %d partitions", GROUP, restored, len(partitions))

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        revoked = {tp.partition for tp in partitions if self.loop.catalogue_topic(tp.topic) == EVIDENCE}
        still_owned = {cid for cid, p in self.partition_of.items() if p not in revoked}
        self.state.drop_challenges(still_owned)
        self.partition_of = {cid: p for cid, p in self.partition_of.items() if cid in still_owned}


def run_evaluator(settings: Settings, stop: StopFlag) -> None:
    Evaluator(settings, stop=stop).run()
