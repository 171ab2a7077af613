"""`lc run finalizer` (group lc-finalizer): the finalization bridge. After the job's AIVM task is
finalized, `submitProofFor` for every participant the job names (§4.4 proof built from the
participant's on-chain binding), then `finalize(id)` once chain time (lc.chain.blocks) allows it.

Before each transaction the chain is asked what it already has: a participant who is already a winner
is reported (ProofSubmitted, recovered, with the WinnerMarked transaction) instead of proved again; a
challenge already finalized (by anyone) is reported (FinalizeSent, already_finalized); a proof the
verifier would reject (eth_call) is not sent. Every outcome is published to lc.jobs: ProofSubmitted /
ProofFailed (final when the revert means it can never succeed), FinalizeSent / FinalizeFailed
(BeforeDeadline: tried again when chain time moves past that attempt's chain time, never on the wall
clock). Uses LC_FINALIZER_PRIVATE_KEY (a ChallengePay dispatcher), else LC_PRIVATE_KEY.
"""

from __future__ import annotations

import logging
from typing import Any

from chain.deployments import read_deployments
from domain import job_state as js
from domain.challenge_state import CHALLENGE_FACT_TYPES
from effects import finalizer_state as fs
from effects.aivm_worker import describe_error
from effects.chain import ChainWriter, ChallengeOnChain, TxReverted, load_account
from effects.inputs import (
    BindingFact,
    FinalizeDone,
    FinalizeRefused,
    InferenceFinalizedFact,
    ProofDone,
    ProofRefused,
    WinnerFact,
)
from effects.request_plan import retry_delay
from effects.settings import WriterSettings
from effects.stage import ViewStage
from effects.worker_state import BindingRecorded
from eventlog.consumer import StopFlag
from eventlog.topics import CHAIN_EVENTS, CHALLENGES_REGISTERED, JOBS, STATE_FINALIZER

log = logging.getLogger(__name__)

GROUP = "lc-finalizer"
FINALIZER_INPUTS = (
    js.JobQueued, js.ParticipantsAdded, js.JobSubmitted, js.JobCanceled, js.JobExpired, BindingRecorded, BindingFact,
    InferenceFinalizedFact, WinnerFact, ProofDone, ProofRefused, FinalizeDone, FinalizeRefused, *CHALLENGE_FACT_TYPES,
)


