"""`lc run aivm-worker` (group lc-aivm-worker): queued AIVM jobs -> requestInferenceV2 and a
ChallengeTaskRegistry binding for every participant the job names (issue #4), and a new request when
one expires while proofs can still land (issue #14, docs/operations.md "AIVM recovery").

Per attempt: JobProcessing(n) is published first; the attempt goes on only while the challenge is
Active on chain and the chain's time is at least LC_AIVM_REQUEST_MIN_WINDOW_SECONDS before its proof
deadline (otherwise the attempt fails and the job is dead: no proof could land any more). Then the
worker waits until every transaction its wallet sent before now has settled and looks on chain for
this job's request (its wallet's InferenceRequestedV2 logs with the job's prompt id, model and
hashes, still usable and not expired); only when there is none does it send `requestInferenceV2`.
AivmRequestSent (with the transaction hash) and JobSubmitted follow, then a binding per participant
(an existing binding to the same task is reported, not re-sent). A failed attempt publishes JobFailed
with the reason and is retried with exponential backoff; after LC_AIVM_MAX_ATTEMPTS the job is dead
(JobDead). A job whose challenge is canceled or finalized (on chain, or in the consumed facts) is not
requested. Participants added later get their bindings when they arrive; a failed binding publishes
TaskBindingFailed and is retried with backoff.

Recovery: while the job's request is out and not finalized, the worker reads it from the chain each
time confirmed chain time (lc.chain.blocks) passes the deadline of the step it is waiting for
(commit, reveal, finalize). A request that can no longer finalize publishes JobExpired (the job is
failed, its task retired) and the next attempt, after backoff, sends a new request and binds every
participant to it, replacing the old bindings; after LC_AIVM_MAX_REQUESTS expired requests the job is
dead. Operator facts: JobRequeued (the job fold gives it a fresh budget), JobRunRequested (act now:
no backoff wait, the request checked at once), JobCanceled (stop).

Up to LC_AIVM_WORKER_CONCURRENCY jobs are worked on at once (`effects.stage`); transactions of one
wallet are numbered under one lock and replaced with a higher fee when stuck (`chain.client`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chain.deployments import read_deployments
from domain import job_state as js
from domain.challenge_state import CHALLENGE_FACT_TYPES
from effects import worker_state as ws
from effects.chain import ChainWriter, SentRequest, TxReverted, load_account
from effects.request_plan import (
    BINDING_SCHEMA_VERSION,
    InvalidJob,
    RequestRef,
    RequestSpec,
    RequestState,
    binding_is_current,
    request_expiry,
    request_spec,
    retry_delay,
)
from effects.settings import WriterSettings
from effects.stage import ViewStage
from eventlog.consumer import StopFlag
from eventlog.topics import CHAIN_EVENTS, CHALLENGES_REGISTERED, JOBS, STATE_AIVM_WORKER

log = logging.getLogger(__name__)

GROUP = "lc-aivm-worker"
WORKER_INPUTS = (*js.JOB_EVENT_TYPES, ws.RequestSent, ws.BindingRecorded, ws.BindingRefused,
                 ws.InferenceFinalizedFact, *CHALLENGE_FACT_TYPES)


def describe_error(exc: BaseException) -> str:
    """The reason published for a failure: the revert's error name, else the exception (no secrets)."""
    if isinstance(exc, TxReverted):
        return f"{exc.error} ({exc})"
    return f"{type(exc).__name__}: {exc}"[:2000]


@dataclass(frozen=True)
class Watched:
    """What the worker last read of a request, and at which confirmed chain time."""

    state: RequestState
    checked_at: int | None  # None: check again at once (an operator asked to run the job)

    def due(self, chain_time: int) -> bool:
        """Whether to read the request again: chain time has moved past the deadline of the step it was
        waiting for when last read."""
        deadline = self.state.next_deadline()
        if self.checked_at is None:
            return True
        return deadline is not None and chain_time > deadline[1] and chain_time != self.checked_at


