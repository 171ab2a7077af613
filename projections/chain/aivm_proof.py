"""The AIVM progress keys of `challenges.proof`, from a challenge's chain facts and job events. Pure.

The original's AIVM indexer and finalization bridge wrote these keys into `challenges.proof` as the
request went through the AIVM network (spec/chain.md §1.3, §4.3, §5.4); the web app's "AIVM
verification" status and the indexes on `proof->'taskBinding'` read them. Here they are derived,
never written in place, from facts that hold now, so the live projector and a rebuild give the same
keys:

- the current request: the one the AIVM worker named last (AivmRequestSent, else JobSubmitted), else
  the newest InferenceRequestedV2 bound to the challenge: `taskBinding {schemaVersion: 1, requestId
  (decimal string), taskId}`, `requestTxHash`; `bindTxHash` from the registry's BindingRecorded of the
  task (the challenge subject's binding first), else the worker's TaskBindingRecorded;
- `verificationStatus`: `requested`, then `committed`, `revealed`, `finalized` as the chain facts of
  the current request arrive (forward only, whatever order they were read in);
- `responseHash`, `response` (InferenceRevealed); `poiResultHash`, `transcriptHash`, `slot`,
  `poiCount` (the PoIAttested of the task with the highest count);
- `proofsSubmitted` once every participant of the job has a ProofSubmitted (or a final ProofFailed)
  and at least one proof went in, with `submitProofTxHash` of the newest; `finalizationAttempted`,
  `finalizationSuccess`, `finalizeTxHash` from FinalizeSent; `lastFinalizationError` (at most 500
  characters) from the newest ProofFailed or FinalizeFailed.
A key without a fact behind it is absent, as in the original.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from domain.contracts import AIVM, TASK_REGISTRY
from projections.chain.facts import ChainFact

# job events (lc.jobs) the challenge projection stores for this derivation
PROOF_JOB_EVENTS = frozenset({"JobQueued", "JobParticipantsAdded", "JobSubmitted", "AivmRequestSent",
                              "TaskBindingRecorded", "ProofSubmitted", "ProofFailed", "FinalizeSent",
                              "FinalizeFailed"})
STATUSES = ("requested", "committed", "revealed", "finalized")
_STATUS_OF = {"InferenceCommitted": "committed", "InferenceRevealed": "revealed", "InferenceFinalized": "finalized"}
MAX_ERROR_CHARS = 500


class JobEventRow(NamedTuple):
    event_id: str
    kind: str
    payload: Mapping[str, Any]
    occurred_at: int  # epoch ms

    @property
    def order(self) -> tuple[int, str]:
        return (self.occurred_at, self.event_id)


class Request(NamedTuple):
    request_id: str
    task_id: str
    tx_hash: str | None


def _number(text: str) -> int | str:
    """A uint64 as a JSON number when it is exact in JavaScript, else its decimal string."""
    value = int(text)
    return value if value <= 2**53 else text


def _current_request(facts: Sequence[ChainFact], jobs: Sequence[JobEventRow]) -> Request | None:
    requested = {str(f.args["requestId"]): f for f in facts if f.contract == AIVM and f.event == "InferenceRequestedV2"}
    named = [j for j in jobs if j.kind in ("AivmRequestSent", "JobSubmitted") and j.payload.get("request_id")]
    if named:
        newest = max(named, key=lambda j: j.order)
        request_id, task_id = str(newest.payload["request_id"]), str(newest.payload["task_id"]).lower()
        on_chain = requested.get(request_id)
        sent = next((j.payload.get("tx_hash") for j in sorted(named, key=lambda j: j.order, reverse=True)
                     if j.kind == "AivmRequestSent" and str(j.payload["request_id"]) == request_id), None)
        return Request(request_id, task_id, on_chain.tx_hash if on_chain is not None else sent)
    if requested:
        newest_fact = max(requested.values(), key=lambda f: f.position)
        return Request(str(newest_fact.args["requestId"]), str(newest_fact.args["taskId"]), newest_fact.tx_hash)
    return None


def _bind_tx(request: Request, facts: Sequence[ChainFact], jobs: Sequence[JobEventRow], subject: str | None) -> str | None:
    bindings = sorted((f for f in facts if f.contract == TASK_REGISTRY and f.event == "BindingRecorded"
                       and str(f.args["taskId"]) == request.task_id),
                      key=lambda f: (f.args["subject"] != subject, f.position))
    if bindings:
        return bindings[0].tx_hash
    recorded = sorted((j for j in jobs if j.kind == "TaskBindingRecorded" and j.payload.get("tx_hash")
                       and str(j.payload.get("task_id", "")).lower() == request.task_id),
                      key=lambda j: (j.payload.get("subject") != subject, j.order))
    return str(recorded[0].payload["tx_hash"]) if recorded else None


def aivm_progress(facts: Sequence[ChainFact], jobs: Sequence[JobEventRow], subject: str | None) -> dict[str, Any]:
    """The progress keys; `facts` are the challenge's live chain facts in chain order, `jobs` its
    stored job events (any order), `subject` the challenge's subject (lower-case)."""
    jobs = sorted(jobs, key=lambda j: j.order)
    progress: dict[str, Any] = {}
    request = _current_request(facts, jobs)
    if request is not None:
        progress["taskBinding"] = {"schemaVersion": 1, "requestId": request.request_id, "taskId": request.task_id}
        if request.tx_hash:
            progress["requestTxHash"] = request.tx_hash
        bind_tx = _bind_tx(request, facts, jobs, subject)
        if bind_tx:
            progress["bindTxHash"] = bind_tx
        progress.update(_chain_progress(request, facts))
    progress.update(_finalization(jobs))
    return progress


