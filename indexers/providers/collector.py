"""The provider collector's decisions: what to poll, over which window, and what to publish.

Pure (no Kafka, no PostgreSQL, no HTTP of its own): `plan_polls` turns active challenges and linked
accounts into poll tasks, `collect_once` runs them through injected clients and decides, per
(challenge, subject, provider), whether the evidence hash differs from the last one published.
The stage around it (sources, ledger read back from lc.evidence, publication, dead letters, the
poll loop) is `indexers/providers/collector_stage.py`.
Unlike the original (first provider in alphabetical order wins, subjects with any evidence
skipped), every linked API account of a participant is polled and each provider's evidence is its
own fact; evaluation merges them. Records that cannot have happened (domain.evidence_records: negative
counts or durations, time running backwards, non-finite numbers) are left out with a WARNING naming
them, and the evidence hash is taken over the records kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from domain.evidence_records import screen_records
from indexers.providers.clients.base import (
    FetchResult,
    LinkedAccount,
    OAuthTokens,
    ProviderClient,
    ProviderError,
    ProviderShapeError,
    TimeWindow,
)
from indexers.providers.evidence_hash import ZERO_HASH, evidence_hash
from indexers.providers.records import Record

log = logging.getLogger(__name__)

API_PROVIDERS = ("strava", "fitbit", "opendota", "riot", "faceit")
UPLOAD_ONLY_PROVIDERS = frozenset({"apple", "apple_health", "garmin", "googlefit"})
FITNESS_API_PROVIDERS = frozenset({"strava", "fitbit"})
GAMING_API_PROVIDERS = frozenset({"opendota", "riot", "faceit"})
DEFAULT_LOOKBACK_SECONDS = 90 * 86400

LedgerKey = tuple[int, str, str]  # (challenge id, lower-case subject, provider)
ClientFactory = Callable[[str], ProviderClient | None]


@dataclass(frozen=True)
class ActiveChallenge:
    challenge_id: int
    subjects: tuple[str, ...]
    starts_at: int | None = None  # Unix seconds; None = unknown
    ends_at: int | None = None
    proof_deadline: int | None = None
    # Providers whose evidence the challenge can use (by its category); None = every API provider.
    providers: frozenset[str] | None = None


@dataclass(frozen=True)
class PollTask:
    challenge_id: int
    subject: str
    provider: str
    account: LinkedAccount
    window: TimeWindow

    @property
    def ledger_key(self) -> LedgerKey:
        return (self.challenge_id, self.subject, self.provider)


@dataclass(frozen=True)
class EvidenceToPublish:
    challenge_id: int
    subject: str
    provider: str
    records: list[Record]
    evidence_hash: str

    @property
    def ledger_key(self) -> LedgerKey:
        return (self.challenge_id, self.subject, self.provider)

    @property
    def event_id(self) -> str:
        """Content-derived: publishing the same evidence again carries the same id."""
        return f"evidence:{self.challenge_id}:{self.subject}:{self.provider}:{self.evidence_hash}"


@dataclass(frozen=True)
class TokenUpdate:
    subject: str
    provider: str
    external_id: str | None
    tokens: OAuthTokens


@dataclass(frozen=True)
class FetchFailure:
    task: PollTask
    reason: str
    shape_error: ProviderShapeError | None = None  # set when the response goes to the dead-letter topic


@dataclass
class TickOutcome:
    evidence: list[EvidenceToPublish] = field(default_factory=list)
    token_updates: list[TokenUpdate] = field(default_factory=list)
    failures: list[FetchFailure] = field(default_factory=list)
    unchanged: int = 0


def providers_for_category(category: str | None) -> frozenset[str] | None:
    """API providers that can serve a challenge category (`fitness`, `gaming`, a game); None = all."""
    if category is None:
        return None
    category = category.lower()
    if category in ("fitness", "running", "cycling", "walking", "steps", "swimming", "hiking"):
        return FITNESS_API_PROVIDERS
    if category in ("dota", "dota2"):
        return frozenset({"opendota"})
    if category in ("lol", "league"):
        return frozenset({"riot"})
    if category in ("cs", "cs2"):
        return frozenset({"faceit"})
    if category == "gaming":
        return GAMING_API_PROVIDERS
    return None


def is_collecting(challenge: ActiveChallenge, now: float) -> bool:
    """Evidence is gathered from the start until the proof deadline."""
    started = challenge.starts_at is None or challenge.starts_at <= now
    open_for_proof = challenge.proof_deadline is None or now < challenge.proof_deadline
    return started and open_for_proof


def collection_window(challenge: ActiveChallenge, now: float, lookback_seconds: int = DEFAULT_LOOKBACK_SECONDS) -> TimeWindow | None:
    """[start, min(end, now)]; without a known start, the lookback before that end."""
    before = int(now) if challenge.ends_at is None else min(challenge.ends_at, int(now))
    after = challenge.starts_at if challenge.starts_at is not None else before - lookback_seconds
    return TimeWindow(after, before) if after <= before else None


def plan_polls(
    challenges: Iterable[ActiveChallenge],
    accounts_by_subject: Mapping[str, Sequence[LinkedAccount]],
    now: float,
    *,
    lookback_seconds: int = DEFAULT_LOOKBACK_SECONDS,
) -> list[PollTask]:
    """One task per (challenge, participant, linked API account), in a deterministic order."""
    accounts = {subject.lower(): list(linked) for subject, linked in accounts_by_subject.items()}
    tasks: list[PollTask] = []
    for challenge in challenges:
        if not is_collecting(challenge, now):
            continue
        window = collection_window(challenge, now, lookback_seconds)
        if window is None:
            continue
        for subject in sorted({s.lower() for s in challenge.subjects}):
            for account in accounts.get(subject, []):
                if account.provider in UPLOAD_ONLY_PROVIDERS or account.provider not in API_PROVIDERS:
                    continue
                if challenge.providers is not None and account.provider not in challenge.providers:
                    continue
                tasks.append(PollTask(challenge.challenge_id, subject, account.provider, account, window))
    tasks.sort(key=lambda t: (t.challenge_id, t.subject, API_PROVIDERS.index(t.provider)))
    return tasks


class PublishLedger:
    """The last evidence hash published per (challenge, subject, provider)."""

    def __init__(self, published: Mapping[LedgerKey, str] | None = None) -> None:
        self._last: dict[LedgerKey, str] = dict(published or {})

    def last(self, key: LedgerKey) -> str | None:
        return self._last.get(key)

    def should_publish(self, key: LedgerKey, evidence_hash: str) -> bool:
        """Publish when the hash differs from the last one; nothing (the zero hash) is not worth a
        first publication, but it is news after records were published (they were deleted)."""
        last = self._last.get(key)
        if last is None:
            return evidence_hash != ZERO_HASH
        return last != evidence_hash

    def mark_published(self, key: LedgerKey, evidence_hash: str) -> None:
        self._last[key] = evidence_hash

    def __len__(self) -> int:
        return len(self._last)


def collect_once(tasks: Sequence[PollTask], clients: ClientFactory, ledger: PublishLedger) -> TickOutcome:
    """Run every task; one failing never stops the others. The ledger is only read: the caller
    marks evidence published once the broker has it. Tokens refreshed by one task are used by the
    account's later tasks (a Fitbit refresh token works once)."""
    outcome = TickOutcome()
    current_tokens: dict[tuple[str, str], OAuthTokens] = {}
    fetched: dict[tuple[str, str, TimeWindow], FetchResult] = {}
    for task in tasks:
        account_key = (task.subject, task.provider)
        account = task.account
        if account_key in current_tokens:
            account = replace(account, tokens=current_tokens[account_key])
        result = fetched.get((task.subject, task.provider, task.window))
        if result is None:
            client = clients(task.provider)
            if client is None:
                outcome.failures.append(FetchFailure(task, f"no client for provider {task.provider}"))
                continue
            try:
                result = client.fetch(account, task.window)
            except ProviderError as exc:
                log.warning("collector: %s for %s in challenge %s failed: %s", task.provider, task.subject, task.challenge_id, exc)
                _keep_tokens(outcome, current_tokens, task, exc.refreshed_tokens)
                shape = exc if isinstance(exc, ProviderShapeError) else None
                outcome.failures.append(FetchFailure(task, str(exc), shape))
                continue
            except Exception as exc:  # a bug for one account must not stop the others
                log.exception("collector: %s for %s crashed", task.provider, task.subject)
                outcome.failures.append(FetchFailure(task, f"{type(exc).__name__}: {exc}"))
                continue
            result = _possible_only(task, result)
            fetched[(task.subject, task.provider, task.window)] = result
            _keep_tokens(outcome, current_tokens, task, result.refreshed_tokens)
        if ledger.should_publish(task.ledger_key, result.evidence_hash):
            outcome.evidence.append(
                EvidenceToPublish(task.challenge_id, task.subject, task.provider, result.records, result.evidence_hash)
            )
        else:
            outcome.unchanged += 1
    return outcome


def _possible_only(task: PollTask, result: FetchResult) -> FetchResult:
    """The result without the records that cannot have happened, hashed again when some were left out."""
    screened = screen_records(result.records)
    if not screened.dropped:
        return result
    log.warning("collector: %s for %s in challenge %s: %d impossible record(s) left out: %s", task.provider,
                task.subject, task.challenge_id, len(screened.dropped), "; ".join(map(str, screened.dropped[:5])))
    return replace(result, records=screened.kept, evidence_hash=evidence_hash(result.provider, screened.kept))


def _keep_tokens(
    outcome: TickOutcome, current: dict[tuple[str, str], OAuthTokens], task: PollTask, tokens: OAuthTokens | None
) -> None:
    if tokens is None:
        return
    current[(task.subject, task.provider)] = tokens
    outcome.token_updates.append(TokenUpdate(task.subject, task.provider, task.account.external_id, tokens))
