"""Dispatch decisions for one challenge, as a fold: (state, fact) → (state, decisions).

The state is per challenge, matching the per-challenge keying of every topic; the processor holds one
per challenge id and feeds it that challenge's verdicts and lifecycle facts, and the chain time of
every new block (`ChainTime`). The challenge's registration and lifecycle facts are folded with
`domain.challenge_state`, so the dispatcher reads the same challenge state as every other stage.

- Threshold: while the challenge is Active on chain and chain time is within [start, proof deadline],
  every participant whose verdict passes is proved. The first passing participant queues the job
  (one per challenge, ever); each later one is added to that job.
- Competitive: once chain time reaches the ranking moment (see `DispatchPolicy`), the participants'
  verdicts are ranked, the ranking is published, and one job names the top N.
- When the challenge becomes Finalized or Canceled, its job (if any) is canceled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

from domain.chain_time import ChainTime
from domain.challenge_state import CHALLENGE_FACT_TYPES, ChallengeFact, ChallengeState, apply_challenge_fact
from streams.ranking import RankedOutcome, RankingEntry, rank, winners

NOT_A_PARTICIPANT = "Not a participant on chain"
CANCEL_REASON = "Challenge reached terminal state (Finalized/Canceled) before this job could be submitted."


@dataclass(frozen=True)
class VerdictFact:
    """The evaluator's verdict for one subject; `evidence_at` = earliest evidence time (Unix s)."""

    challenge_id: int
    subject: str
    pass_: bool
    score: float | None
    evidence_at: int | None = None


DispatchInput = VerdictFact | ChainTime | ChallengeFact


@dataclass(frozen=True)
class DispatchPolicy:
    """When a competitive challenge is ranked.

    `ends_at` (default): when chain time reaches the challenge's end plus `grace_seconds`, and only
    while proofs are still accepted (chain time ≤ proof deadline; ChallengePay rejects
    submitProofFor after it, spec/chain.md §3.4). `proof_deadline`: when chain time passes the proof
    deadline, as issue #4 words it; the job's proofs can then no longer be submitted on chain.
    """

    rank_at: Literal["ends_at", "proof_deadline"] = "ends_at"
    grace_seconds: int = 0


@dataclass(frozen=True)
class QueueJob:
    decision_id: str
    job_id: str
    challenge_id: int
    mode: str
    participants: tuple[str, ...]


@dataclass(frozen=True)
class AddParticipants:
    decision_id: str
    job_id: str
    challenge_id: int
    participants: tuple[str, ...]


@dataclass(frozen=True)
class PublishRanking:
    decision_id: str
    challenge_id: int
    top_n: int
    outcomes: tuple[RankedOutcome, ...]


@dataclass(frozen=True)
class CancelJob:
    decision_id: str
    job_id: str
    challenge_id: int
    reason: str


Decision = QueueJob | AddParticipants | PublishRanking | CancelJob


@dataclass(frozen=True)
class DispatchState:
    challenge_id: int
    challenge: ChallengeState
    verdicts: tuple[VerdictFact, ...] = ()  # latest per lower-cased subject, sorted by subject
    chain_time: int | None = None
    job_id: str | None = None
    job_participants: frozenset[str] = frozenset()
    job_canceled: bool = False
    ranking: tuple[RankedOutcome, ...] | None = None

    @classmethod
    def initial(cls, challenge_id: int) -> DispatchState:
        return cls(challenge_id=challenge_id, challenge=ChallengeState(challenge_id=challenge_id))


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def job_id_for(challenge_id: int) -> str:
    """One job per challenge, ever (as the original's UNIQUE (challenge_id))."""
    return _digest("lc.job", challenge_id)


def _with_verdict(state: DispatchState, verdict: VerdictFact) -> DispatchState:
    subject = verdict.subject.strip().lower()
    by_subject = {v.subject: v for v in state.verdicts}
    by_subject[subject] = replace(verdict, subject=subject)
    return replace(state, verdicts=tuple(by_subject[s] for s in sorted(by_subject)))


def _fold(state: DispatchState, fact: DispatchInput) -> DispatchState:
    if isinstance(fact, ChainTime):
        newest = fact.timestamp if state.chain_time is None else max(state.chain_time, fact.timestamp)
        return replace(state, chain_time=newest)
    if fact.challenge_id != state.challenge_id:
        return state
    if isinstance(fact, VerdictFact):
        return _with_verdict(state, fact)
    if isinstance(fact, CHALLENGE_FACT_TYPES):
        return replace(state, challenge=apply_challenge_fact(state.challenge, fact))
    return state


