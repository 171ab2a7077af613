"""A challenge's state: registration metadata folded with its on-chain lifecycle (spec/chain.md §3).

Status strings are the original's (`Active`, `Finalized`, `Canceled`, `Paused`); `status` is None
until the chain's ChallengeCreated has been seen. `chain_outcome` is the Finalized event's outcome
(0 None, 1 Success, 2 Fail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from domain.rules import ChallengeRule, parse_challenge_rule
from domain.timeline import Timeline

ACTIVE = "Active"
FINALIZED = "Finalized"
CANCELED = "Canceled"
PAUSED = "Paused"
TERMINAL_STATUSES = frozenset({FINALIZED, CANCELED})


@dataclass(frozen=True)
class ChallengeRegistered:
    """Off-chain metadata (`lc.challenges.registered`). The first registration of an id stands; a later one
    applies only when it comes from the same subject and keeps what the first fixed (`owner_refusal`)."""

    challenge_id: int
    params: Any = None
    proof: Any = None
    timeline: Any = None
    model_id: str | None = None
    model_hash: str | None = None
    subject: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class ChallengeCreated:
    challenge_id: int
    creator: str
    start_ts: int | None = None


@dataclass(frozen=True)
class ParticipantJoined:
    challenge_id: int
    user: str


@dataclass(frozen=True)
class ChallengeFinalized:
    challenge_id: int
    outcome: int


@dataclass(frozen=True)
class ChallengeCanceled:
    challenge_id: int


@dataclass(frozen=True)
class ChallengePaused:
    challenge_id: int
    paused: bool


@dataclass(frozen=True)
class VerificationConfigUpdated:
    challenge_id: int
    proof_deadline_ts: int


ChallengeFact = (
    ChallengeRegistered | ChallengeCreated | ParticipantJoined | ChallengeFinalized | ChallengeCanceled
    | ChallengePaused | VerificationConfigUpdated
)
CHALLENGE_FACT_TYPES = (
    ChallengeRegistered, ChallengeCreated, ParticipantJoined, ChallengeFinalized, ChallengeCanceled,
    ChallengePaused, VerificationConfigUpdated,
)


@dataclass(frozen=True)
class ChallengeState:
    challenge_id: int
    registered: bool = False
    params: Any = None
    proof: Any = None
    timeline_raw: Any = None
    rule: ChallengeRule = field(default_factory=ChallengeRule)
    model_id: str | None = None
    model_hash: str | None = None
    subject: str | None = None  # lower-cased
    title: str | None = None
    status: str | None = None
    chain_outcome: int | None = None
    creator: str | None = None  # lower-cased, from ChallengeCreated
    chain_start_ts: int | None = None
    chain_proof_deadline: int | None = None
    participants: frozenset[str] = frozenset()  # lower-cased; the staking creator and every joiner
    ignored: tuple[str, ...] = ()

    @property
    def timeline(self) -> Timeline:
        return self.rule.timeline

    @property
    def mode(self) -> str:
        return self.rule.mode

    @property
    def top_n(self) -> int:
        return self.rule.top_n

    @property
    def starts_at(self) -> int | None:
        return self.chain_start_ts if self.chain_start_ts is not None else self.timeline.starts_at

    @property
    def ends_at(self) -> int | None:
        return self.timeline.ends_at

    @property
    def proof_deadline(self) -> int | None:
        """The chain's deadline once VerificationConfigUpdated has been seen, else the registered one."""
        return self.chain_proof_deadline if self.chain_proof_deadline is not None else self.timeline.proof_deadline

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def _lower(address: str | None) -> str | None:
    return address.strip().lower() if isinstance(address, str) and address.strip() else None


def _ignore(state: ChallengeState, reason: str) -> ChallengeState:
    return replace(state, ignored=(*state.ignored, reason))


def owner_refusal(standing: ChallengeRegistered | None, fact: ChallengeRegistered) -> str | None:
    """The id's owner rule (domain.registration.check_update) as the folds see a registration: once an id
    is registered (`standing`), another subject or a changed model, rule, proof or timeline is not
    applied. The reason, or None when `fact` may apply."""
    if standing is None:
        return None
    if _lower(fact.subject) != _lower(standing.subject):
        return (f"ChallengeRegistered by {_lower(fact.subject)}: the challenge is registered to "
                f"{_lower(standing.subject)}")
    if _fixed(fact) != _fixed(standing):
        return "ChallengeRegistered changing the model, rule, proof or timeline of a registered challenge"
    return None


