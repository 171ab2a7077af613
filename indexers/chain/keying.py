"""Message keys of chain events: the challenge id, so every fact of a challenge lands in one partition.

ChallengePay and Treasury events carry the challenge (Treasury's bucket id is the challenge id),
ChallengeTaskRegistry and MetadataRegistry events name it (a MetadataRegistry entry of another
contract than ChallengePay is keyed `<contract>:<id>`; DispatcherSet, about a contract rather than a
challenge, by the contract's address; both with a null challenge_id). AIVMInferenceV2 events do not: they name a
request id and/or a task id. The indexer sees the registry's BindingRecorded facts in chain order, so
it keys an AIVM event by the challenge its task (or request) is bound to when the event is
published; before that the key is `task:<taskId>` (or `request:<requestId>` when even the task is
unknown, e.g. a commit of a request indexed before a `seed` start), and `challenge_id` is null.

Decision (docs/decisions.md): the indexer re-emits. When a BindingRecorded is published, the AIVM
facts of its task and request published earlier without a challenge (in the normal flow the
InferenceRequestedV2, which always precedes its binding, and any commit, reveal or attestation that
beat the orchestrator's recordBinding) are published again right before the BindingRecorded, in
the same transaction, keyed by the challenge, with `rekeyed_from` = the original key and the event
id `<original id>@<challenge id>`. So every fact of a challenge is in the challenge's partition in
chain order, and a per-challenge consumer reads only messages whose challenge_id is set; a consumer
of the whole topic skips messages whose `rekeyed_from` is set (they repeat facts it has already
seen under their own ids). The copies belong to the binding's block: orphaning the binding retracts
them. Re-keying downstream was the alternative; it would need every per-challenge stage to join
across partitions, and only the indexer sees all facts in chain order.

The state behind this (task and request -> challenge, request -> task, unbound facts) is derived
only from published messages, ordered by chain position, so a restart's read-back in any partition
order rebuilds it, and a retracted binding stops keying. BindingCleared does not unbind a task:
facts of a task stay with the challenge it was bound to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from domain.contracts import AIVM, CHALLENGE_PAY, METADATA_REGISTRY, TASK_REGISTRY, TREASURY
from indexers.chain.catalogue import spec_events
from indexers.chain.messages import args_of, rekeyed
from indexers.chain.model import DecodedLog, OutMessage

Position = tuple[int, int]  # (block number, log index)

_CHALLENGE_ARG = {CHALLENGE_PAY: "id", TREASURY: "bucketId", TASK_REGISTRY: "challengeId",
                  METADATA_REGISTRY: "challengeId"}
_CONTRACT_SCOPED = frozenset({"DispatcherSet"})  # about the contract, not a challenge: keyed by its address


class EventKey(NamedTuple):
    key: str
    challenge_id: str | None  # decimal; None while an AIVM event's task is not bound


@dataclass(frozen=True)
class _Fact:
    position: Position
    value: str


class _LatestByPosition:
    """name -> value of the live fact with the highest chain position (facts can be retracted)."""

    def __init__(self) -> None:
        self._facts: dict[str, dict[str, _Fact]] = {}

    def add(self, name: str, event_id: str, fact: _Fact) -> None:
        self._facts.setdefault(name, {})[event_id] = fact

    def remove(self, name: str, event_id: str) -> None:
        facts = self._facts.get(name)
        if facts is not None:
            facts.pop(event_id, None)
            if not facts:
                del self._facts[name]

    def get(self, name: str) -> str | None:
        facts = self._facts.get(name)
        if not facts:
            return None
        return max(facts.values(), key=lambda f: f.position).value

    def __len__(self) -> int:
        return len(self._facts)


def contract_key(decoded: DecodedLog, challenge_pay_address: str) -> EventKey:
    """The key of a fact of any pipeline contract but AIVMInferenceV2: it names its challenge (or contract)."""
    args = decoded.args
    if decoded.event in _CONTRACT_SCOPED:
        return EventKey(decoded.log.address, None)
    challenge_id = str(args[_CHALLENGE_ARG[decoded.contract]])
    if decoded.contract == METADATA_REGISTRY and args["challengeContract"] != challenge_pay_address:
        return EventKey(f"{args['challengeContract']}:{challenge_id}", None)
    return EventKey(challenge_id, challenge_id)


# (contract, event) of the facts the keyer's state is built from: task bindings and every AIVM fact
_LEARNT_FROM = frozenset({(TASK_REGISTRY, "BindingRecorded"), *((AIVM, abi.name) for abi in spec_events()[AIVM])})
KEYER_EVENTS = frozenset(event for _contract, event in _LEARNT_FROM)  # their names (Kafka headers carry no contract)


def learns_from(contract: str, event: str) -> bool:
    """Whether the keyer's state depends on this fact (so it is keyed and learnt in chain order, in one place)."""
    return (contract, event) in _LEARNT_FROM


