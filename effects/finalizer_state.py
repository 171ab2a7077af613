"""The finalization bridge's view of one challenge and what to send next; pure (spec/chain.md §4.4,
§4.5, §5.4, with the original's gaps closed: appendix B).

- Once the job's AIVM task is finalized (InferenceFinalized under the challenge), every participant the
  job names gets `submitProofFor` as soon as its task binding is recorded, while chain time is before
  the proof deadline. Every participant ends with our ProofSubmitted (a participant already a winner on
  chain is reported, not proved again) or a final ProofFailed; a refused one is not tried again.
- Only the job's current request counts: a request the worker found expired (JobExpired) is retired,
  and the proofs wait for the re-request's InferenceFinalized and the bindings to its task.
- Once chain time (lc.chain.blocks) reaches the moment ChallengePay accepts `finalize` (max(end, proof
  deadline), read from the chain), `finalize` is sent, for every challenge that has a job, even if its
  inference never finalized (outcome Fail rather than a challenge stuck forever, §9 #19). A pending
  re-request cannot help anyone any more then: ChallengePay accepts proofs only up to the proof
  deadline, and finalize only from it. Proofs of a finalized inference still owed at that moment are
  tried first, once each (`last_chance`: the chain's head may still be at the deadline second; a
  closed window refuses the gas estimate, no transaction), then `finalize`. After a refusal,
  finalize is tried again only once chain time has moved past the refused attempt's chain time.
- A challenge finalized by someone else is reported once (FinalizeSent, already finalized, from the
  Finalized fact); a challenge Canceled on chain, or finalized by us, needs nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from chain import aivm
from domain import job_state as js
from domain.challenge_state import FINALIZED, ChallengeFact, ChallengeState, apply_challenge_fact
from effects.inputs import (
    BindingFact,
    FinalizeDone,
    FinalizeRefused,
    InferenceFinalizedFact,
    ProofDone,
    ProofRefused,
    WinnerFact,
)
from effects.request_plan import Binding
from effects.worker_state import BindingRecorded

# ChallengePay reverts after which submitting the same participant's proof again cannot succeed
FINAL_PROOF_ERRORS = frozenset({"ProofWindowClosed", "NotEligible", "NotActive", "AlreadyFinalized", "ZeroAddress"})

FinalizerInput = (
    js.JobQueued | js.ParticipantsAdded | js.JobSubmitted | js.JobCanceled | js.JobExpired | BindingRecorded
    | BindingFact
    | InferenceFinalizedFact | WinnerFact | ProofDone | ProofRefused | FinalizeDone | FinalizeRefused | ChallengeFact
)


@dataclass(frozen=True)
class FinalizerView:
    challenge_id: int
    challenge: ChallengeState
    job_id: str | None = None
    job_canceled: bool = False
    participants: frozenset[str] = frozenset()
    task_id: str | None = None  # the job's newest request (JobSubmitted)
    retired_tasks: frozenset[str] = frozenset()  # requests that expired (JobExpired)
    bound: frozenset[tuple[str, str]] = frozenset()  # (subject, task id)
    inference_finalized: dict[str, tuple[str, int]] = field(default_factory=dict)  # event id -> (task, block ts)
    winners: frozenset[str] = frozenset()  # WinnerMarked seen on chain
    reported: frozenset[str] = frozenset()  # our ProofSubmitted(ok) published
    proof_attempts: dict[str, int] = field(default_factory=dict)
    given_up: frozenset[str] = frozenset()
    finalized_by_us: bool = False
    finalize_attempts: int = 0
    refused_at: int | None = None  # chain time of the last refused finalize

    @classmethod
    def initial(cls, challenge_id: int) -> FinalizerView:
        return cls(challenge_id, ChallengeState(challenge_id=challenge_id))

    def finalized_task(self) -> tuple[str, int] | None:
        """(task id, block time) of the job's finalized inference, if seen (never of an expired request)."""
        for task, at in self.inference_finalized.values():
            if task not in self.retired_tasks and (self.task_id is None or task == self.task_id):
                return task, at
        return None