class Finalizer(ViewStage[fs.FinalizerView]):
    group = GROUP
    topics = (JOBS, CHALLENGES_REGISTERED, CHAIN_EVENTS)
    changelog_topic = STATE_FINALIZER
    view_type = fs.FinalizerView
    uses_chain_time = True

    def __init__(self, settings: WriterSettings, *, stop: StopFlag | None = None, chain: ChainWriter | None = None) -> None:
        super().__init__(settings, stop=stop)
        key = settings.finalizer_private_key or settings.private_key
        self.chain = chain or ChainWriter(
            settings.rpc_url, load_account(key, "LC_FINALIZER_PRIVATE_KEY (or LC_PRIVATE_KEY)"),
            read_deployments(settings.deployments_path), receipt_timeout=settings.writer_receipt_timeout_seconds,
            max_block_range=settings.chain_max_block_range, replace_after=settings.writer_replace_after_seconds,
        )
        self.windows: dict[int, tuple[int | None, ChallengeOnChain]] = {}  # id -> (deadline fact, chain view)

    def initial_view(self, challenge_id: int) -> fs.FinalizerView:
        return fs.FinalizerView.initial(challenge_id)

    def accepts(self, item: object) -> bool:
        return isinstance(item, FINALIZER_INPUTS)

    def apply(self, view: fs.FinalizerView, item: object) -> fs.FinalizerView:
        return fs.apply_input(view, item)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- chain windows

    def _finalize_opens_at(self, view: fs.FinalizerView) -> int | None:
        """max(end, proof deadline) from the chain, read again after a VerificationConfigUpdated."""
        deadline_fact = view.challenge.chain_proof_deadline
        cached = self.windows.get(view.challenge_id)
        if cached is None or cached[0] != deadline_fact:
            cached = (deadline_fact, self.chain.challenge(view.challenge_id))
            self.windows[view.challenge_id] = cached
        return cached[1].finalize_opens_at

    # ---------------------------------------------------------------- acting

    def reconcile(self, challenge_id: int, view: fs.FinalizerView) -> None:
        opens_at = None
        if fs.needs_chain_window(view):
            try:
                opens_at = self._finalize_opens_at(view)
            except Exception as exc:
                log.warning("%s: challenge %d: chain not readable (%s)", GROUP, challenge_id, describe_error(exc))
                self.retry_later(challenge_id, self._backoff(1))
                return
        actions = fs.next_actions(view, self.chain_time, opens_at)
        if any(not isinstance(a, fs.ReportFinalized) for a in actions):
            try:  # a transaction of an earlier run still pending would make the chain's answers stale
                self.chain.wait_until_settled(self.settings.writer_receipt_timeout_seconds)
            except Exception as exc:
                log.warning("%s: challenge %d: %s; retrying", GROUP, challenge_id, describe_error(exc))
                self.retry_later(challenge_id, self._backoff(1))
                return
        for action in actions:
            current = self.views[challenge_id]
            if isinstance(action, fs.SubmitProof):
                if not self._submit_proof(current, action):
                    return
            elif isinstance(action, fs.ReportFinalized):
                self._report_finalized(current, action.outcome)
            else:
                self._finalize(current, action)

    def _backoff(self, attempt: int) -> float:
        return retry_delay(attempt, self.settings.writer_backoff_seconds, self.settings.writer_backoff_max_seconds)

    def _payload(self, view: fs.FinalizerView, **fields: Any) -> dict[str, Any]:
        return {"job_id": view.job_id, "challenge_id": view.challenge_id, **fields}

    def _submit_proof(self, view: fs.FinalizerView, action: fs.SubmitProof) -> bool:
        """One participant's proof; False when the rest of this pass should wait (retry later)."""
        cid, who = view.challenge_id, action.participant
        binding = None
        try:
            if self.chain.is_winner(cid, who):
                self._proof_done(view, action, None, None, ok=True, recovered=True)
                return True
            binding = self.chain.get_binding(cid, who)
            if not binding.exists:
                return self._proof_refused(view, action, "no task binding on chain", final=False)
            proof = fs.build_proof(binding, cid, who, action.evaluated_at)
            if not self.chain.verify(cid, who, proof):
                return self._proof_refused(view, action, "the verifier rejects the proof (eth_call verify = false)",
                                           final=False)
            tx_hash, ok = self.chain.submit_proof(cid, who, proof)
            self._proof_done(view, action, binding.request_id, tx_hash, ok=ok, recovered=False)
            return True
        except TxReverted as exc:
            if exc.error == "AlreadyWinner":
                self._proof_done(view, action, None, None, ok=True, recovered=True)
                return True
            return self._proof_refused(view, action, describe_error(exc), final=exc.error in fs.FINAL_PROOF_ERRORS)
        except Exception as exc:
            return self._proof_refused(view, action, describe_error(exc), final=False)

    def _proof_done(self, view: fs.FinalizerView, action: fs.SubmitProof, request_id: int | None,
                    tx_hash: str | None, *, ok: bool, recovered: bool) -> None:
        if recovered:
            tx_hash = self.chain.winner_tx(view.challenge_id, action.participant,
                                           self.settings.aivm_request_scan_from_block)
        if request_id is None:
            request_id = self.chain.get_binding(view.challenge_id, action.participant).request_id
        event_id = f"{view.job_id}:proof:{action.participant}:{action.task_id}"
        self.publish(view.challenge_id, "ProofSubmitted", self._payload(
            view, participant=action.participant, request_id=str(request_id), task_id=action.task_id,
            tx_hash=tx_hash, ok=ok, recovered=recovered,
        ), event_id, ProofDone(event_id, action.participant, ok))

    def _proof_refused(self, view: fs.FinalizerView, action: fs.SubmitProof, error: str, *, final: bool) -> bool:
        final = final or action.last_chance or action.attempt >= self.settings.aivm_max_attempts
        event_id = f"{view.job_id}:prooffail:{action.participant}:{action.task_id}:{action.attempt}"
        self.publish(view.challenge_id, "ProofFailed", self._payload(
            view, participant=action.participant, error=error, attempt=action.attempt, final=final,
        ), event_id, ProofRefused(event_id, action.participant, error, action.attempt, final))
        if not final:
            self.retry_later(view.challenge_id, self._backoff(action.attempt))
        return final

    def _finalize(self, view: fs.FinalizerView, action: fs.Finalize) -> None:
        cid = view.challenge_id
        try:
            on_chain = self.chain.challenge(cid)
            if on_chain.finalized:
                self._report_finalized(view, on_chain.outcome)
                return
            if on_chain.canceled:
                log.info("%s: challenge %d is canceled on chain; nothing to finalize", GROUP, cid)
                self.retry_later(cid, self.settings.writer_backoff_max_seconds)
                return
            tx_hash, outcome = self.chain.finalize(cid)
            self._finalize_done(view, tx_hash, outcome, already=False)
        except TxReverted as exc:
            if exc.error == "AlreadyFinalized":
                self._report_finalized(view, self.chain.challenge(cid).outcome)
                return
            self._finalize_refused(view, action, describe_error(exc))
        except Exception as exc:
            self._finalize_refused(view, action, describe_error(exc))

    def _report_finalized(self, view: fs.FinalizerView, outcome: int) -> None:
        """The challenge is finalized on chain: by our own earlier transaction (a run that died before
        publishing it) or by someone else."""
        try:
            found = self.chain.finalized_by(view.challenge_id, self.settings.aivm_request_scan_from_block)
        except Exception as exc:
            log.warning("%s: challenge %d: finalize transaction not found (%s)", GROUP, view.challenge_id,
                        describe_error(exc))
            found = None
        if found is not None and found[1] == self.chain.address.lower():
            self._finalize_done(view, found[0], outcome, already=False)
        else:
            self._finalize_done(view, None, outcome, already=True)

    def _finalize_done(self, view: fs.FinalizerView, tx_hash: str | None, outcome: int, *, already: bool) -> None:
        event_id = f"{view.job_id}:finalize"
        self.publish(view.challenge_id, "FinalizeSent", self._payload(
            view, tx_hash=tx_hash, outcome=outcome, already_finalized=already,
        ), event_id, FinalizeDone(event_id, outcome))

    def _finalize_refused(self, view: fs.FinalizerView, action: fs.Finalize, error: str) -> None:
        event_id = f"{view.job_id}:finalizefail:{action.attempt}"
        self.publish(view.challenge_id, "FinalizeFailed", self._payload(
            view, error=error, chain_time=action.chain_time, attempt=action.attempt,
        ), event_id, FinalizeRefused(event_id, error, action.chain_time, action.attempt))
        self.retry_later(view.challenge_id, self._backoff(action.attempt))


def run_finalizer(settings: WriterSettings, stop: StopFlag) -> None:
    Finalizer(settings, stop=stop).run()
