"""The evaluator's state and step, without I/O: evidence and registrations in, verdicts out.

State per challenge: its registered rule (the latest registration) and, per lower-cased subject, the
newest records of every provider the subject used. New evidence re-evaluates that subject across
all its providers; a (new) registration re-evaluates every subject of the challenge. Each verdict's
id is derived from the challenge, the subject and the input event that caused it, so processing the
same input again (a redelivery, a restore) yields the same id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

from domain.challenge_state import ChallengeRegistered, owner_refusal
from domain.compact_json import compact_json_encoder
from eventlog.processing.inputs import EvidenceFact
from streams.evaluation import ChallengeRule, Verdict, combine_evidence_hashes, evaluate, parse_challenge_rule

_METADATA_JSON = compact_json_encoder(sort_keys=True, default=str)


@dataclass
class ProviderEvidence:
    records: list[object]
    evidence_hash: str
    # the JSON text the records were parsed from, when known: the changelog stores it as it came
    records_json: str | None = field(default=None, compare=False, repr=False)


@dataclass
class SubjectEvidence:
    subject: str  # casing of the first evidence
    first_at: int  # earliest submission, epoch ms
    by_provider: dict[str, ProviderEvidence] = field(default_factory=dict)


@dataclass
class ChallengeEvidence:
    rule: ChallengeRule | None = None
    registration: ChallengeRegistered | None = None  # the registration that stands (the id's owner rule)
    subjects: dict[str, SubjectEvidence] = field(default_factory=dict)


class VerdictOut(NamedTuple):
    event_id: str
    challenge_id: int
    subject: str
    verdict: Verdict
    evidence_hash: str
    evidence_at: int
    trigger_event_id: str
    occurred_at: int  # the trigger's time, epoch ms

    def payload(self) -> dict[str, object]:
        v = self.verdict
        return {
            "challenge_id": self.challenge_id, "subject": self.subject, "pass": v.pass_,
            "score": float(v.score) if v.score is not None else None, "reasons": list(v.reasons),
            "metadata_json": _METADATA_JSON(v.metadata) if v.metadata is not None else None,
            "evaluator": v.evaluator, "evidence_hash": self.evidence_hash, "evidence_at": self.evidence_at,
            "trigger_event_id": self.trigger_event_id,
        }


def verdict_event_id(challenge_id: int, subject: str, trigger_event_id: str) -> str:
    digest = hashlib.sha256(f"lc.verdict\x1f{challenge_id}\x1f{subject.lower()}\x1f{trigger_event_id}".encode())
    return "verdict:" + digest.hexdigest()


class EvaluatorState:
    """Every challenge of the partitions one evaluator instance owns."""

    def __init__(self) -> None:
        self.challenges: dict[int, ChallengeEvidence] = {}

    def drop_challenges(self, keep: set[int] | None = None) -> None:
        """Forget state (all of it, or every challenge not in `keep`) after partitions are revoked."""
        if keep is None:
            self.challenges.clear()
        else:
            self.challenges = {cid: c for cid, c in self.challenges.items() if cid in keep}

    def challenge(self, challenge_id: int) -> ChallengeEvidence:
        """The challenge's state, created empty when it has none (not built per call: a hot path)."""
        challenge = self.challenges.get(challenge_id)
        if challenge is None:
            challenge = self.challenges[challenge_id] = ChallengeEvidence()
        return challenge

    def on_evidence(self, fact: EvidenceFact, records: list[object], event_id: str, *,
                    emit: bool = True) -> VerdictOut | None:
        challenge = self.challenge(fact.challenge_id)
        key = fact.subject.strip().lower()
        subject = challenge.subjects.get(key)
        if subject is None:
            subject = challenge.subjects[key] = SubjectEvidence(fact.subject, fact.occurred_at)
        subject.first_at = min(subject.first_at, fact.occurred_at)
        subject.by_provider[fact.provider.strip().lower()] = ProviderEvidence(records, fact.evidence_hash, fact.records_json)
        if not emit:
            return None
        return self._evaluate(fact.challenge_id, challenge, subject, event_id, fact.occurred_at)

    def on_registration(self, fact: ChallengeRegistered, event_id: str, occurred_at: int, *,
                        emit: bool = True) -> list[VerdictOut]:
        challenge = self.challenge(fact.challenge_id)
        if owner_refusal(challenge.registration, fact) is not None:
            return []  # a takeover, or a change of the rule the first registration fixed: not applied
        challenge.registration = fact
        challenge.rule = parse_challenge_rule(fact.params, fact.proof, fact.timeline)
        if not emit:
            return []
        return [self._evaluate(fact.challenge_id, challenge, challenge.subjects[key], event_id, occurred_at)
                for key in sorted(challenge.subjects)]

    @staticmethod
    def _evaluate(challenge_id: int, challenge: ChallengeEvidence, subject: SubjectEvidence,
                  trigger_event_id: str, occurred_at: int) -> VerdictOut:
        providers = subject.by_provider
        verdict = evaluate(challenge.rule, {name: ev.records for name, ev in providers.items()})
        evidence_hash = combine_evidence_hashes({name: ev.evidence_hash for name, ev in providers.items()})
        return VerdictOut(
            event_id=verdict_event_id(challenge_id, subject.subject, trigger_event_id),
            challenge_id=challenge_id, subject=subject.subject, verdict=verdict, evidence_hash=evidence_hash,
            evidence_at=subject.first_at, trigger_event_id=trigger_event_id, occurred_at=occurred_at,
        )