class AivmWorker(ViewStage[ws.WorkerView]):
    group = GROUP
    topics = (JOBS, CHALLENGES_REGISTERED, CHAIN_EVENTS)
    changelog_topic = STATE_AIVM_WORKER
    view_type = ws.WorkerView
    state_version = 2  # 2: every request of the job (`requests`), binding attempts per (subject, task)
    uses_chain_time = True

    def __init__(self, settings: WriterSettings, *, stop: StopFlag | None = None, chain: ChainWriter | None = None) -> None:
        super().__init__(settings, stop=stop, concurrency=settings.aivm_worker_concurrency)
        self.limits = ws.Limits(settings.aivm_max_attempts, settings.aivm_max_requests)
        self.watched: dict[int, Watched] = {}  # request id -> last read
        self.chain = chain or ChainWriter(
            settings.rpc_url, load_account(settings.private_key, "LC_PRIVATE_KEY"),
            read_deployments(settings.deployments_path), receipt_timeout=settings.writer_receipt_timeout_seconds,
            max_block_range=settings.chain_max_block_range, replace_after=settings.writer_replace_after_seconds,
        )

    # ---------------------------------------------------------------- folding

    def initial_view(self, challenge_id: int) -> ws.WorkerView:
        return ws.WorkerView.initial(challenge_id)

    def accepts(self, item: object) -> bool:
        return isinstance(item, WORKER_INPUTS)

    def apply(self, view: ws.WorkerView, item: object) -> ws.WorkerView:
        return ws.apply_input(view, item)  # type: ignore[arg-type]

    def fold(self, partition: int, challenge_id: int, item: object) -> None:
        super().fold(partition, challenge_id, item)
        if isinstance(item, js.JobRunRequested):  # an operator: act now, whatever the backoff said
            self.retry_now(challenge_id)
            request = self.view(challenge_id).current_request
            if request is not None and request.request_id in self.watched:
                watched = self.watched[request.request_id]
                self.watched[request.request_id] = Watched(watched.state, None)

    # ---------------------------------------------------------------- deciding (consumer thread)

    def _backoff(self, attempt: int) -> float:
        return retry_delay(attempt, self.settings.writer_backoff_seconds, self.settings.writer_backoff_max_seconds)

    def reconcile(self, challenge_id: int, view: ws.WorkerView) -> None:
        step = ws.next_step(view, self.limits)
        job = view.job
        if isinstance(step, ws.Wait) or job is None:
            return
        if isinstance(step, ws.GiveUp):
            self._publish_dead(challenge_id, job, step.error)
        elif isinstance(step, ws.StartAttempt | ws.ResumeAttempt):
            resumed = isinstance(step, ws.ResumeAttempt)
            self.act(challenge_id, lambda: self._attempt(challenge_id, job, step.attempt, resumed=resumed))
        elif isinstance(step, ws.BindParticipants):
            self.act(challenge_id, lambda: self._bind_later_participants(challenge_id, job, step.subjects))
        elif isinstance(step, ws.WatchRequest):
            chain_time = self.chain_time
            watched = self.watched.get(step.request.request_id)
            if chain_time is not None and (watched is None or watched.due(chain_time)):
                self.act(challenge_id, lambda: self._check_request(challenge_id, job, step.request, chain_time))

    # ---------------------------------------------------------------- acting (pool threads)

    def _job_payload(self, job: js.JobState, **fields: Any) -> dict[str, Any]:
        return {"job_id": job.job_id, "challenge_id": job.challenge_id, **fields}

    def _publish_dead(self, challenge_id: int, job: js.JobState, error: str) -> None:
        event_id = f"{job.job_id}:dead:{job.requeues}"
        self.publish(challenge_id, "JobDead", self._job_payload(job, error=error), event_id,
                     js.JobDead(event_id, job.job_id, error))

    def _attempt(self, challenge_id: int, job: js.JobState, attempt: int, *, resumed: bool) -> None:
        view = self.view(challenge_id)
        try:
            spec = request_spec(view.challenge, sorted(view.participants))
        except InvalidJob as exc:
            self._start(challenge_id, job, attempt, resumed)
            self._fail(challenge_id, job, attempt, str(exc))
            return
        window = self._window(challenge_id, attempt)
        if window is None:
            return
        self._start(challenge_id, job, attempt, resumed)
        if window:
            self._fail(challenge_id, job, attempt, window, final=True)
            return
        try:
            sent = self._ensure_request(spec, self.view(challenge_id))
            self._publish_submitted(challenge_id, job, spec, sent)
            self._bind(challenge_id, job.job_id, spec, sent.request, self.view(challenge_id).unbound())
        except Exception as exc:
            if self.view(challenge_id).current_request is None:
                self._fail(challenge_id, job, attempt, describe_error(exc))
            else:  # submitted: only bindings are missing; retried by BindParticipants
                self._binding_failed(challenge_id, job.job_id, exc)

    def _window(self, challenge_id: int, attempt: int) -> str | None:
        """'' when a request may go out now; the reason no request can be proved any more; None when
        the chain cannot tell yet (not readable, or the challenge is not Active: retried later)."""
        try:
            on_chain = self.chain.challenge(challenge_id)
            head_time = self.chain.chain_time()
        except Exception as exc:
            log.warning("%s: challenge %d: chain not readable (%s); retrying", GROUP, challenge_id, describe_error(exc))
            self.retry_later(challenge_id, self._backoff(max(1, attempt)))
            return None
        if not on_chain.active:
            log.info("%s: challenge %d is not active on chain (status %d, canceled %s): not requested",
                     GROUP, challenge_id, on_chain.status, on_chain.canceled)
            self.retry_later(challenge_id, self._backoff(max(1, attempt)))
            return None
        if head_time + self.settings.aivm_request_min_window_seconds >= on_chain.proof_deadline_ts:
            return (f"proof deadline {on_chain.proof_deadline_ts} passed or too close (chain time {head_time}, "
                    f"LC_AIVM_REQUEST_MIN_WINDOW_SECONDS {self.settings.aivm_request_min_window_seconds}): "
                    "no AIVM request can be proved any more")
        return ""

    def _start(self, challenge_id: int, job: js.JobState, attempt: int, resumed: bool) -> None:
        if not resumed:
            event_id = f"{job.job_id}:processing:{attempt}"
            self.publish(challenge_id, "JobProcessing", self._job_payload(job), event_id,
                         js.JobProcessing(event_id, job.job_id))

    def _fail(self, challenge_id: int, job: js.JobState, attempt: int, error: str, *, final: bool = False) -> None:
        event_id = f"{job.job_id}:failed:{attempt}"
        self.publish(challenge_id, "JobFailed", self._job_payload(job, error=error), event_id,
                     js.JobFailed(event_id, job.job_id, error))
        current = self.view(challenge_id).job or job
        if final or current.attempts_since_requeue >= self.settings.aivm_max_attempts:
            self._publish_dead(challenge_id, current, error)
        else:
            self.retry_later(challenge_id, self._backoff(current.attempts_since_requeue))

    def _ensure_request(self, spec: RequestSpec, view: ws.WorkerView) -> SentRequest:
        self.chain.wait_until_settled(self.settings.writer_receipt_timeout_seconds)
        retired = view.job.retired_tasks if view.job is not None else frozenset()
        found = self.chain.find_request(spec, self.settings.aivm_request_scan_from_block, exclude_tasks=retired)
        if found is not None:
            log.info("%s: challenge %d: request %d already on chain (tx %s); not sent again", GROUP,
                     spec.challenge_id, found.request.request_id, found.tx_hash)
            return found
        return self.chain.send_request(spec, self.settings.aivm_request_fee_wei)

    def _publish_submitted(self, challenge_id: int, job: js.JobState, spec: RequestSpec, sent: SentRequest) -> None:
        request, worker = sent.request, self.chain.address.lower()
        sent_id = f"{job.job_id}:request:{request.request_id}"
        self.publish(challenge_id, "AivmRequestSent", self._job_payload(
            job, request_id=str(request.request_id), task_id=request.task_id, tx_hash=sent.tx_hash, requester=worker,
            model=spec.model, prompt_hash="0x" + spec.prompt_hash.hex(), prompt_id="0x" + spec.prompt_id.hex(),
            model_digest="0x" + spec.model_digest.hex(), det_config_hash="0x" + spec.det_config_hash.hex(),
            fee_wei=str(0 if sent.recovered else self.settings.aivm_request_fee_wei), recovered=sent.recovered,
        ), sent_id, ws.RequestSent(sent_id, job.job_id, request))
        submitted_id = f"{job.job_id}:submitted:{request.task_id}"
        self.publish(challenge_id, "JobSubmitted", self._job_payload(
            job, task_id=request.task_id, request_id=str(request.request_id), worker_address=worker,
        ), submitted_id, js.JobSubmitted(submitted_id, job.job_id, request.task_id, request.request_id, worker))

    def _bind(self, challenge_id: int, job_id: str, spec: RequestSpec, request: RequestRef,
              subjects: tuple[str, ...]) -> None:
        """A binding per subject to `request` (recordBinding replaces a binding to an expired request);
        raises on the first failure (the rest are retried later)."""
        for subject in subjects:
            existing = self.chain.get_binding(challenge_id, subject)
            recovered = binding_is_current(existing, spec, request)
            tx_hash = None if recovered else self.chain.record_binding(spec, request, subject, BINDING_SCHEMA_VERSION)
            event_id = f"{job_id}:binding:{subject}:{request.task_id}"
            self.publish(challenge_id, "TaskBindingRecorded", {
                "job_id": job_id, "challenge_id": challenge_id, "subject": subject,
                "request_id": str(request.request_id), "task_id": request.task_id, "tx_hash": tx_hash,
                "recovered": recovered,
            }, event_id, ws.BindingRecorded(event_id, job_id, subject, request.task_id))

    def _bind_later_participants(self, challenge_id: int, job: js.JobState, subjects: tuple[str, ...]) -> None:
        view = self.view(challenge_id)
        request = view.current_request
        assert request is not None
        try:
            spec = request_spec(view.challenge, sorted(view.participants))
            self._bind(challenge_id, job.job_id, spec, request, subjects)
        except Exception as exc:
            self._binding_failed(challenge_id, job.job_id, exc, subjects[0])

    def _binding_failed(self, challenge_id: int, job_id: str, exc: Exception, subject: str | None = None) -> None:
        view = self.view(challenge_id)
        subject = subject or (view.unbound() or ("",))[0]
        request = view.current_request
        task_id = request.task_id if request else ""
        attempt = view.binding_failures(subject, task_id) + 1
        event_id = f"{job_id}:bindfail:{subject}:{task_id}:{attempt}"
        self.publish(challenge_id, "TaskBindingFailed", {
            "job_id": job_id, "challenge_id": challenge_id, "subject": subject, "task_id": task_id,
            "error": describe_error(exc), "attempt": attempt,
        }, event_id, ws.BindingRefused(event_id, job_id, subject, attempt, task_id))
        self.retry_later(challenge_id, self._backoff(attempt))

    def _check_request(self, challenge_id: int, job: js.JobState, request: RequestRef, chain_time: int) -> None:
        """Read the request; publish JobExpired when it can no longer finalize at `chain_time`
        (confirmed chain time: a step the chain shows at its head was made before its deadline)."""
        try:
            state = self.chain.request_state(request.request_id)
        except Exception as exc:
            log.warning("%s: challenge %d: request %d not readable (%s); retrying", GROUP, challenge_id,
                        request.request_id, describe_error(exc))
            self.retry_later(challenge_id, self._backoff(1))
            return
        reason = request_expiry(state, chain_time)
        if reason is None:
            self.watched[request.request_id] = Watched(state, chain_time)
            return
        self.watched.pop(request.request_id, None)
        deadline = state.next_deadline()
        error = f"AIVM request {request.request_id}: {reason}"
        event_id = f"{job.job_id}:expired:{request.request_id}"
        self.publish(challenge_id, "JobExpired", self._job_payload(
            job, request_id=str(request.request_id), task_id=request.task_id, request_status=state.status,
            deadline=deadline[1] if deadline else 0, chain_time=chain_time, error=error,
        ), event_id, js.JobExpired(event_id, job.job_id, request.task_id, error, request.request_id))
        current = self.view(challenge_id).job
        self.retry_later(challenge_id, self._backoff(current.expired_requests if current else 1))


def run_aivm_worker(settings: WriterSettings, stop: StopFlag) -> None:
    AivmWorker(settings, stop=stop).run()
