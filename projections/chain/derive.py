"""A challenge's rows from its registration and its live chain facts. Pure: same facts, same rows.

The live projector and `lc rebuild` both end here with the facts that currently hold, so they give
the same rows whatever order the topics interleaved in and whatever was retracted on the way.
Timestamps come from block times and registration times only (epoch milliseconds here).

- `challenges`: the registration's content, status and chain_outcome from the challenge-state fold
  of `domain.challenge_state`; the registry columns from MetadataRegistry facts and the registry
  writer's newest RegistryWriteRecorded (`_registry`); `proof` is the registration's proof with the
  AIVM progress keys of `projections.chain.aivm_proof` (AIVM and task-registry facts, job events).
  A row exists once the challenge is registered or created on chain (a Finalized/Canceled of an
  unused id makes none, as the original statusIndexer updated nothing then). When the chain's
  ChallengeCreated names another creator than the registration's subject, the registration is not
  applied (the row holds what the chain says, subject = the creator) and `registration_conflict` says
  so: metadata registered by someone who did not create the challenge is never shown or evaluated as
  if it were the creator's.
- `participants`: the creator (source `onchain_create`: ChallengeCreated's tx and time; the creator
  stakes at creation and can win, docs/webapp.md) and one row per joined wallet (first join's tx and
  time), source `onchain_join`.
- `claims`: one row per (wallet, claim type); WinnerClaimed, LoserClaimed, RefundClaimed and
  Treasury ClaimedETH; amounts of repeated claims of one key add up (docs/compatibility.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, NamedTuple

from domain.challenge_state import (
    ChallengeRegistered,
    ChallengeState,
    apply_challenge_fact,
    challenge_fact_from_chain,
    challenge_row,
)
from domain.contracts import AIVM, CHALLENGE_PAY, METADATA_REGISTRY, TASK_REGISTRY, TREASURY
from domain.registration import Registration
from projections.chain.aivm_proof import JobEventRow, aivm_progress
from projections.chain.facts import ChainFact

CLAIM_TYPES = {
    (CHALLENGE_PAY, "WinnerClaimed"): "winner",
    (CHALLENGE_PAY, "LoserClaimed"): "loser",
    (CHALLENGE_PAY, "RefundClaimed"): "refund",
    (TREASURY, "ClaimedETH"): "treasury_eth",
}
REGISTRY_SET = ("MetadataSet", "MetadataForceSet")
# ChallengePay facts that change a `challenges` row (and so its updated_at); joins and claims do not
ROW_EVENTS = {(CHALLENGE_PAY, name) for name in
              ("ChallengeCreated", "Finalized", "Canceled", "Paused", "VerificationConfigUpdated")}
PROOF_CONTRACTS = (AIVM, TASK_REGISTRY)  # their facts change `proof`
CREATOR_SOURCE = "onchain_create"
JOINER_SOURCE = "onchain_join"


class RegistryWrite(NamedTuple):
    """The registry writer's newest outcome for a challenge (RegistryWriteRecorded)."""

    status: str  # success, failed, skipped
    tx_hash: str | None
    error: str | None
    recorded_at: int  # epoch ms


class Registry(NamedTuple):
    status: str
    tx_hash: str | None
    error: str | None


class StoredRegistration(NamedTuple):
    registration: Registration
    first_registered_at: int  # epoch ms
    registered_at: int


class ChallengeRow(NamedTuple):
    id: int
    title: str | None
    description: str | None
    subject: str | None
    tx_hash: str | None
    model_id: str | None
    model_hash: str | None
    params: Any
    proof: Any
    timeline: Any
    funds: Any
    options: Any
    status: str | None
    chain_outcome: int | None
    registry_status: str
    registry_tx_hash: str | None
    registry_error: str | None
    created_at: int  # epoch ms
    updated_at: int
    registration_conflict: str | None = None


class ParticipantRow(NamedTuple):
    challenge_id: int
    subject: str
    tx_hash: str
    joined_at: int  # epoch ms
    updated_at: int
    source: str


