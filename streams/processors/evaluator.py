"""`lc run evaluator`: lc.evidence + lc.challenges.registered → VerdictIssued on lc.verdicts.

Plain confluent-kafka (`MergedStage` on the foundation's `ConsumerLoop`), consumer group
`lc-evaluator`, verdicts, state and offsets committed in one transaction, with deterministic verdict
ids (`evaluator_core`). Evidence and registrations of a partition are processed in Kafka-timestamp
order, so evidence published after a registration is always evaluated with that rule; each verdict
carries its input's timestamp.

State in lc.state.evaluator (statecodec JSON): `r/<challenge>` -> the registration that stands
(ChallengeRegistered: the id's owner rule judges later ones against it; the rule is parsed from it
again when it is loaded), `s/<challenge>/<subject, lower-cased>` -> that subject's evidence
(SubjectEvidence). A restore keeps
the stored bytes and decodes a challenge when an input first touches it (decoding every subject up
front was most of a restart's time), so `challenges()` is the whole state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from domain.chain_time import ChainTime
from domain.challenge_state import ChallengeRegistered
from eventlog.consumer import Received, Reject, StopFlag
from eventlog.processing.inputs import EvidenceFact, evidence_fact, registration
from eventlog.processing.merge import Timed
from eventlog.processing.stage import MergedStage
from eventlog.processing.statecodec import StateCodec, json_text
from eventlog.topics import CHALLENGES_REGISTERED, EVIDENCE, STATE_EVALUATOR, VERDICTS
from streams.evaluation import parse_challenge_rule
from streams.processors.evaluator_core import ChallengeEvidence, EvaluatorState, SubjectEvidence
from streams.settings import StreamSettings

GROUP = "lc-evaluator"
REGISTRATIONS = StateCodec(ChallengeRegistered)
SUBJECTS = StateCodec(SubjectEvidence)


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
    changelog_topic = STATE_EVALUATOR
    state_version = 2  # 2: `r/` holds the standing registration (was its parsed rule)

    def __init__(self, settings: StreamSettings, *, stop: StopFlag | None = None, batch_size: int = 1000) -> None:
        super().__init__(settings, stop=stop, batch_size=batch_size)
        self.state = EvaluatorState()
        self.partition_of: dict[int, int] = {}  # challenge id -> partition
        self.stored: dict[int, dict[str, bytes]] = {}  # restored, not decoded yet: challenge -> key -> value

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
            challenge_id = item.fact.challenge_id
            self.partition_of[challenge_id] = partition
            if challenge_id in self.stored:
                self._decode(challenge_id)
            out = self.state.on_evidence(item.fact, item.records, item.event_id, emit=emit)
            self.changelog.changed(partition, f"s/{challenge_id}/{item.fact.subject.strip().lower()}")
            outs = [out] if out is not None else []
        elif isinstance(item, RegistrationInput):
            self.partition_of[item.fact.challenge_id] = partition
            if item.fact.challenge_id in self.stored:
                self._decode(item.fact.challenge_id)
            outs = self.state.on_registration(item.fact, item.event_id, item.occurred_at, emit=emit)
            self.changelog.changed(partition, f"r/{item.fact.challenge_id}")
        else:
            return
        for out in outs:
            self.producer.publish(VERDICTS, str(out.challenge_id), "VerdictIssued", out.payload(),
                                  event_id=out.event_id, occurred_at=out.occurred_at, timestamp_ms=entry.timestamp)

    def forget(self, partition: int) -> None:
        kept = {cid for cid, p in self.partition_of.items() if p != partition}
        self.state.drop_challenges(kept)
        self.partition_of = {cid: p for cid, p in self.partition_of.items() if cid in kept}
        self.stored = {cid: values for cid, values in self.stored.items() if cid in kept}

    def challenges(self) -> dict[int, ChallengeEvidence]:
        """The whole state, every restored challenge decoded."""
        for challenge_id in list(self.stored):
            self._decode(challenge_id)
        return self.state.challenges

    # --- the state in lc.state.evaluator ------------------------------------------------------------

    def state_keys(self, partition: int) -> Iterator[str]:
        for challenge_id, challenge in self.challenges().items():
            if self.partition_of.get(challenge_id) == partition:
                if challenge.registration is not None:
                    yield f"r/{challenge_id}"
                for subject in challenge.subjects:
                    yield f"s/{challenge_id}/{subject}"

    def encode_state(self, partition: int, key: str) -> bytes | None:
        kind, challenge_id, subject = _parse_key(key)
        if challenge_id in self.stored:
            self._decode(challenge_id)
        challenge = self.state.challenges.get(challenge_id)
        if challenge is None:
            return None
        if kind == "r":
            return REGISTRATIONS.encode(challenge.registration) if challenge.registration is not None else None
        found = challenge.subjects.get(subject)
        return encode_subject(found) if found is not None else None

    def load_state(self, partition: int, key: str, value: bytes) -> None:
        challenge_id = int(key.split("/", 2)[1])
        self.stored.setdefault(challenge_id, {})[key] = value
        self.partition_of[challenge_id] = partition

    def _decode(self, challenge_id: int) -> None:
        challenge = self.state.challenge(challenge_id)
        for key, value in self.stored.pop(challenge_id).items():
            kind, _, subject = _parse_key(key)
            if kind == "r":
                registration = REGISTRATIONS.decode(value)
                challenge.registration = registration
                challenge.rule = parse_challenge_rule(registration.params, registration.proof, registration.timeline)
            else:
                challenge.subjects[subject] = SUBJECTS.decode(value)


def encode_subject(subject: SubjectEvidence) -> bytes:
    """What SUBJECTS encodes (and decodes), each provider's records written as the text they were parsed
    from (JSON checked when the evidence was read) rather than encoded again: on every evidence event
    that was the larger part of writing the changelog."""
    providers = ",".join(
        f'{json_text(name)}:{{"records":{json_text(ev.records) if ev.records_json is None else ev.records_json},'
        f'"evidence_hash":{json_text(ev.evidence_hash)}}}'
        for name, ev in subject.by_provider.items())
    return (f'{{"subject":{json_text(subject.subject)},"first_at":{subject.first_at},'
            f'"by_provider":{{{providers}}}}}').encode()


def _parse_key(key: str) -> tuple[str, int, str]:
    """`r/<challenge>` or `s/<challenge>/<subject>` -> (kind, challenge id, subject or "")."""
    kind, _, rest = key.partition("/")
    challenge, _, subject = rest.partition("/")
    return kind, int(challenge), subject


def run_evaluator(settings: StreamSettings, stop: StopFlag) -> None:
    Evaluator(settings, stop=stop).run()
