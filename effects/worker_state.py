"""The AIVM worker's view of one challenge and what it must do next; pure.

The view folds the job events of lc.jobs (the job's status, attempts, expired requests and operator
facts through `domain.job_state`, so they are counted as every other reader counts them), the
worker's own facts (AivmRequestSent, TaskBindingRecorded), the job's InferenceFinalized and the
challenge's registration and lifecycle (`domain.challenge_state`). `next_step` turns the view into
the one thing to do now.

Every input folds idempotently and in any order: the worker folds what it publishes at once and
again when the event comes back from the topic, possibly after newer events. So the view keeps sets
(every request of the job, every binding, every finalized task) and derives the current request
from them: the newest one whose task has not expired.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain import job_state as js
from domain.challenge_state import ChallengeFact, ChallengeState, apply_challenge_fact
from effects.request_plan import RequestRef


@dataclass(frozen=True)
class InferenceFinalizedFact:
    """AIVMInferenceV2.InferenceFinalized under its challenge (removed: retracted after a reorg)."""

    event_id: str
    task_id: str
    block_timestamp: int
    removed: bool


@dataclass(frozen=True)
class RequestSent:
    """AivmRequestSent: one of the job's requests is on chain."""

    event_id: str
    job_id: str
    request: RequestRef


@dataclass(frozen=True)
class BindingRecorded:
    """TaskBindingRecorded: `subject` is bound to the request (`task_id`)."""

    event_id: str
    job_id: str
    subject: str
    task_id: str


@dataclass(frozen=True)
class BindingRefused:
    """TaskBindingFailed: recordBinding for `subject` to `task_id` failed (attempt n)."""

    event_id: str
    job_id: str
    subject: str
    attempt: int
    task_id: str = ""


WorkerInput = js.JobEvent | RequestSent | BindingRecorded | BindingRefused | InferenceFinalizedFact | ChallengeFact


@dataclass(frozen=True)
class Limits:
    """The worker's budget per job (LC_AIVM_MAX_ATTEMPTS, LC_AIVM_MAX_REQUESTS)."""

    max_attempts: int
    max_requests: int


@dataclass(frozen=True)
class WorkerView:
    challenge_id: int
    challenge: ChallengeState
    job: js.JobState | None = None
    participants: frozenset[str] = frozenset()  # queued and added, lower-cased
    requests: frozenset[RequestRef] = frozenset()  # every request of the job the worker reported
    bound: frozenset[tuple[str, str]] = frozenset()  # (subject, task id)
    binding_attempts: tuple[tuple[tuple[str, str], int], ...] = ()  # ((subject, task), failed attempts), sorted
    finalized: tuple[tuple[str, str], ...] = ()  # (InferenceFinalized event id, task id), sorted

    @classmethod
    def initial(cls, challenge_id: int) -> WorkerView:
        return cls(challenge_id, ChallengeState(challenge_id=challenge_id))

    @property
    def current_request(self) -> RequestRef | None:
        """The job's newest request whose task has not expired (request ids only grow on chain)."""
        retired = self.job.retired_tasks if self.job is not None else frozenset()
        live = [r for r in self.requests if r.task_id not in retired]
        return max(live, key=lambda r: r.request_id) if live else None

    def finalized_tasks(self) -> frozenset[str]:
        return frozenset(task for _event, task in self.finalized)

    def binding_failures(self, subject: str, task_id: str) -> int:
        return dict(self.binding_attempts).get((subject, task_id), 0)

    def unbound(self) -> tuple[str, ...]:
        request = self.current_request
        if request is None:
            return ()
        return tuple(sorted(p for p in self.participants if (p, request.task_id) not in self.bound))


def _lower(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values)


def apply_input(view: WorkerView, item: WorkerInput) -> WorkerView:
    """Fold one input (redelivered job events are no-ops through the job fold's seen ids)."""
    match item:
        case RequestSent():
            request = RequestRef(item.request.request_id, item.request.task_id.lower())
            return replace(view, requests=view.requests | {request})
        case BindingRecorded():
            return replace(view, bound=view.bound | {(item.subject.lower(), item.task_id.lower())})
        case BindingRefused():
            attempts = dict(view.binding_attempts)
            key = (item.subject, item.task_id.lower())
            attempts[key] = max(attempts.get(key, 0), item.attempt)
            return replace(view, binding_attempts=tuple(sorted(attempts.items())))
        case InferenceFinalizedFact():
            finalized = {e: t for e, t in view.finalized}
            if item.removed:
                finalized.pop(item.event_id, None)
            else:
                finalized[item.event_id] = item.task_id.lower()
            return replace(view, finalized=tuple(sorted(finalized.items())))
        case js.JobQueued() | js.ParticipantsAdded():
            job = js.apply_to_job(view.job, item)
            return replace(view, job=job, participants=view.participants | _lower(item.participants))
        case js.JobSubmitted():
            job = js.apply_to_job(view.job, item)
            requests = view.requests
            if item.request_id is not None:
                requests = requests | {RequestRef(item.request_id, item.task_id.lower())}
            return replace(view, job=job, requests=requests)
        case (js.JobProcessing() | js.JobFailed() | js.JobDead() | js.JobCanceled() | js.JobExpired()
              | js.JobRequeued() | js.JobRunRequested()):
            return replace(view, job=js.apply_to_job(view.job, item))
    return replace(view, challenge=apply_challenge_fact(view.challenge, item))


# --- what to do next --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Wait:
    reason: str


@dataclass(frozen=True)
class StartAttempt:
    """Publish JobProcessing(attempt), then request and bind."""

    attempt: int


@dataclass(frozen=True)
class ResumeAttempt:
    """An attempt was started (JobProcessing published) and its outcome never published: finish it,
    finding on chain whatever it already did."""

    attempt: int


@dataclass(frozen=True)
class GiveUp:
    """The job's budget is spent but JobDead was not published yet."""

    error: str


@dataclass(frozen=True)
class BindParticipants:
    subjects: tuple[str, ...]


@dataclass(frozen=True)
class WatchRequest:
    """The job's request is out and not finalized: check it has not expired."""

    request: RequestRef


Step = Wait | StartAttempt | ResumeAttempt | GiveUp | BindParticipants | WatchRequest


def next_step(view: WorkerView, limits: Limits) -> Step:
    job = view.job
    if job is None:
        return Wait("no job")
    if job.status in js.TERMINAL:
        return Wait(f"job {job.status}")
    if view.challenge.is_terminal:
        return Wait(f"challenge {view.challenge.status}")
    if job.status == js.PROCESSING:
        return ResumeAttempt(job.attempts)
    if job.status in (js.QUEUED, js.FAILED):
        if job.attempts_since_requeue >= limits.max_attempts:
            return GiveUp(job.last_error or "attempts exhausted")
        if job.expired_requests >= limits.max_requests:
            return GiveUp(f"{job.expired_requests} AIVM request(s) expired; last: {job.last_error}")
        if not view.challenge.registered:
            return Wait("challenge not registered yet")
        return StartAttempt(job.attempts + 1)
    request = view.current_request
    if request is None:
        return Wait("submitted, but the request is not known yet")
    missing = view.unbound()  # participants added later (or a new request) still need bindings
    if missing:
        return BindParticipants(missing)
    if request.task_id in view.finalized_tasks():
        return Wait("inference finalized")
    return WatchRequest(request)