class ChainKeyer:
    def __init__(self, challenge_pay_address: str) -> None:
        self.challenge_pay_address = challenge_pay_address.lower()
        self._challenge_by_task = _LatestByPosition()
        self._challenge_by_request = _LatestByPosition()
        self._task_by_request = _LatestByPosition()
        self._unbound: dict[str, dict[str, OutMessage]] = {}  # task:<id> / request:<id> -> event id -> message

    def key_for(self, decoded: DecodedLog) -> EventKey:
        if decoded.contract == AIVM:
            args = decoded.args
            return self._aivm_key(args.get("taskId"), args.get("requestId"))
        return contract_key(decoded, self.challenge_pay_address)

    def _aivm_key(self, task_id: str | None, request_id: str | None) -> EventKey:
        if task_id is None and request_id is not None:
            task_id = self._task_by_request.get(request_id)
        challenge_id = None
        if task_id is not None:
            challenge_id = self._challenge_by_task.get(task_id)
        if challenge_id is None and request_id is not None:
            challenge_id = self._challenge_by_request.get(request_id)
        if challenge_id is not None:
            return EventKey(challenge_id, challenge_id)
        return EventKey(f"task:{task_id}" if task_id is not None else f"request:{request_id}", None)

    def rekeyed_copies(self, binding: OutMessage) -> list[OutMessage]:
        """The unbound AIVM facts a BindingRecorded binds, re-keyed to its challenge, in chain order."""
        args = args_of(binding.payload)
        challenge_id = str(args["challengeId"])
        found: dict[str, OutMessage] = {}
        for name in (f"task:{args['taskId']}", f"request:{args['requestId']}"):
            found.update(self._unbound.get(name, {}))
        ordered = sorted(found.values(), key=lambda m: (m.payload["block_number"], m.payload["log_index"]))
        return [rekeyed(message, challenge_id, binding) for message in ordered]

    def published(self, message: OutMessage) -> None:
        """Learn from a chain event as it is published (or read back on restart)."""
        payload = message.payload
        contract, event, args = payload["contract"], payload["event"], args_of(payload)
        if payload.get("rekeyed_from"):
            return
        position = (payload["block_number"], payload["log_index"])
        if contract == TASK_REGISTRY and event == "BindingRecorded":
            challenge = str(args["challengeId"])
            self._challenge_by_task.add(args["taskId"], message.event_id, _Fact(position, challenge))
            self._challenge_by_request.add(str(args["requestId"]), message.event_id, _Fact(position, challenge))
        elif contract == AIVM:
            if event == "InferenceRequestedV2":
                self._task_by_request.add(str(args["requestId"]), message.event_id, _Fact(position, args["taskId"]))
            if payload["challenge_id"] is None:
                self._unbound.setdefault(message.key, {})[message.event_id] = message

    def retracted(self, message: OutMessage) -> None:
        """Forget a chain event whose block was orphaned."""
        payload = message.payload
        contract, event, args = payload["contract"], payload["event"], args_of(payload)
        if payload.get("rekeyed_from"):
            return
        if contract == TASK_REGISTRY and event == "BindingRecorded":
            self._challenge_by_task.remove(args["taskId"], message.event_id)
            self._challenge_by_request.remove(str(args["requestId"]), message.event_id)
        elif contract == AIVM:
            if event == "InferenceRequestedV2":
                self._task_by_request.remove(str(args["requestId"]), message.event_id)
            unbound = self._unbound.get(message.key)
            if unbound is not None:
                unbound.pop(message.event_id, None)
                if not unbound:
                    del self._unbound[message.key]

    @property
    def bound_tasks(self) -> int:
        return len(self._challenge_by_task)

    @property
    def unbound_facts(self) -> int:
        return sum(len(messages) for messages in self._unbound.values())
