"""AIVM job state: one fold over job events and the AIVM chain facts of the job's task.

States: queued → processing → submitted → committed → revealed → done, with failed (retry via
processing), and the terminal done, dead and canceled (spec/chain.md §5.1). Every event carries an
`event_id`; a redelivered event is a no-op. An event that does not fit (anything for a terminal
job, a step back, an unknown job) is recorded in `ignored` with the reason and otherwise ignored;
the fold never raises.

Recovery (docs/operations.md, "AIVM recovery"): JobExpired says the job's request can no longer
finalize; the job becomes failed, the request's task is retired (facts of a retired task are ignored
whatever order they arrive in) and the worker's next attempt sends a new request. Operator facts:
JobRequeued takes a dead or failed job back to queued and gives it a fresh budget of attempts and
requests (`attempt_base`, `expired_requests`); JobRunRequested changes no state (it tells the worker
to act now); a JobCanceled with an operator is an operator's cancel. The newest operator fact the
fold accepted is kept (`operator_*`) for the projection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

QUEUED, PROCESSING, SUBMITTED, COMMITTED, REVEALED, DONE = (
    "queued", "processing", "submitted", "committed", "revealed", "done")
FAILED, DEAD, CANCELED = "failed", "dead", "canceled"
TERMINAL = frozenset({DONE, DEAD, CANCELED})
# Progress along the happy path; failed sits with processing (it is retried from there).
_PROGRESS = {QUEUED: 0, PROCESSING: 1, FAILED: 1, SUBMITTED: 2, COMMITTED: 3, REVEALED: 4, DONE: 5}
MAX_ERROR_CHARS = 4000
MAX_PENDING_CHAIN_FACTS = 1000


# --- job events (lc.jobs) ----------------------------------------------------------------------

@dataclass(frozen=True)
class JobQueued:
    event_id: str
    job_id: str
    challenge_id: int
    participants: tuple[str, ...]
    mode: str = "threshold"


@dataclass(frozen=True)
class ParticipantsAdded:
    event_id: str
    job_id: str
    participants: tuple[str, ...]


@dataclass(frozen=True)
class JobProcessing:
    """A worker claimed the job (counts an attempt)."""

    event_id: str
    job_id: str


@dataclass(frozen=True)
class JobSubmitted:
    """The AIVM request was sent; `task_id` names the AIVM task."""

    event_id: str
    job_id: str
    task_id: str
    request_id: int | None = None
    worker_address: str | None = None


@dataclass(frozen=True)
class JobFailed:
    event_id: str
    job_id: str
    error: str


@dataclass(frozen=True)
class JobDead:
    event_id: str
    job_id: str
    error: str


@dataclass(frozen=True)
class JobCanceled:
    event_id: str
    job_id: str
    reason: str
    operator: str | None = None  # set when an operator canceled it (`lc jobs cancel`)


@dataclass(frozen=True)
class JobExpired:
    """The job's AIVM request `task_id` can no longer reach InferenceFinalized (its deadline passed)."""

    event_id: str
    job_id: str
    task_id: str
    error: str
    request_id: int | None = None


@dataclass(frozen=True)
class OperatorFact:
    """What an operator's command on a job says: who and why (when is the event's time)."""

    event_id: str
    job_id: str
    operator: str
    reason: str


@dataclass(frozen=True)
class JobRequeued(OperatorFact):
    """Operator: a dead or failed job back to queued, with a fresh budget (`lc jobs requeue`)."""


@dataclass(frozen=True)
class JobRunRequested(OperatorFact):
    """Operator: work on the job now, without waiting for a backoff (`lc jobs run`)."""


JobEvent = (
    JobQueued | ParticipantsAdded | JobProcessing | JobSubmitted | JobFailed | JobDead | JobCanceled | JobExpired
    | JobRequeued | JobRunRequested
)


# --- AIVM chain facts (lc.chain.events) ----------------------------------------------------------

@dataclass(frozen=True)
class InferenceRequested:
    """InferenceRequestedV2."""

    event_id: str
    request_id: int
    task_id: str


@dataclass(frozen=True)
class InferenceCommitted:
    event_id: str
    request_id: int


@dataclass(frozen=True)
class InferenceRevealed:
    event_id: str
    request_id: int


