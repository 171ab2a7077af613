"""Message keys of chain events: the challenge id, so every fact of a challenge lands in one partition.

ChallengePay and Treasury events carry the challenge (Treasury's bucket id is the challenge id),
ChallengeTaskRegistry and MetadataRegistry events name it. AIVMInferenceV2 events do not: they name a
request id and/or a task id. The indexer sees the registry's BindingRecorded facts in chain order, so
it keys an AIVM event by the challenge its task (or request) is bound to at the time the event is
published; before the binding is known the key is `task:<taskId>` (or `request:<requestId>` when even
the task is unknown, e.g. a commit of a request indexed before a `seed` start).

Decision (docs/decisions.md): no re-emission. A fact is published once, under the key known when it
was confirmed. In the normal flow only InferenceRequestedV2 precedes its binding (the orchestrator
records the binding after reading the request's receipt); the BindingRecorded that follows is keyed by
the challenge and carries the request id and task id, so a per-challenge processor learns the
binding in its own partition and has no need for the task-keyed request fact. A consumer that does
need the pre-binding facts re-keys downstream by joining them with BindingRecorded on the task id.
Re-emitting would publish the same fact twice under two keys (and two ids or one id in two
partitions), which every consumer would have to reconcile.

The mapping is derived only from published facts (live BindingRecorded and InferenceRequestedV2
events), ordered by their chain position, so the same map results from a restart's read-back in any
partition order, and a retracted binding stops keying later events. BindingCleared does not unbind a
task: facts of a task stay with the challenge it was bound to.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexers.chain.catalogue import AIVM, CHALLENGE_PAY, METADATA_REGISTRY, TASK_REGISTRY, TREASURY
from indexers.chain.model import DecodedLog

Position = tuple[int, int]  # (block number, log index)

_CHALLENGE_ARG = {CHALLENGE_PAY: "id", TREASURY: "bucketId", TASK_REGISTRY: "challengeId",
                  METADATA_REGISTRY: "challengeId"}


@dataclass(frozen=True)
class EventKey:
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


class ChainKeyer:
    def __init__(self, challenge_pay_address: str) -> None:
        self.challenge_pay_address = challenge_pay_address.lower()
        self._challenge_by_task = _LatestByPosition()
        self._challenge_by_request = _LatestByPosition()
        self._task_by_request = _LatestByPosition()

    def key_for(self, decoded: DecodedLog) -> EventKey:
        args = decoded.args
        if decoded.contract == AIVM:
            return self._aivm_key(args.get("taskId"), args.get("requestId"))
        challenge_id = str(args[_CHALLENGE_ARG[decoded.contract]])
        if decoded.contract == METADATA_REGISTRY and args["challengeContract"] != self.challenge_pay_address:
            return EventKey(f"{args['challengeContract']}:{challenge_id}", None)
        return EventKey(challenge_id, challenge_id)

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

    def observe(self, contract: str, event: str, args: dict, position: Position, event_id: str) -> None:
        """Learn from a fact as it is published (or read back on restart)."""
        if contract == TASK_REGISTRY and event == "BindingRecorded":
            challenge = str(args["challengeId"])
            self._challenge_by_task.add(args["taskId"], event_id, _Fact(position, challenge))
            self._challenge_by_request.add(str(args["requestId"]), event_id, _Fact(position, challenge))
        elif contract == AIVM and event == "InferenceRequestedV2":
            self._task_by_request.add(str(args["requestId"]), event_id, _Fact(position, args["taskId"]))

    def retract(self, contract: str, event: str, args: dict, event_id: str) -> None:
        """Forget a fact whose block was orphaned."""
        if contract == TASK_REGISTRY and event == "BindingRecorded":
            self._challenge_by_task.remove(args["taskId"], event_id)
            self._challenge_by_request.remove(str(args["requestId"]), event_id)
        elif contract == AIVM and event == "InferenceRequestedV2":
            self._task_by_request.remove(str(args["requestId"]), event_id)

    @property
    def bound_tasks(self) -> int:
        return len(self._challenge_by_task)