def apply_input(view: FinalizerView, item: FinalizerInput) -> FinalizerView:
    match item:
        case js.JobQueued():
            return replace(view, job_id=item.job_id, participants=view.participants | {p.lower() for p in item.participants})
        case js.ParticipantsAdded():
            return replace(view, participants=view.participants | {p.lower() for p in item.participants})
        case js.JobSubmitted():
            return replace(view, task_id=item.task_id.lower())
        case js.JobCanceled():
            return replace(view, job_canceled=True)
        case js.JobExpired():
            return replace(view, retired_tasks=view.retired_tasks | {item.task_id.lower()})
        case BindingRecorded():
            return replace(view, bound=view.bound | {(item.subject, item.task_id)})
        case BindingFact():
            pair = (item.subject, item.task_id)
            return replace(view, bound=view.bound - {pair} if item.removed else view.bound | {pair})
        case InferenceFinalizedFact():
            seen = dict(view.inference_finalized)
            if item.removed:
                seen.pop(item.event_id, None)
            else:
                seen[item.event_id] = (item.task_id, item.block_timestamp)
            return replace(view, inference_finalized=seen)
        case WinnerFact():
            return replace(view, winners=view.winners - {item.participant} if item.removed
                           else view.winners | {item.participant})
        case ProofDone():
            if item.ok:
                return replace(view, reported=view.reported | {item.participant})
            return replace(view, given_up=view.given_up | {item.participant})  # sent, did not count: not again
        case ProofRefused():
            attempts = {**view.proof_attempts, item.participant: max(item.attempt,
                                                                     view.proof_attempts.get(item.participant, 0))}
            given_up = view.given_up | {item.participant} if item.final else view.given_up
            return replace(view, proof_attempts=attempts, given_up=given_up)
        case FinalizeDone():
            return replace(view, finalized_by_us=True)
        case FinalizeRefused():
            return replace(view, finalize_attempts=max(view.finalize_attempts, item.attempt),
                           refused_at=max(item.chain_time, view.refused_at or item.chain_time))
    return replace(view, challenge=apply_challenge_fact(view.challenge, item))


@dataclass(frozen=True)
class SubmitProof:
    participant: str
    task_id: str
    evaluated_at: int
    attempt: int
    last_chance: bool = False  # chain time reached finalize: one try, a refusal is final


@dataclass(frozen=True)
class Finalize:
    attempt: int
    chain_time: int


@dataclass(frozen=True)
class ReportFinalized:
    """Someone finalized the challenge (Finalized seen on chain) before we did: say so, send nothing."""

    outcome: int


Action = SubmitProof | Finalize | ReportFinalized


def needs_chain_window(view: FinalizerView) -> bool:
    """Whether the stage must know the challenge's finalize moment (read once from the chain)."""
    return view.job_id is not None and not view.job_canceled and not view.finalized_by_us \
        and not view.challenge.is_terminal


def next_actions(view: FinalizerView, chain_time: int | None, finalize_opens_at: int | None) -> list[Action]:
    """What to send now, in order. `finalize_opens_at`: max(end, proof deadline) from the chain."""
    if view.job_id is not None and not view.finalized_by_us and view.challenge.status == FINALIZED:
        return [ReportFinalized(view.challenge.chain_outcome or 0)]
    if not needs_chain_window(view):
        return []
    finalize_now = chain_time is not None and finalize_opens_at is not None and chain_time >= finalize_opens_at
    proofs = _owed_proofs(view, last_chance=finalize_now)
    if not finalize_now:
        return list(proofs)
    if view.refused_at is not None and chain_time is not None and chain_time <= view.refused_at:
        return []  # wait for a later block
    return [*proofs, Finalize(view.finalize_attempts + 1, chain_time or 0)]


def _owed_proofs(view: FinalizerView, *, last_chance: bool) -> list[SubmitProof]:
    """A proof per participant bound to the finalized task (or a winner already) not yet reported."""
    finalized = view.finalized_task()
    if finalized is None:
        return []
    task, at = finalized
    return [
        SubmitProof(p, task, at, view.proof_attempts.get(p, 0) + 1, last_chance)
        for p in sorted(view.participants)
        if ((p, task) in view.bound or p in view.winners) and p not in view.reported and p not in view.given_up
    ]


def build_proof(binding: Binding, challenge_id: int, participant: str, evaluated_at: int) -> bytes:
    """The §4.4 proof for one participant, from its on-chain binding (so every field the verifier
    compares with the binding matches it); score, evidence and metric hashes are not checked and zero."""
    return aivm.AivmPoiProofV1(
        schema_version=binding.schema_version, request_id=binding.request_id, task_id=binding.task_id,
        challenge_id=challenge_id, subject=participant, passed=True, score=0, evidence_hash=aivm.ZERO32,
        benchmark_hash=binding.benchmark_hash, metric_hash=aivm.ZERO32, evaluated_at=evaluated_at,
        model_digest=binding.model_digest, params_hash=binding.params_hash,
    ).encode()