@dataclass(frozen=True)
class PoIAttested:
    event_id: str
    task_id: str
    count: int


@dataclass(frozen=True)
class InferenceFinalized:
    event_id: str
    request_id: int
    task_id: str


ChainFact = InferenceRequested | InferenceCommitted | InferenceRevealed | PoIAttested | InferenceFinalized
JOB_EVENT_TYPES = (JobQueued, ParticipantsAdded, JobProcessing, JobSubmitted, JobFailed, JobDead, JobCanceled,
                   JobExpired, JobRequeued, JobRunRequested)
# what an operator's fact is called in the operator_command column
OPERATOR_COMMANDS = {JobRequeued: "requeue", JobRunRequested: "run", JobCanceled: "cancel"}


@dataclass(frozen=True)
class IgnoredEvent:
    event_id: str
    kind: str
    reason: str


@dataclass(frozen=True)
class JobState:
    job_id: str
    challenge_id: int
    mode: str
    status: str = QUEUED
    attempts: int = 0
    last_error: str | None = None
    participants: tuple[str, ...] = ()
    task_id: str | None = None  # lower-cased 0x hex
    request_id: int | None = None
    worker_address: str | None = None
    poi_count: int = 0
    retired_tasks: frozenset[str] = frozenset()  # tasks of requests that expired (JobExpired)
    retired_requests: frozenset[int] = frozenset()
    expired_requests: int = 0  # requests expired since the job was queued or requeued
    attempt_base: int = 0  # attempts when the job was last requeued: the budget counts from here
    requeues: int = 0
    operator_command: str | None = None  # the newest operator fact accepted: requeue, run or cancel
    operator: str | None = None
    operator_reason: str | None = None
    operator_event_id: str | None = None
    seen_event_ids: frozenset[str] = frozenset()
    ignored: tuple[IgnoredEvent, ...] = ()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def attempts_since_requeue(self) -> int:
        """Attempts made since the job was queued or last requeued (what the worker's budget counts)."""
        return self.attempts - self.attempt_base


def _lower(value: str) -> str:
    return value.strip().lower()


def _ignore(job: JobState, event: JobEvent | ChainFact, reason: str) -> JobState:
    entry = IgnoredEvent(event.event_id, type(event).__name__, reason)
    return replace(job, ignored=(*job.ignored, entry), seen_event_ids=job.seen_event_ids | {event.event_id})


def _advance(job: JobState, event: JobEvent | ChainFact, target: str, **changes: Any) -> JobState:
    """Move forward along the happy path; a step back or sideways is ignored and recorded."""
    if _PROGRESS[target] <= _PROGRESS[job.status]:
        return _ignore(job, event, f"{target} would not advance a {job.status} job")
    return replace(job, status=target, seen_event_ids=job.seen_event_ids | {event.event_id}, **changes)


def _accept(job: JobState, event: JobEvent | ChainFact, **changes: Any) -> JobState:
    return replace(job, seen_event_ids=job.seen_event_ids | {event.event_id}, **changes)


def _operator(job: JobState, event: JobEvent, operator: str, reason: str) -> dict[str, Any]:
    """The operator columns for an accepted operator fact."""
    return {"operator_command": OPERATOR_COMMANDS[type(event)], "operator": operator,
            "operator_reason": reason[:MAX_ERROR_CHARS], "operator_event_id": event.event_id}


def _expire(job: JobState, event: JobExpired) -> JobState:
    task = _lower(event.task_id)
    retired = {"retired_tasks": job.retired_tasks | {task}, "retired_requests": job.retired_requests | (
        {event.request_id} if event.request_id is not None else set())}
    if task != job.task_id or job.status not in (SUBMITTED, COMMITTED, REVEALED):
        ignored = _ignore(job, event, f"request of task {task} is not the {job.status} job's current request")
        return replace(ignored, **retired)
    return _accept(job, event, status=FAILED, last_error=event.error[:MAX_ERROR_CHARS],
                   expired_requests=job.expired_requests + 1, **retired)


