"""`lc run collector`: the provider collector as a stage.

PostgreSQL sources of active challenges and linked accounts, the publish ledger read back from
lc.evidence, publication of evidence and refreshed tokens, dead letters for responses of the wrong
shape, and the poll loop around the pure decisions in `indexers/providers/collector.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import httpx
import psycopg

from eventlog.admin import watermarks
from eventlog.config import ConfigError
from eventlog.consumer import StopFlag
from eventlog.processing.restore import FROM_THE_START, READ_TO_END, reader
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde, UndecodableMessage
from eventlog.topics import EVIDENCE
from indexers.providers.accounts import publish_linked_account
from indexers.providers.clients import build_clients
from indexers.providers.clients.base import (
    LinkedAccount,
    OAuthTokens,
)
from indexers.providers.collector import (
    API_PROVIDERS,
    ActiveChallenge,
    ClientFactory,
    EvidenceToPublish,
    FetchFailure,
    LedgerKey,
    PublishLedger,
    TickOutcome,
    TokenUpdate,
    collect_once,
    is_collecting,
    plan_polls,
    providers_for_category,
)
from indexers.providers.crypto import TokenCipher, TokenDecryptionError, cipher_from_key
from indexers.providers.evidence_hash import js_stringify
from indexers.providers.settings import ProviderSettings

log = logging.getLogger(__name__)

CLOSED_STATUSES = ("finalized", "canceled", "cancelled", "rejected")
STAGE = "lc-collector"


class ChallengeSource(Protocol):
    def active_challenges(self, now: float) -> list[ActiveChallenge]: ...


class AccountSource(Protocol):
    def linked_accounts(self) -> Mapping[str, list[LinkedAccount]]: ...


class TokenSink(Protocol):
    def store(self, update: TokenUpdate) -> None: ...


def timeline_seconds(value: object) -> int | None:
    """A timeline value as Unix seconds: digits are seconds, other text an ISO-8601 time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


class PostgresChallengeSource:
    """Open challenges and their participants from the `challenges` / `participants` projections."""

    _SQL = """
        SELECT c.id, c.timeline, c.proof, array_remove(array_agg(p.subject), NULL)
        FROM challenges c LEFT JOIN participants p ON p.challenge_id = c.id
        WHERE lower(coalesce(c.status, '')) <> ALL(%s)
        GROUP BY c.id ORDER BY c.id"""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def active_challenges(self, now: float) -> list[ActiveChallenge]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(self._SQL, (list(CLOSED_STATUSES),)).fetchall()
        challenges = []
        for challenge_id, timeline, proof, subjects in rows:
            timeline = timeline if isinstance(timeline, dict) else {}
            category = proof.get("category") if isinstance(proof, dict) else None
            challenge = ActiveChallenge(
                int(challenge_id), tuple(subjects or ()), timeline_seconds(timeline.get("startsAt")),
                timeline_seconds(timeline.get("endsAt")), timeline_seconds(timeline.get("proofDeadline")),
                providers_for_category(category if isinstance(category, str) else None),
            )
            if is_collecting(challenge, now):
                challenges.append(challenge)
        return challenges