def _cancel(state: DispatchState) -> tuple[DispatchState, list[Decision]]:
    if state.job_id is None or state.job_canceled:
        return state, []
    decision = CancelJob(_digest(state.challenge_id, "cancel", state.job_id), state.job_id,
                         state.challenge_id, CANCEL_REASON)
    return replace(state, job_canceled=True), [decision]


def _in_proof_window(state: DispatchState) -> bool:
    challenge, now = state.challenge, state.chain_time
    if now is None:
        return False
    starts, deadline = challenge.starts_at, challenge.proof_deadline
    return (starts is None or now >= starts) and (deadline is None or now <= deadline)


def _queue_or_add(state: DispatchState, participants: set[str]) -> tuple[DispatchState, list[Decision]]:
    if not participants or state.job_canceled:
        return state, []
    job_id = state.job_id or job_id_for(state.challenge_id)
    if state.job_id is None:
        ordered = tuple(sorted(participants))
        decision: Decision = QueueJob(_digest(state.challenge_id, "queue", *ordered), job_id, state.challenge_id,
                                      state.challenge.mode, ordered)
    else:
        ordered = tuple(sorted(participants - state.job_participants))
        if not ordered:
            return state, []
        decision = AddParticipants(_digest(state.challenge_id, "add", *ordered), job_id, state.challenge_id, ordered)
    return replace(state, job_id=job_id, job_participants=state.job_participants | set(ordered)), [decision]


def _decide_threshold(state: DispatchState) -> tuple[DispatchState, list[Decision]]:
    if not state.challenge.is_active or not _in_proof_window(state):
        return state, []
    members = state.challenge.participants
    passing = {v.subject for v in state.verdicts if v.pass_ and v.subject in members}
    return _queue_or_add(state, passing)


def _ranking_due(state: DispatchState, policy: DispatchPolicy) -> bool:
    challenge, now = state.challenge, state.chain_time
    if now is None or not state.verdicts:
        return False
    if policy.rank_at == "proof_deadline":
        deadline = challenge.proof_deadline
        return deadline is not None and now > deadline
    ends = challenge.ends_at
    return ends is not None and now >= ends + policy.grace_seconds and _in_proof_window(state)


def _rank(state: DispatchState) -> tuple[RankedOutcome, ...]:
    members = state.challenge.participants
    entries = [RankingEntry(v.subject, v.score, v.evidence_at, v.pass_) for v in state.verdicts if v.subject in members]
    ranked = rank(entries, state.challenge.top_n)
    outsiders = [v for v in state.verdicts if v.subject not in members]
    tail = tuple(
        RankedOutcome(v.subject, len(ranked) + i, False, v.score, NOT_A_PARTICIPANT)
        for i, v in enumerate(outsiders, start=1)
    )
    return ranked + tail


def _decide_competitive(state: DispatchState, policy: DispatchPolicy) -> tuple[DispatchState, list[Decision]]:
    # Ranking needs Active (not Paused): a paused challenge accepts no proofs.
    if state.ranking is not None or not state.challenge.is_active or not _ranking_due(state, policy):
        return state, []
    outcomes = _rank(state)
    marks = [f"{o.subject}:{int(o.pass_)}" for o in outcomes]
    published = PublishRanking(_digest(state.challenge_id, "rank", *marks), state.challenge_id,
                               state.challenge.top_n, outcomes)
    ranked_state, job_decisions = _queue_or_add(replace(state, ranking=outcomes), set(winners(outcomes)))
    return ranked_state, [published, *job_decisions]


def decide(
    state: DispatchState, fact: DispatchInput, policy: DispatchPolicy | None = None
) -> tuple[DispatchState, list[Decision]]:
    """Apply one input; return the new state and the decisions it makes (each with a stable id)."""
    state = _fold(state, fact)
    if state.challenge.is_terminal:
        return _cancel(state)
    if not state.challenge.registered:
        return state, []
    if state.challenge.mode == "competitive":
        return _decide_competitive(state, policy or DispatchPolicy())
    return _decide_threshold(state)


def replay(
    challenge_id: int, facts: list[DispatchInput], policy: DispatchPolicy | None = None
) -> tuple[DispatchState, list[Decision]]:
    """Fold a whole history (rebuilds and tests): the final state and every decision in order."""
    state = DispatchState.initial(challenge_id)
    decisions: list[Decision] = []
    for fact in facts:
        state, made = decide(state, fact, policy)
        decisions.extend(made)
    return state, decisions