def _apply_job_event(job: JobState, event: JobEvent) -> JobState:
    match event:
        case JobQueued():
            return _ignore(job, event, "job already queued")
        case ParticipantsAdded():
            merged = tuple(sorted(set(job.participants) | {_lower(p) for p in event.participants}))
            return _accept(job, event, participants=merged)
        case JobProcessing():
            if job.status not in (QUEUED, FAILED):
                return _ignore(job, event, f"cannot start processing a {job.status} job")
            return _accept(job, event, status=PROCESSING, attempts=job.attempts + 1)
        case JobSubmitted():
            if _lower(event.task_id) in job.retired_tasks:
                return _ignore(job, event, f"task {_lower(event.task_id)} expired")
            return _advance(job, event, SUBMITTED, task_id=_lower(event.task_id),
                            request_id=event.request_id if event.request_id is not None else job.request_id,
                            worker_address=event.worker_address or job.worker_address)
        case JobFailed():
            if job.status != PROCESSING:
                return _ignore(job, event, f"a {job.status} job cannot fail")
            return _accept(job, event, status=FAILED, last_error=event.error[:MAX_ERROR_CHARS])
        case JobDead():
            if job.status not in (PROCESSING, FAILED):
                return _ignore(job, event, f"a {job.status} job cannot die")
            return _accept(job, event, status=DEAD, last_error=event.error[:MAX_ERROR_CHARS])
        case JobCanceled():
            extra = _operator(job, event, event.operator, event.reason) if event.operator else {}
            return _accept(job, event, status=CANCELED, last_error=event.reason[:MAX_ERROR_CHARS], **extra)
        case JobExpired():
            return _expire(job, event)
        case JobRequeued():
            if job.status not in (DEAD, FAILED):
                return _ignore(job, event, f"only a dead or failed job can be requeued, not a {job.status} one")
            return _accept(job, event, status=QUEUED, attempt_base=job.attempts, expired_requests=0,
                           requeues=job.requeues + 1, **_operator(job, event, event.operator, event.reason))
        case JobRunRequested():
            return _accept(job, event, **_operator(job, event, event.operator, event.reason))
    return _ignore(job, event, "unknown job event")


def _apply_chain_fact(job: JobState, fact: ChainFact, task: str | None) -> JobState:
    if task is not None and task in job.retired_tasks:
        return _ignore(job, fact, f"task {task} expired")
    if isinstance(fact, InferenceCommitted | InferenceRevealed) and fact.request_id in job.retired_requests:
        return _ignore(job, fact, f"request {fact.request_id} expired")
    match fact:
        case InferenceRequested():
            if job.status == SUBMITTED:  # the worker already reported it; only learn the request id
                return _accept(job, fact, request_id=fact.request_id, task_id=_lower(fact.task_id))
            return _advance(job, fact, SUBMITTED, request_id=fact.request_id, task_id=_lower(fact.task_id))
        case InferenceCommitted():
            return _advance(job, fact, COMMITTED)
        case InferenceRevealed():
            return _advance(job, fact, REVEALED)
        case PoIAttested():
            return _accept(job, fact, poi_count=max(job.poi_count, fact.count))
        case InferenceFinalized():
            return _advance(job, fact, DONE)
    return _ignore(job, fact, "unknown chain fact")


def apply_to_job(job: JobState | None, event: JobEvent | ChainFact, task: str | None = None) -> JobState | None:
    """Fold one event into one job. None in, JobQueued → a new job; None in, anything else → None.
    `task`: the task of a chain fact that names only its request (commit, reveal), when known."""
    if job is None:
        if isinstance(event, JobQueued):
            participants = tuple(sorted({_lower(p) for p in event.participants}))
            return JobState(event.job_id, event.challenge_id, event.mode, participants=participants,
                            seen_event_ids=frozenset({event.event_id}))
        return None
    if event.event_id in job.seen_event_ids:
        return job
    if job.is_terminal and not (isinstance(event, JobRequeued) and job.status == DEAD):
        return _ignore(job, event, f"job is {job.status}")
    if isinstance(event, JOB_EVENT_TYPES):
        return _apply_job_event(job, event)
    if isinstance(event, InferenceRequested | PoIAttested | InferenceFinalized):
        task = _lower(event.task_id)
    return _apply_chain_fact(job, event, task)