class PostgresAccountSource:
    """Linked accounts from the `linked_accounts` table (the projection of lc.accounts, columns as
    in the original), tokens decrypted. The first read checks that the key opens every stored token."""

    _SQL = "SELECT subject, provider, external_id, access_token, refresh_token, token_expires_at FROM linked_accounts"

    def __init__(self, dsn: str, cipher: TokenCipher) -> None:
        self.dsn = dsn
        self.cipher = cipher
        self._key_checked = False

    def linked_accounts(self) -> Mapping[str, list[LinkedAccount]]:
        try:
            with psycopg.connect(self.dsn) as conn:
                rows = conn.execute(self._SQL).fetchall()
        except psycopg.errors.UndefinedTable:
            log.warning("collector: no linked_accounts table yet; nothing to poll")
            return {}
        if not self._key_checked:
            self.cipher.verify_key(token for row in rows for token in (row[3], row[4]))
            self._key_checked = True
        accounts: dict[str, list[LinkedAccount]] = {}
        for subject, provider, external_id, access, refresh, expires in rows:
            try:
                access_token = self.cipher.decrypt_optional(access)
                refresh_token = self.cipher.decrypt_optional(refresh)
            except TokenDecryptionError as exc:
                log.error("collector: tokens of %s/%s unreadable (%s); account skipped", subject, provider, exc)
                continue
            tokens = None
            if access_token or refresh_token:
                tokens = OAuthTokens(access_token or "", refresh_token, int(expires.timestamp()) if expires else None)
            accounts.setdefault(subject.lower(), []).append(LinkedAccount(subject.lower(), provider, external_id, tokens))
        return accounts


def load_published_hashes(settings: ProviderSettings, serde: EventSerde | None = None, *, timeout: float = 30.0) -> dict[LedgerKey, str]:
    """The last evidence hash per (challenge, subject, API provider), read from lc.evidence from the
    beginning: the ledger is derived from what was published, so a restart never republishes."""
    from confluent_kafka import TopicPartition

    serde = serde or EventSerde(settings.schema_registry_url)
    topic = settings.topic(EVIDENCE)
    consumer = reader(settings, f"{STAGE}-ledger", READ_TO_END)
    published: dict[LedgerKey, str] = {}
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        remaining: dict[int, int] = {}
        for partition in partitions:
            low, high = watermarks(consumer, TopicPartition(topic, partition), timeout)
            if high > low:
                remaining[partition] = high
        consumer.assign([TopicPartition(topic, p, FROM_THE_START) for p in remaining])
        while remaining:
            message = consumer.poll(timeout)
            if message is None:
                raise TimeoutError(f"collector: lc.evidence not read to its end within {timeout}s")
            if message.error():
                continue
            if message.offset() + 1 >= remaining.get(message.partition(), 0):
                remaining.pop(message.partition(), None)
            try:
                event = serde.decode(message.value())
            except UndecodableMessage:
                continue  # the consumers of lc.evidence dead-letter it; it was never ours
            payload = event.payload
            if event.event_type == "EvidenceSubmitted" and payload["provider"] in API_PROVIDERS:
                key = (int(payload["challenge_id"]), str(payload["subject"]).lower(), str(payload["provider"]))
                published[key] = str(payload["evidence_hash"])
    finally:
        consumer.close()
    return published


def publish_evidence(producer: EventProducer, evidence: EvidenceToPublish) -> None:
    producer.publish(
        EVIDENCE, str(evidence.challenge_id), "EvidenceSubmitted",
        {
            "challenge_id": evidence.challenge_id, "subject": evidence.subject, "provider": evidence.provider,
            "records_json": js_stringify(evidence.records), "evidence_hash": evidence.evidence_hash, "raw_ref": None,
        },
        event_id=evidence.event_id,
    )


def dead_letter_shape_error(producer: EventProducer, failure: FetchFailure) -> None:
    """A provider answer that did not have the documented shape, with its bytes, to lc.dlq."""
    error = failure.shape_error
    assert error is not None
    producer.dead_letter(
        stage=STAGE, reason=f"{error.reason} ({error.source})", source_topic=f"provider:{failure.task.provider}",
        source_key=f"{failure.task.subject}:{failure.task.provider}", original=error.body,
    )


class KafkaTokenSink:
    """Refreshed tokens, encrypted, back to lc.accounts (keyed subject:provider, compacted) as a
    `LinkedAccount` event (indexers/providers/accounts.py)."""

    def __init__(self, producer: EventProducer, cipher: TokenCipher) -> None:
        self.producer = producer
        self.cipher = cipher

    def store(self, update: TokenUpdate) -> None:
        publish_linked_account(
            self.producer, self.cipher, update.subject, update.provider, update.external_id, update.tokens,
            id_prefix="account-tokens",
        )


