"""`lc run aivm-worker` (group lc-aivm-worker): queued AIVM jobs -> requestInferenceV2 and a
ChallengeTaskRegistry binding for every participant the job names (issue #4).

Per attempt: JobProcessing(n) is published first; then the worker waits until none of its
transactions is pending and looks on chain for this job's request (its wallet's InferenceRequestedV2
logs with the job's prompt id, model and hashes, still usable); only when there is none does it send
`requestInferenceV2`. AivmRequestSent (with the transaction hash) and JobSubmitted follow, then a
binding per participant (an existing binding to the same task is reported, not re-sent). A failed
attempt publishes JobFailed with the reason and is retried with exponential backoff; after
`LC_AIVM_MAX_ATTEMPTS` the job is dead (JobDead). A job whose challenge is canceled or finalized
(on chain, or in the consumed facts) is not requested. Participants added later get their bindings
when they arrive; a failed binding publishes TaskBindingFailed and is retried with backoff.
"""

from __future__ import annotations

import logging
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
    binding_is_current,
    request_spec,
    retry_delay,
)
from effects.settings import WriterSettings
from effects.stage import ViewStage
from eventlog.consumer import StopFlag
from eventlog.topics import CHAIN_EVENTS, CHALLENGES_REGISTERED, JOBS, STATE_AIVM_WORKER

log = logging.getLogger(__name__)

GROUP = "lc-aivm-worker"
WORKER_INPUTS = (*js.JOB_EVENT_TYPES, ws.RequestSent, ws.BindingRecorded, ws.BindingRefused, *CHALLENGE_FACT_TYPES)


def describe_error(exc: BaseException) -> str:
    """The reason published for a failure: the revert's error name, else the exception (no secrets)."""
    if isinstance(exc, TxReverted):
        return f"{exc.error} ({exc})"
    return f"{type(exc).__name__}: {exc}"[:2000]