def _chain_progress(request: Request, facts: Sequence[ChainFact]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    status = 0
    best_poi: ChainFact | None = None
    for fact in facts:
        if fact.contract != AIVM:
            continue
        args = fact.args
        if fact.event in _STATUS_OF and str(args["requestId"]) == request.request_id:
            status = max(status, STATUSES.index(_STATUS_OF[fact.event]))
            if fact.event == "InferenceRevealed":
                keys["responseHash"], keys["response"] = args["responseHash"], args["response"]
        elif fact.event == "PoIAttested" and str(args["taskId"]) == request.task_id:
            if best_poi is None or int(args["count"]) >= int(best_poi.args["count"]):
                best_poi = fact
    keys["verificationStatus"] = STATUSES[status]
    if best_poi is not None:
        keys.update(poiResultHash=best_poi.args["resultHash"], transcriptHash=best_poi.args["transcriptHash"],
                    slot=_number(best_poi.args["slot"]), poiCount=_number(best_poi.args["count"]))
    return keys


def _finalization(jobs: Sequence[JobEventRow]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    participants: set[str] = set()
    settled: set[str] = set()
    proofs = [j for j in jobs if j.kind == "ProofSubmitted"]
    for job in jobs:
        p = job.payload
        if job.kind in ("JobQueued", "JobParticipantsAdded"):
            participants.update(str(s).lower() for s in p.get("participants") or ())
        elif job.kind == "ProofSubmitted" or (job.kind == "ProofFailed" and p.get("final")):
            settled.add(str(p["participant"]).lower())
    if proofs and participants and participants <= settled:
        keys["proofsSubmitted"] = True
        sent = [j for j in proofs if j.payload.get("tx_hash")]
        if sent:
            keys["submitProofTxHash"] = sent[-1].payload["tx_hash"]
    finalized = [j for j in jobs if j.kind == "FinalizeSent"]
    if finalized:
        keys.update(finalizationAttempted=True, finalizationSuccess=True,
                    finalizeTxHash=finalized[-1].payload.get("tx_hash"))
    failures = [j for j in jobs if j.kind in ("ProofFailed", "FinalizeFailed") and j.payload.get("error")]
    if failures:
        keys["lastFinalizationError"] = str(failures[-1].payload["error"])[:MAX_ERROR_CHARS]
    return keys