def _fixed(fact: ChallengeRegistered) -> tuple[Any, ...]:
    return (fact.model_id, fact.model_hash, fact.params, fact.proof, fact.timeline)


def _set_status(state: ChallengeState, status: str, fact_name: str) -> ChallengeState:
    if state.is_terminal and status != state.status:
        return _ignore(state, f"{fact_name} after the challenge was {state.status}")
    return replace(state, status=status)


def apply_challenge_fact(state: ChallengeState | None, fact: ChallengeFact) -> ChallengeState:
    """Fold one fact into the challenge's state (pass None for a challenge not seen yet)."""
    current = state if state is not None else ChallengeState(challenge_id=fact.challenge_id)
    if fact.challenge_id != current.challenge_id:
        return _ignore(current, f"{type(fact).__name__} for challenge {fact.challenge_id}")
    match fact:
        case ChallengeRegistered():
            standing = None if not current.registered else ChallengeRegistered(
                current.challenge_id, current.params, current.proof, current.timeline_raw, current.model_id,
                current.model_hash, current.subject)
            refusal = owner_refusal(standing, fact)
            if refusal is not None:
                return _ignore(current, refusal)
            return replace(
                current, registered=True, params=fact.params, proof=fact.proof, timeline_raw=fact.timeline,
                rule=parse_challenge_rule(fact.params, fact.proof, fact.timeline), model_id=fact.model_id,
                model_hash=fact.model_hash, subject=_lower(fact.subject), title=fact.title,
            )
        case ChallengeCreated():
            creator = _lower(fact.creator)
            created = replace(
                current, creator=creator, chain_start_ts=fact.start_ts,
                participants=current.participants | ({creator} if creator else set()),
            )
            if current.status is not None:  # a Finalized/Canceled for an unused id may come first
                return created
            return replace(created, status=ACTIVE)
        case ParticipantJoined():
            user = _lower(fact.user)
            return replace(current, participants=current.participants | {user}) if user else current
        case ChallengeFinalized():
            finalized = _set_status(current, FINALIZED, "Finalized")
            return replace(finalized, chain_outcome=fact.outcome) if finalized.status == FINALIZED else finalized
        case ChallengeCanceled():
            return _set_status(current, CANCELED, "Canceled")
        case ChallengePaused():
            if current.status is None:
                return _ignore(current, "Paused before the challenge was created")
            return _set_status(current, PAUSED if fact.paused else ACTIVE, "Paused")
        case VerificationConfigUpdated():
            return replace(current, chain_proof_deadline=fact.proof_deadline_ts)
    raise TypeError(f"not a challenge fact: {fact!r}")


def challenge_row(state: ChallengeState) -> Mapping[str, Any]:
    """The `challenges` columns this state determines (spec/schema.md §3.4)."""
    return {
        "id": state.challenge_id, "title": state.title, "subject": state.subject, "model_id": state.model_id,
        "model_hash": state.model_hash, "params": state.params, "proof": state.proof,
        "timeline": state.timeline_raw, "status": state.status, "chain_outcome": state.chain_outcome,
    }


def challenge_fact_from_chain(event: str, args: Mapping[str, Any]) -> ChallengeFact | None:
    """The lifecycle fact of a decoded ChallengePay log (`lc.chain.events` payload `event` and `args`,
    uint256 values as decimal strings or ints); None for the events this fold does not read."""
    challenge_id = int(args["id"]) if "id" in args else None
    if challenge_id is None:
        return None
    if event == "ChallengeCreated":
        return ChallengeCreated(challenge_id, str(args["creator"]), int(args["startTs"]))
    if event == "Joined":
        return ParticipantJoined(challenge_id, str(args["user"]))
    if event == "Finalized":
        return ChallengeFinalized(challenge_id, int(args["outcome"]))
    if event == "Canceled":
        return ChallengeCanceled(challenge_id)
    if event == "Paused":
        return ChallengePaused(challenge_id, bool(args["paused"]))
    if event == "VerificationConfigUpdated":
        return VerificationConfigUpdated(challenge_id, int(args["proofDeadlineTs"]))
    return None