def run_tick(
    *,
    now: float,
    challenges: ChallengeSource,
    accounts: AccountSource,
    clients: ClientFactory,
    ledger: PublishLedger,
    producer: EventProducer,
    token_sink: TokenSink,
    lookback_seconds: int,
) -> TickOutcome:
    """One poll: tokens are stored first (flushed), then evidence published and flushed, and only
    then marked in the ledger, so a crash can repeat a publication but never lose one."""
    tasks = plan_polls(challenges.active_challenges(now), accounts.linked_accounts(), now, lookback_seconds=lookback_seconds)
    outcome = collect_once(tasks, clients, ledger)
    for update in outcome.token_updates:
        token_sink.store(update)
    producer.flush()
    for evidence in outcome.evidence:
        publish_evidence(producer, evidence)
    for failure in outcome.failures:
        if failure.shape_error is not None:
            dead_letter_shape_error(producer, failure)
    producer.flush()
    for evidence in outcome.evidence:
        ledger.mark_published(evidence.ledger_key, evidence.evidence_hash)
    log.info(
        "collector: %d task(s), %d published, %d unchanged, %d failed, %d token refresh(es)",
        len(tasks), len(outcome.evidence), outcome.unchanged, len(outcome.failures), len(outcome.token_updates),
    )
    return outcome


def chain_clock(rpc_url: str, *, cache_seconds: float = 1.0) -> Callable[[], float]:
    """Now as the node's newest block time (asked at most once per `cache_seconds`)."""
    client = httpx.Client(timeout=10.0)
    last: list[float] = [0.0, -cache_seconds]  # chain time, monotonic time it was read

    def now() -> float:
        if time.monotonic() - last[1] >= cache_seconds:
            reply = client.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber",
                                               "params": ["latest", False]}).json()
            last[:] = [float(int(reply["result"]["timestamp"], 16)), time.monotonic()]
        return last[0]

    return now


def run_collector(
    settings: ProviderSettings,
    stop: StopFlag | None = None,
    *,
    challenges: ChallengeSource | None = None,
    accounts: AccountSource | None = None,
    clients: ClientFactory | None = None,
    token_sink: TokenSink | None = None,
    clock: Callable[[], float] = time.time,
    max_ticks: int | None = None,
) -> None:
    """The collector stage: poll every `collector_poll_seconds` until stopped. Fails at startup on a
    missing or wrong LC_OAUTH_ENCRYPTION_KEY and when refreshed tokens would have nowhere to go."""
    if settings.collector_clock not in ("wall", "chain"):
        raise ConfigError(f"LC_COLLECTOR_CLOCK={settings.collector_clock!r} is neither wall nor chain")
    if settings.collector_clock == "chain" and clock is time.time:
        clock = chain_clock(settings.rpc_url)
    cipher = cipher_from_key(settings.oauth_encryption_key, settings.oauth_previous_keys)
    stop = stop or StopFlag()
    producer = EventProducer(settings, STAGE)
    challenges = challenges or PostgresChallengeSource(settings.pg_dsn)
    accounts = accounts or PostgresAccountSource(settings.pg_dsn, cipher)
    token_sink = token_sink or KafkaTokenSink(producer, cipher)
    if clients is None:
        client_map = build_clients(settings, clock=clock)
        clients = client_map.get
    ledger = PublishLedger(load_published_hashes(settings, producer.serde))
    log.info("collector: started with %d published evidence hash(es)", len(ledger))
    ticks = 0
    try:
        while not stop.is_set():
            run_tick(
                now=clock(), challenges=challenges, accounts=accounts, clients=clients, ledger=ledger,
                producer=producer, token_sink=token_sink, lookback_seconds=settings.collector_lookback_days * 86400,
            )
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                break
            stop.wait(settings.collector_poll_seconds)
    finally:
        producer.close()