class ClaimRow(NamedTuple):
    challenge_id: int
    subject: str
    claim_type: str
    amount_wei: int
    tx_hash: str
    block_number: int
    metadata: dict[str, Any]
    created_at: int  # epoch ms: the first claim's block
    claimed_at: int  # the newest claim's block


@dataclass(frozen=True)
class DerivedChallenge:
    challenge_id: int
    challenge: ChallengeRow | None
    participants: tuple[ParticipantRow, ...]
    claims: tuple[ClaimRow, ...]
    ignored: tuple[str, ...] = ()  # facts the fold refused (e.g. Paused after Finalized)


def derive(challenge_id: int, registered: StoredRegistration | None, facts: Iterable[ChainFact],
           registry_write: RegistryWrite | None = None, job_events: Sequence[JobEventRow] = ()) -> DerivedChallenge:
    """`facts`: the challenge's live facts, any order (they are put in chain order here); `job_events`:
    its stored job events (lc.jobs), any order."""
    ordered = sorted((f for f in facts if not f.removed and f.challenge_id == challenge_id), key=_POSITION)
    if registered is None and not any(f.contract == CHALLENGE_PAY for f in ordered):
        # nothing to fold (most challenges a batch touches with MetadataRegistry facts only): no row (that
        # needs a registration or a ChallengeCreated), no participant, no refused fact; claims come from
        # ChallengePay and Treasury facts as always
        return DerivedChallenge(challenge_id, None, (), _claims(challenge_id, ordered))
    conflict = registration_conflict(registered, ordered)
    if conflict is not None:
        registered = None
    state = _fold(challenge_id, registered, ordered)
    return DerivedChallenge(
        challenge_id=challenge_id,
        challenge=_challenge(state, registered, ordered, registry_write, job_events, conflict),
        participants=_participants(challenge_id, ordered),
        claims=_claims(challenge_id, ordered),
        ignored=state.ignored,
    )


_POSITION = attrgetter("block_number", "tx_index", "log_index")  # ChainFact.position, without the property call


def registration_conflict(registered: StoredRegistration | None, ordered: Sequence[ChainFact]) -> str | None:
    """Why the registration cannot be the challenge's: its subject is not the on-chain creator."""
    creation = next((f for f in ordered if f.contract == CHALLENGE_PAY and f.event == "ChallengeCreated"), None)
    if registered is None or creation is None:
        return None
    creator = str(creation.args.get("creator", "")).lower()
    subject = registered.registration.subject
    if creator == subject:
        return None
    return f"registered by {subject}, but created on chain by {creator} (tx {creation.tx_hash}): registration not applied"


def _ms(fact: ChainFact) -> int:
    return fact.block_timestamp * 1000


def _fold(challenge_id: int, registered: StoredRegistration | None, ordered: Sequence[ChainFact]) -> ChallengeState:
    state = ChallengeState(challenge_id=challenge_id)
    if registered is not None:
        r = registered.registration
        state = apply_challenge_fact(state, ChallengeRegistered(
            challenge_id=challenge_id, params=r.params, proof=r.proof, timeline=r.timeline, model_id=r.model_id,
            model_hash=r.model_hash, subject=r.subject, title=r.title,
        ))
    for fact in ordered:
        # a join only adds to the state's participant set, which no row here reads (participants come
        # from `_participants`); folding thousands of joins would copy that set once per join
        if fact.contract == CHALLENGE_PAY and fact.event != "Joined":
            lifecycle = challenge_fact_from_chain(fact.event, fact.args)
            if lifecycle is not None:
                state = apply_challenge_fact(state, lifecycle)
    return state


def _registry(ordered: Sequence[ChainFact], write: RegistryWrite | None) -> Registry:
    """What the chain says wins: the newest MetadataSet/MetadataForceSet is `success` with its
    transaction, a MetadataCleared after it puts the challenge back to `pending`. Without a chain
    fact, the writer's newest outcome (`failed` with its error, `skipped`, or `success` not yet
    confirmed); without either, the column default `pending`."""
    newest = next((f for f in reversed(ordered) if f.contract == METADATA_REGISTRY), None)
    if newest is not None and newest.event in REGISTRY_SET:
        return Registry("success", newest.tx_hash, None)
    if newest is not None:
        return Registry("pending", None, None)
    if write is not None:
        return Registry(write.status, write.tx_hash, write.error)
    return Registry("pending", None, None)