# --- routing many jobs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class JobBook:
    """Every job of a partition, with the task/request indexes that route AIVM facts to their job.

    AIVM facts can arrive before the job's JobSubmitted names the task (the chain indexer and the
    worker publish independently): they wait in `pending` and are applied when the task is named.
    """

    jobs: Mapping[str, JobState]
    job_by_task: Mapping[str, str]
    task_by_request: Mapping[int, str]
    pending: tuple[ChainFact, ...] = ()
    ignored: tuple[IgnoredEvent, ...] = ()

    @classmethod
    def empty(cls) -> JobBook:
        return cls(jobs={}, job_by_task={}, task_by_request={})


def _task_of(book: JobBook, fact: ChainFact) -> str | None:
    if isinstance(fact, InferenceRequested | PoIAttested | InferenceFinalized):
        return _lower(fact.task_id)
    return book.task_by_request.get(fact.request_id)


def _with_job(book: JobBook, job: JobState) -> JobBook:
    jobs = {**book.jobs, job.job_id: job}
    job_by_task = {**book.job_by_task, job.task_id: job.job_id} if job.task_id else book.job_by_task
    return replace(book, jobs=jobs, job_by_task=job_by_task)


def _index_request(book: JobBook, fact: ChainFact) -> JobBook:
    if isinstance(fact, InferenceRequested | InferenceFinalized):
        return replace(book, task_by_request={**book.task_by_request, fact.request_id: _lower(fact.task_id)})
    return book


def _route_fact(book: JobBook, fact: ChainFact) -> JobBook:
    book = _index_request(book, fact)
    task = _task_of(book, fact)
    job_id = book.job_by_task.get(task) if task else None
    if job_id is None:
        return replace(book, pending=(*book.pending, fact)[-MAX_PENDING_CHAIN_FACTS:])
    updated = apply_to_job(book.jobs[job_id], fact, task)
    return _with_job(book, updated) if updated is not None else book


def _flush_pending(book: JobBook) -> JobBook:
    """Re-route waiting facts (in arrival order) whose task is now known."""
    ready = [f for f in book.pending if (task := _task_of(book, f)) is not None and task in book.job_by_task]
    if not ready:
        return book
    book = replace(book, pending=tuple(f for f in book.pending if f not in ready))
    for fact in ready:
        book = _route_fact(book, fact)
    return book


def apply_to_book(book: JobBook, event: JobEvent | ChainFact) -> JobBook:
    if not isinstance(event, JOB_EVENT_TYPES):
        return _flush_pending(_route_fact(book, event))
    updated = apply_to_job(book.jobs.get(event.job_id), event)
    if updated is None:
        entry = IgnoredEvent(event.event_id, type(event).__name__, f"unknown job {event.job_id}")
        return replace(book, ignored=(*book.ignored, entry))
    if updated.task_id and updated.request_id is not None:
        book = replace(book, task_by_request={**book.task_by_request, updated.request_id: updated.task_id})
    return _flush_pending(_with_job(book, updated))


def job_row(job: JobState) -> Mapping[str, Any]:
    """The `aivm_jobs` columns this state determines (spec/schema.md §3.5, plus the operator columns)."""
    return {"challenge_id": job.challenge_id, "status": job.status, "attempts": job.attempts,
            "last_error": job.last_error, "worker_address": job.worker_address, "task_id": job.task_id,
            "operator_command": job.operator_command, "operator_name": job.operator,
            "operator_reason": job.operator_reason}


def chain_fact_from_event(event_id: str, event: str, args: Mapping[str, Any]) -> ChainFact | None:
    """The job-relevant fact of a decoded AIVMInferenceV2 log (`lc.chain.events` payload `event` and
    `args`); None for the events this fold does not read."""
    if event == "InferenceRequestedV2":
        return InferenceRequested(event_id, int(args["requestId"]), str(args["taskId"]))
    if event == "InferenceCommitted":
        return InferenceCommitted(event_id, int(args["requestId"]))
    if event == "InferenceRevealed":
        return InferenceRevealed(event_id, int(args["requestId"]))
    if event == "PoIAttested":
        return PoIAttested(event_id, str(args["taskId"]), int(args["count"]))
    if event == "InferenceFinalized":
        return InferenceFinalized(event_id, int(args["requestId"]), str(args["taskId"]))
    return None