class AivmWorker(ViewStage[ws.WorkerView]):
    group = GROUP
    topics = (JOBS, CHALLENGES_REGISTERED, CHAIN_EVENTS)
    changelog_topic = STATE_AIVM_WORKER
    view_type = ws.WorkerView

    def __init__(self, settings: WriterSettings, *, stop: StopFlag | None = None, chain: ChainWriter | None = None) -> None:
        super().__init__(settings, stop=stop)
        self.chain = chain or ChainWriter(
            settings.rpc_url, load_account(settings.private_key, "LC_PRIVATE_KEY"),
            read_deployments(settings.deployments_path), receipt_timeout=settings.writer_receipt_timeout_seconds,
            max_block_range=settings.chain_max_block_range,
        )

    # ---------------------------------------------------------------- folding

    def initial_view(self, challenge_id: int) -> ws.WorkerView:
        return ws.WorkerView.initial(challenge_id)

    def accepts(self, item: object) -> bool:
        return isinstance(item, WORKER_INPUTS)

    def apply(self, view: ws.WorkerView, item: object) -> ws.WorkerView:
        return ws.apply_input(view, item)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- acting

    def _backoff(self, attempt: int) -> float:
        return retry_delay(attempt, self.settings.writer_backoff_seconds, self.settings.writer_backoff_max_seconds)

    def reconcile(self, challenge_id: int, view: ws.WorkerView) -> None:
        step = ws.next_step(view, self.settings.aivm_max_attempts)
        job = view.job
        if isinstance(step, ws.Wait) or job is None:
            return
        if isinstance(step, ws.GiveUp):
            self._publish_dead(view, job, step.error)
        elif isinstance(step, ws.StartAttempt | ws.ResumeAttempt):
            self._attempt(view, job, step.attempt, resumed=isinstance(step, ws.ResumeAttempt))
        elif isinstance(step, ws.BindParticipants):
            self._bind_later_participants(view, job, step.subjects)

    def _job_payload(self, job: js.JobState, **fields: Any) -> dict[str, Any]:
        return {"job_id": job.job_id, "challenge_id": job.challenge_id, **fields}

    def _publish_dead(self, view: ws.WorkerView, job: js.JobState, error: str) -> None:
        event_id = f"{job.job_id}:dead"
        self.publish(view.challenge_id, "JobDead", self._job_payload(job, error=error), event_id,
                     js.JobDead(event_id, job.job_id, error))

    def _attempt(self, view: ws.WorkerView, job: js.JobState, attempt: int, *, resumed: bool) -> None:
        challenge_id = view.challenge_id
        try:
            spec = request_spec(view.challenge, sorted(view.participants))
        except InvalidJob as exc:
            self._start(challenge_id, job, attempt, resumed)
            self._fail(challenge_id, job, attempt, str(exc))
            return
        if not self._challenge_open(challenge_id, attempt):
            return
        self._start(challenge_id, job, attempt, resumed)
        try:
            sent = self._ensure_request(spec)
            self._publish_submitted(challenge_id, job, spec, sent)
            self._bind(challenge_id, job.job_id, spec, sent.request, self.views[challenge_id].unbound())
        except Exception as exc:
            if self.views[challenge_id].request is None:
                self._fail(challenge_id, job, attempt, describe_error(exc))
            else:  # submitted: only bindings are missing; retried by BindParticipants
                self._binding_failed(challenge_id, job.job_id, exc)

    def _challenge_open(self, challenge_id: int, attempt: int) -> bool:
        """Whether the challenge is still Active on chain (checked before an attempt starts; the chain
        facts on Kafka lag by the confirmation depth). Not readable (node down) counts as not yet."""
        try:
            on_chain = self.chain.challenge(challenge_id)
        except Exception as exc:
            log.warning("%s: challenge %d: chain not readable (%s); retrying", GROUP, challenge_id, describe_error(exc))
            self.retry_later(challenge_id, self._backoff(max(1, attempt)))
            return False
        if not on_chain.active:
            log.info("%s: challenge %d is not active on chain (status %d, canceled %s): not requested",
                     GROUP, challenge_id, on_chain.status, on_chain.canceled)
            self.retry_later(challenge_id, self._backoff(max(1, attempt)))
            return False
        return True

    def _start(self, challenge_id: int, job: js.JobState, attempt: int, resumed: bool) -> None:
        if not resumed:
            event_id = f"{job.job_id}:processing:{attempt}"
            self.publish(challenge_id, "JobProcessing", self._job_payload(job), event_id,
                         js.JobProcessing(event_id, job.job_id))

    def _fail(self, challenge_id: int, job: js.JobState, attempt: int, error: str) -> None:
        event_id = f"{job.job_id}:failed:{attempt}"
        self.publish(challenge_id, "JobFailed", self._job_payload(job, error=error), event_id,
                     js.JobFailed(event_id, job.job_id, error))
        if attempt >= self.settings.aivm_max_attempts:
            self._publish_dead(self.views[challenge_id], job, error)
        else:
            self.retry_later(challenge_id, self._backoff(attempt))

    def _ensure_request(self, spec: RequestSpec) -> SentRequest:
        self.chain.wait_until_settled(self.settings.writer_receipt_timeout_seconds)
        found = self.chain.find_request(spec, self.settings.aivm_request_scan_from_block)
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
        """A binding per subject; raises on the first failure (the rest are retried later)."""
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

    def _bind_later_participants(self, view: ws.WorkerView, job: js.JobState, subjects: tuple[str, ...]) -> None:
        assert view.request is not None
        try:
            spec = request_spec(view.challenge, sorted(view.participants))
            self._bind(view.challenge_id, job.job_id, spec, view.request, subjects)
        except Exception as exc:
            self._binding_failed(view.challenge_id, job.job_id, exc, subjects[0])

    def _binding_failed(self, challenge_id: int, job_id: str, exc: Exception, subject: str | None = None) -> None:
        view = self.views[challenge_id]
        subject = subject or (view.unbound() or ("",))[0]
        attempt = view.binding_failures(subject) + 1
        task_id = view.request.task_id if view.request else ""
        event_id = f"{job_id}:bindfail:{subject}:{task_id}:{attempt}"
        self.publish(challenge_id, "TaskBindingFailed", {
            "job_id": job_id, "challenge_id": challenge_id, "subject": subject, "task_id": task_id,
            "error": describe_error(exc), "attempt": attempt,
        }, event_id, ws.BindingRefused(event_id, job_id, subject, attempt))
        self.retry_later(challenge_id, self._backoff(attempt))


def run_aivm_worker(settings: WriterSettings, stop: StopFlag) -> None:
    AivmWorker(settings, stop=stop).run()