def _challenge(state: ChallengeState, registered: StoredRegistration | None, ordered: Sequence[ChainFact],
               registry_write: RegistryWrite | None, job_events: Sequence[JobEventRow] = (),
               conflict: str | None = None) -> ChallengeRow | None:
    creation = next((f for f in ordered if f.contract == CHALLENGE_PAY and f.event == "ChallengeCreated"), None)
    if registered is None and creation is None:
        return None
    row = challenge_row(state)
    r = registered.registration if registered is not None else None
    subject = row["subject"] or state.creator
    progress = aivm_progress(ordered, job_events, subject)
    proof = {**(row["proof"] or {}), **progress} if progress else row["proof"]
    times = [_ms(f) for f in ordered if f.contract in (METADATA_REGISTRY, *PROOF_CONTRACTS)
             or (f.contract, f.event) in ROW_EVENTS]
    times.extend(j.occurred_at for j in job_events)
    if registered is not None:
        times.append(registered.registered_at)
    if registry_write is not None:
        times.append(registry_write.recorded_at)
    first_times = [t for t in (registered.first_registered_at if registered else None,
                               _ms(creation) if creation else None) if t is not None]
    registry = _registry(ordered, registry_write)
    return ChallengeRow(
        id=state.challenge_id, title=row["title"], description=r.description if r else None,
        subject=subject,
        tx_hash=creation.tx_hash if creation is not None else (r.tx_hash if r else None),
        model_id=row["model_id"], model_hash=row["model_hash"], params=row["params"], proof=proof,
        timeline=row["timeline"], funds=r.funds if r else None, options=r.options if r else None,
        status=row["status"], chain_outcome=row["chain_outcome"], registry_status=registry.status,
        registry_tx_hash=registry.tx_hash, registry_error=registry.error, created_at=min(first_times),
        updated_at=max(times), registration_conflict=conflict,
    )


def _participants(challenge_id: int, ordered: Sequence[ChainFact]) -> tuple[ParticipantRow, ...]:
    rows: dict[str, ParticipantRow] = {}
    for fact in ordered:
        if fact.contract != CHALLENGE_PAY or fact.event not in ("ChallengeCreated", "Joined"):
            continue
        creating = fact.event == "ChallengeCreated"
        user = str(fact.args["creator" if creating else "user"]).lower()
        first = rows.get(user)
        if first is None:  # the creation or first join names the row; later joins only add stake
            rows[user] = ParticipantRow(challenge_id, user, fact.tx_hash, _ms(fact), _ms(fact),
                                        CREATOR_SOURCE if creating else JOINER_SOURCE)
        else:
            rows[user] = first._replace(updated_at=_ms(fact))
    return tuple(rows.values())


def _claims(challenge_id: int, ordered: Sequence[ChainFact]) -> tuple[ClaimRow, ...]:
    rows: dict[tuple[str, str], ClaimRow] = {}
    for fact in ordered:
        claim_type = CLAIM_TYPES.get((fact.contract, fact.event))
        if claim_type is None:
            continue
        user = str(fact.args["to" if fact.contract == TREASURY else "user"]).lower()
        amount = int(fact.args["amount"])
        earlier = rows.get((user, claim_type))
        if earlier is None:
            rows[(user, claim_type)] = ClaimRow(
                challenge_id, user, claim_type, amount, fact.tx_hash, fact.block_number,
                {"claims": 1, "tx_hashes": [fact.tx_hash]}, _ms(fact), _ms(fact))
        else:
            rows[(user, claim_type)] = earlier._replace(
                amount_wei=earlier.amount_wei + amount, tx_hash=fact.tx_hash, block_number=fact.block_number,
                metadata={"claims": earlier.metadata["claims"] + 1,
                          "tx_hashes": [*earlier.metadata["tx_hashes"], fact.tx_hash]},
                claimed_at=_ms(fact))
    return tuple(rows.values())
