"""Chain facts as the projection stores them: one row per event id, the newest message deciding `removed`.

A chain fact that cannot be read is not bad input to skip: the stage halts (`UnreadableChainFact`),
because every later state of the challenge would be wrong without it (DESIGN.md "Bad input").

MetadataRegistry takes any uint256 as a challenge id; an id beyond `challenges.id` (a bigint) cannot
be a ChallengePay challenge. Such a fact is stored with its full id in `args` and a null
`challenge_id`, and touches no challenge; it does not halt.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from domain.contracts import AIVM, CHALLENGE_PAY, METADATA_REGISTRY, TASK_REGISTRY, TREASURY
from eventlog.admission import StageHalted
from eventlog.consumer import Received

log = logging.getLogger(__name__)

CHAIN_EVENT = "ChainEvent"
MAX_BIGINT = 2**63 - 1

_DECIMAL = re.compile(r"^[0-9]{1,78}$")
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
_BYTES32 = re.compile(r"^0x[0-9a-f]{64}$")

# The args each consumed event must carry, and their kinds ("uint" = decimal string, "address" and "bytes32" =
# lowercase hex). AIVM and task-registry facts count only once they carry a challenge id (re-keyed copies).
CONSUMED_ARGS: dict[tuple[str, str], dict[str, str]] = {
    (CHALLENGE_PAY, "ChallengeCreated"): {"id": "uint", "creator": "address", "startTs": "uint"},
    (CHALLENGE_PAY, "Joined"): {"id": "uint", "user": "address", "amount": "uint"},
    (CHALLENGE_PAY, "VerificationConfigUpdated"): {"id": "uint", "proofDeadlineTs": "uint"},
    (CHALLENGE_PAY, "Finalized"): {"id": "uint", "outcome": "int"},
    (CHALLENGE_PAY, "Paused"): {"id": "uint", "paused": "bool"},
    (CHALLENGE_PAY, "Canceled"): {"id": "uint"},
    (CHALLENGE_PAY, "WinnerClaimed"): {"id": "uint", "user": "address", "amount": "uint"},
    (CHALLENGE_PAY, "LoserClaimed"): {"id": "uint", "user": "address", "amount": "uint"},
    (CHALLENGE_PAY, "RefundClaimed"): {"id": "uint", "user": "address", "amount": "uint"},
    (TREASURY, "ClaimedETH"): {"bucketId": "uint", "to": "address", "amount": "uint"},
    (METADATA_REGISTRY, "MetadataSet"): {"challengeId": "uint"},
    (METADATA_REGISTRY, "MetadataForceSet"): {"challengeId": "uint"},
    (METADATA_REGISTRY, "MetadataCleared"): {"challengeId": "uint"},
    (TASK_REGISTRY, "BindingRecorded"): {"challengeId": "uint", "subject": "address", "requestId": "uint",
                                         "taskId": "bytes32"},
    (AIVM, "InferenceRequestedV2"): {"requestId": "uint", "taskId": "bytes32"},
    (AIVM, "InferenceCommitted"): {"requestId": "uint"},
    (AIVM, "InferenceRevealed"): {"requestId": "uint", "responseHash": "bytes32", "response": "text"},
    (AIVM, "PoIAttested"): {"taskId": "bytes32", "count": "uint", "resultHash": "bytes32",
                            "transcriptHash": "bytes32", "slot": "uint"},
    (AIVM, "InferenceFinalized"): {"requestId": "uint", "taskId": "bytes32", "resultHash": "bytes32"},
}
DERIVING_CONTRACTS = (CHALLENGE_PAY, TREASURY, METADATA_REGISTRY, TASK_REGISTRY, AIVM)
_NEED_CHALLENGE = (METADATA_REGISTRY, TASK_REGISTRY, AIVM)  # facts that are a challenge's only once keyed to one


class UnreadableChainFact(StageHalted):
    """An ordered chain fact the projection cannot apply; the projector halts on it."""


class ChainFact(NamedTuple):
    event_id: str
    chain_id: int
    challenge_id: int | None
    contract: str
    address: str
    event: str
    block_number: int
    block_hash: str
    block_timestamp: int  # seconds
    tx_hash: str
    tx_index: int
    log_index: int
    args: Mapping[str, Any]
    removed: bool

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.block_number, self.tx_index, self.log_index)

    @property
    def consumed(self) -> bool:
        if self.contract in _NEED_CHALLENGE and self.challenge_id is None:
            return False  # metadata of another contract, an AIVM fact not bound (yet): not a challenge's
        return (self.contract, self.event) in CONSUMED_ARGS


def read_fact(received: Received) -> ChainFact:
    event = received.event
    if event.event_type != CHAIN_EVENT:
        raise UnreadableChainFact(f"{_where(received)}: unexpected event type {event.event_type} on the chain "
                                  f"events topic")
    p = event.payload
    try:
        args = p["args"]
        if not isinstance(args, dict):
            raise TypeError(f"args {args!r} is not a record")
        fact = ChainFact(
            event.event_id, p["chain_id"],
            _challenge_id(p["challenge_id"], caller_chosen=p["contract"] == METADATA_REGISTRY), p["contract"],
            p["address"], p["event"], p["block_number"], p["block_hash"], p["block_timestamp"], p["tx_hash"],
            p["tx_index"], p["log_index"], args, p["removed"],
        )
        checks = _CHECKS.get((fact.contract, fact.event))
        if checks is not None and fact.consumed:
            _check_args(fact, checks)
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableChainFact(f"{_where(received)}: {exc!r}") from exc
    return fact


def _where(received: Received) -> str:
    return f"{received.topic}[{received.partition}]@{received.offset} ({received.event.event_id})"


def _challenge_id(value: object, *, caller_chosen: bool) -> int | None:
    """The fact's challenge id; None for none, and for a caller-chosen id (MetadataRegistry) beyond
    the bigint range, which no ChallengePay challenge has."""
    if value is None:
        return None
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise ValueError(f"challenge_id {value!r} is not a decimal id")
    if int(value) > MAX_BIGINT:
        if caller_chosen:
            log.warning("chain fact for challenge id %s (beyond the bigint range of challenges.id): stored as a "
                        "fact, no challenge is touched", value)
            return None
        raise ValueError(f"challenge_id {value!r} is beyond the bigint range")
    return int(value)


_KINDS: dict[str, Callable[[Any], bool]] = {
    "uint": lambda value: isinstance(value, str) and _DECIMAL.match(value) is not None,
    "address": lambda value: isinstance(value, str) and _ADDRESS.match(value) is not None,
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "bool": lambda value: isinstance(value, bool),
    "bytes32": lambda value: isinstance(value, str) and _BYTES32.match(value) is not None,
    "text": lambda value: isinstance(value, str),
}
# per consumed event: (arg name, kind, check), built once
_CHECKS: dict[tuple[str, str], tuple[tuple[str, str, Callable[[Any], bool]], ...]] = {
    key: tuple((name, kind, _KINDS[kind]) for name, kind in args.items()) for key, args in CONSUMED_ARGS.items()
}


def _check_args(fact: ChainFact, checks: tuple[tuple[str, str, Callable[[Any], bool]], ...]) -> None:
    args = fact.args
    for name, kind, check in checks:
        value = args[name]
        if not check(value):
            raise ValueError(f"{fact.event}.{name} = {value!r} is not a {kind}")
    if fact.challenge_id is None:
        raise ValueError(f"{fact.event} carries no challenge id")


def newest_per_event_id(facts: Iterable[ChainFact]) -> list[ChainFact]:
    """The last message of each event id in topic order: whether the fact holds now."""
    newest: dict[str, ChainFact] = {}
    for fact in facts:
        newest.pop(fact.event_id, None)  # re-insert: keep the order of the newest message
        newest[fact.event_id] = fact
    return list(newest.values())
