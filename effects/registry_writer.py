"""`lc run registry-writer` (group lc-registry-writer): every registered challenge gets its metadata URI
`<LC_METADATA_BASE_URL>/api/challenges/meta/<id>` in the MetadataRegistry, keyed by the ChallengePay
address (spec/chain.md §7), and the outcome is published as RegistryWriteRecorded on
lc.challenges.registered (the `registry_status` of the challenge):

- not configured (no LC_REGISTRY_PRIVATE_KEY or no LC_METADATA_BASE_URL) -> `skipped`, once;
- a URI already on chain -> `success` without a transaction (write-once; AlreadySet is success), with
  our own earlier transaction when this wallet set it (a run that died before publishing);
- ownerSet mined -> `success` with its transaction hash;
- anything else -> `failed` with the message, retried with backoff; after LC_AIVM_MAX_ATTEMPTS the
  failure is final (unlike the original backfill, a `skipped` challenge is tried again once the writer
  is configured, since `skipped` is published only by an unconfigured writer).

An operator re-arms a write that gave up with `lc registry retry` (RegistryRetryRequested on
lc.challenges.registered): the writer tries again at once, with a fresh budget of attempts counted
from the retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from chain.deployments import read_deployments
from domain.challenge_state import ChallengeRegistered
from effects.aivm_worker import describe_error
from effects.chain import ChainWriter, TxReverted, load_account
from effects.inputs import RegistryRetry, RegistryWritten
from effects.request_plan import retry_delay
from effects.settings import WriterSettings
from effects.stage import ViewStage
from eventlog.consumer import StopFlag
from eventlog.topics import CHALLENGES_REGISTERED, STATE_REGISTRY_WRITER

log = logging.getLogger(__name__)

GROUP = "lc-registry-writer"
SUCCESS, FAILED, SKIPPED = "success", "failed", "skipped"
NOT_CONFIGURED = "writer not configured"
MAX_ERROR_CHARS = 500


def metadata_uri(base_url: str, challenge_id: int) -> str:
    return f"{base_url.rstrip('/')}/api/challenges/meta/{challenge_id}"


@dataclass(frozen=True)
class RegistryView:
    challenge_id: int
    registered: bool = False
    status: str | None = None
    attempts: int = 0
    final: bool = False
    attempt_base: int = 0  # the attempt an operator's retry re-armed after: the budget counts from here


def apply_registry_input(view: RegistryView, item: ChallengeRegistered | RegistryWritten | RegistryRetry) -> RegistryView:
    """Fold one input. The writer folds its own outcomes when it publishes them and again when they
    come back from the topic, so an outcome older than the newest seen changes nothing."""
    if isinstance(item, ChallengeRegistered):
        return replace(view, registered=True)
    if isinstance(item, RegistryRetry):
        if view.status == SUCCESS:
            return view  # nothing left to retry
        return replace(view, final=False, attempt_base=max(view.attempt_base, view.attempts, item.after_attempt))
    if item.attempt < view.attempts:
        return view
    return replace(view, status=item.status, attempts=item.attempt, final=item.final)


def needs_write(view: RegistryView, configured: bool) -> bool:
    """Whether to (try to) write now: registered, not yet a success, not given up; an unconfigured
    writer records `skipped` once."""
    if not view.registered or view.challenge_id <= 0 or view.status == SUCCESS or view.final:
        return False
    return configured or view.status != SKIPPED


class RegistryWriter(ViewStage[RegistryView]):
    group = GROUP
    topics = (CHALLENGES_REGISTERED,)
    changelog_topic = STATE_REGISTRY_WRITER
    view_type = RegistryView

    def __init__(self, settings: WriterSettings, *, stop: StopFlag | None = None, chain: ChainWriter | None = None) -> None:
        super().__init__(settings, stop=stop)
        self.configured = bool(settings.registry_private_key and settings.metadata_base_url)
        self.chain = chain
        if self.chain is None and self.configured:
            self.chain = ChainWriter(
                settings.rpc_url, load_account(settings.registry_private_key, "LC_REGISTRY_PRIVATE_KEY"),
                read_deployments(settings.deployments_path), receipt_timeout=settings.writer_receipt_timeout_seconds,
                replace_after=settings.writer_replace_after_seconds,
            )

    def initial_view(self, challenge_id: int) -> RegistryView:
        return RegistryView(challenge_id)

    def accepts(self, item: object) -> bool:
        return isinstance(item, ChallengeRegistered | RegistryWritten | RegistryRetry)

    def fold(self, partition: int, challenge_id: int, item: object) -> None:
        super().fold(partition, challenge_id, item)
        if isinstance(item, RegistryRetry):  # an operator: try now, whatever the backoff said
            self.retry_now(challenge_id)

    def apply(self, view: RegistryView, item: object) -> RegistryView:
        return apply_registry_input(view, item)  # type: ignore[arg-type]

    def reconcile(self, challenge_id: int, view: RegistryView) -> None:
        if not needs_write(view, self.configured):
            return
        attempt = view.attempts + 1
        uri = metadata_uri(self.settings.metadata_base_url, challenge_id)
        if self.chain is None:
            self._record(view, SKIPPED, uri, attempt, error=NOT_CONFIGURED, final=False)
            return
        try:
            on_chain = self.chain.registry_uri(challenge_id)
            if on_chain:
                ours = self.chain.registry_set_by_us(challenge_id, self.settings.aivm_request_scan_from_block)
                self._record(view, SUCCESS, uri, attempt, tx_hash=ours, chain_uri=on_chain)
                return
            self._record(view, SUCCESS, uri, attempt, tx_hash=self.chain.set_registry_uri(challenge_id, uri))
        except TxReverted as exc:
            if exc.error == "AlreadySet":
                self._record(view, SUCCESS, uri, attempt)
            else:
                self._failed(view, uri, attempt, describe_error(exc))
        except Exception as exc:
            self._failed(view, uri, attempt, describe_error(exc))

    def _failed(self, view: RegistryView, uri: str, attempt: int, error: str) -> None:
        final = attempt - view.attempt_base >= self.settings.aivm_max_attempts
        self._record(view, FAILED, uri, attempt, error=error, final=final)
        if not final:
            self.retry_later(view.challenge_id,
                             retry_delay(attempt, self.settings.writer_backoff_seconds,
                                         self.settings.writer_backoff_max_seconds))

    def _record(self, view: RegistryView, status: str, uri: str, attempt: int, *, tx_hash: str | None = None,
                error: str | None = None, final: bool = True, chain_uri: str | None = None) -> None:
        event_id = f"registry:{view.challenge_id}:{status}:{attempt}"
        self.publish(view.challenge_id, "RegistryWriteRecorded", {
            "challenge_id": view.challenge_id, "status": status, "uri": uri, "tx_hash": tx_hash,
            "error": error[:MAX_ERROR_CHARS] if error else None, "attempt": attempt,
            "final": final and status != SKIPPED, "chain_uri": chain_uri,
        }, event_id, RegistryWritten(event_id, status, attempt, final and status != SKIPPED),
            topic=CHALLENGES_REGISTERED)


def run_registry_writer(settings: WriterSettings, stop: StopFlag) -> None:
    RegistryWriter(settings, stop=stop).run()
