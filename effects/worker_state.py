"""The AIVM worker's view of one challenge and what it must do next; pure.

The view folds the job events of lc.jobs (the job's status and attempts through
`domain.job_state`, so attempts are counted as every other reader counts them), the worker's own
facts (AivmRequestSent, TaskBindingRecorded) and the challenge's registration and lifecycle
(`domain.challenge_state`). `next_step` turns the view into the one thing to do now.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain import job_state as js
from domain.challenge_state import ChallengeFact, ChallengeState, apply_challenge_fact
from effects.request_plan import RequestRef


@dataclass(frozen=True)
class RequestSent:
    """AivmRequestSent: the job's request is on chain."""

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
    """TaskBindingFailed: recordBinding for `subject` failed (attempt n)."""

    event_id: str
    job_id: str
    subject: str
    attempt: int


WorkerInput = js.JobEvent | RequestSent | BindingRecorded | BindingRefused | ChallengeFact


@dataclass(frozen=True)
class WorkerView:
    challenge_id: int
    challenge: ChallengeState
    job: js.JobState | None = None
    participants: frozenset[str] = frozenset()  # queued and added, lower-cased
    request: RequestRef | None = None
    bound: frozenset[tuple[str, str]] = frozenset()  # (subject, task id)
    binding_attempts: tuple[tuple[str, int], ...] = ()  # (subject, failed recordBinding attempts), sorted

    @classmethod
    def initial(cls, challenge_id: int) -> WorkerView:
        return cls(challenge_id, ChallengeState(challenge_id=challenge_id))

    def binding_failures(self, subject: str) -> int:
        return dict(self.binding_attempts).get(subject, 0)

    def unbound(self) -> tuple[str, ...]:
        if self.request is None:
            return ()
        task = self.request.task_id
        return tuple(sorted(p for p in self.participants if (p, task) not in self.bound))


def _lower(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values)


def apply_input(view: WorkerView, item: WorkerInput) -> WorkerView:
    """Fold one input (redelivered job events are no-ops through the job fold's seen ids)."""
    match item:
        case RequestSent():
            return replace(view, request=RequestRef(item.request.request_id, item.request.task_id.lower()))
        case BindingRecorded():
            return replace(view, bound=view.bound | {(item.subject.lower(), item.task_id.lower())})
        case BindingRefused():
            attempts = dict(view.binding_attempts)
            attempts[item.subject] = max(attempts.get(item.subject, 0), item.attempt)
            return replace(view, binding_attempts=tuple(sorted(attempts.items())))
        case js.JobQueued() | js.ParticipantsAdded():
            job = js.apply_to_job(view.job, item)
            return replace(view, job=job, participants=view.participants | _lower(item.participants))
        case js.JobSubmitted():
            job = js.apply_to_job(view.job, item)
            request = view.request
            if request is None and item.request_id is not None:
                request = RequestRef(item.request_id, item.task_id.lower())
            return replace(view, job=job, request=request)
        case js.JobProcessing() | js.JobFailed() | js.JobDead() | js.JobCanceled():
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
    """Attempts are exhausted but JobDead was not published yet."""

    error: str


@dataclass(frozen=True)
class BindParticipants:
    subjects: tuple[str, ...]


Step = Wait | StartAttempt | ResumeAttempt | GiveUp | BindParticipants


def next_step(view: WorkerView, max_attempts: int) -> Step:
    job = view.job
    if job is None:
        return Wait("no job")
    if job.status in (js.CANCELED, js.DEAD):
        return Wait(f"job {job.status}")
    if view.challenge.is_terminal:
        return Wait(f"challenge {view.challenge.status}")
    if job.status == js.PROCESSING:
        return ResumeAttempt(job.attempts)
    if job.status in (js.QUEUED, js.FAILED):
        if job.attempts >= max_attempts:
            return GiveUp(job.last_error or "attempts exhausted")
        if not view.challenge.registered:
            return Wait("challenge not registered yet")
        return StartAttempt(job.attempts + 1)
    missing = view.unbound()  # submitted and beyond: participants added later still need bindings
    if missing:
        return BindParticipants(missing)
    return Wait("nothing to do")
