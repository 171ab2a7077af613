"""run_collector on Kafka and PostgreSQL: evidence published once per new hash (also across a
restart), shape errors on lc.dlq with the original bytes, refreshed tokens handed to the sink,
the PostgreSQL sources, and the startup errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from kits.providers import FakeApi, RecordedSleep, fixture_bytes, fixture_json, provider_http, reply

from cli.settings import Settings
from eventlog.serde import Event, EventSerde
from eventlog.topics import DLQ, EVIDENCE
from indexers.providers.clients import LinkedAccount, OAuthTokens, StravaClient
from indexers.providers.collector import ActiveChallenge, TokenUpdate
from indexers.providers.collector_stage import (
    PostgresAccountSource,
    PostgresChallengeSource,
    run_collector,
)
from indexers.providers.crypto import EncryptionKeyError, TokenCipher
from indexers.providers.evidence_hash import evidence_hash, js_stringify
from indexers.providers.records import strava_records

KEY = "11" * 32
NOW = 1_760_000_000
ALICE = "0xaaaa000000000000000000000000000000000001"
ACTIVITIES = "/api/v3/athlete/activities"


def read_events(settings: Settings, topic: str) -> list[tuple[str, Event, bytes]]:
    physical = settings.topic(topic)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False})
    serde = EventSerde(settings.schema_registry_url)
    out: list[tuple[str, Event, bytes]] = []
    try:
        partitions = consumer.list_topics(physical, timeout=10).topics[physical].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)[1] for p in partitions}
        remaining = {p: high for p, high in ends.items() if high > 0}
        consumer.assign([TopicPartition(physical, p, OFFSET_BEGINNING) for p in remaining])
        while remaining:
            message = consumer.poll(10)
            assert message is not None, "topic not read to its end"
            if message.error():
                continue
            if message.offset() + 1 >= remaining.get(message.partition(), 0):
                remaining.pop(message.partition(), None)
            out.append(((message.key() or b"").decode(), serde.decode(message.value()), message.value()))
    finally:
        consumer.close()
    return out


@dataclass
class StaticChallenges:
    challenges: list[ActiveChallenge]

    def active_challenges(self, now: float) -> list[ActiveChallenge]:
        return self.challenges


@dataclass
class StaticAccounts:
    accounts: dict[str, list[LinkedAccount]]

    def linked_accounts(self) -> dict[str, list[LinkedAccount]]:
        return self.accounts


@dataclass
class MemoryTokenSink:
    updates: list[TokenUpdate] = field(default_factory=list)

    def store(self, update: TokenUpdate) -> None:
        self.updates.append(update)


def strava_for(api: FakeApi) -> Any:
    client = StravaClient(provider_http("strava", api, RecordedSleep(), NOW), base_url="https://s.test",
                          client_id="c", client_secret="s", clock=lambda: NOW)
    return {"strava": client}.get


def run_once(settings: Settings, api: FakeApi, tokens: OAuthTokens, sink: MemoryTokenSink) -> None:
    run_collector(
        settings.replace(oauth_encryption_key=KEY),
        challenges=StaticChallenges([ActiveChallenge(42, (ALICE.upper().replace("0X", "0x"),), 1541088000, 1543683600, NOW + 10)]),
        accounts=StaticAccounts({ALICE: [LinkedAccount(ALICE, "strava", "1", tokens), LinkedAccount(ALICE, "garmin")]}),
        clients=strava_for(api), token_sink=sink, clock=lambda: NOW, max_ticks=1,
    )


def test_publishes_once_per_new_hash_across_restarts(settings: Settings, shared_fixtures: Path) -> None:
    raw = fixture_json(shared_fixtures, "strava/athlete_activities_after_before_2018-11.json")
    api = FakeApi().on("GET", ACTIVITIES, reply(200, raw))
    sink = MemoryTokenSink()
    tokens = OAuthTokens("a", "r", NOW + 9999)

    run_once(settings, api, tokens, sink)
    run_once(settings, api, tokens, sink)  # a restart: the ledger comes back from lc.evidence
    events = read_events(settings, EVIDENCE)
    assert len(events) == 1
    key, event, _raw = events[0]
    expected = strava_records(raw)
    assert key == "42" and event.event_type == "EvidenceSubmitted" and event.producer == "lc-collector"
    assert event.payload == {
        "challenge_id": 42, "subject": ALICE, "provider": "strava", "records_json": js_stringify(expected),
        "evidence_hash": evidence_hash("strava", expected), "raw_ref": None,
    }
    assert event.event_id == f"evidence:42:{ALICE}:strava:{evidence_hash('strava', expected)}"

    raw[0]["distance"] += 1000
    api.on("GET", ACTIVITIES, reply(200, raw))
    run_once(settings, api, tokens, sink)
    run_once(settings, api, tokens, sink)
    hashes = [e.payload["evidence_hash"] for _k, e, _r in read_events(settings, EVIDENCE)]
    assert hashes == [evidence_hash("strava", expected), evidence_hash("strava", strava_records(raw))]
    assert sink.updates == []


def test_shape_error_goes_to_the_dlq_and_refreshed_tokens_to_the_sink(settings: Settings, shared_fixtures: Path) -> None:
    body = fixture_bytes(shared_fixtures, "strava/error_401_authorization_error.json")
    api = FakeApi().on("POST", "/oauth/token", reply(200, fixture_bytes(shared_fixtures, "strava/oauth_token_refresh_response.json")))
    api.on("GET", ACTIVITIES, reply(200, body))
    sink = MemoryTokenSink()
    run_once(settings, api, OAuthTokens("old", "old-refresh", NOW - 1), sink)

    assert read_events(settings, EVIDENCE) == []
    (key, dead, _raw), = read_events(settings, DLQ)
    assert key == "provider:strava" and dead.payload["original"] == body
    assert dead.payload["stage"] == "lc-collector" and "expected a JSON array" in dead.payload["reason"]
    assert dead.payload["source_key"] == f"{ALICE}:strava"
    assert [(u.subject, u.provider, u.tokens) for u in sink.updates] == [
        (ALICE, "strava", OAuthTokens("new-access-token", "new-refresh-token", 1542940199))]


def test_missing_or_wrong_key_stops_the_collector_at_startup(settings: Settings) -> None:
    with pytest.raises(EncryptionKeyError, match="LC_OAUTH_ENCRYPTION_KEY is not set"):
        run_collector(settings.replace(oauth_encryption_key=""), max_ticks=1)
    with pytest.raises(EncryptionKeyError, match="not hex"):
        run_collector(settings.replace(oauth_encryption_key="xyz"), max_ticks=1)


def test_postgres_sources(settings: Settings) -> None:
    cipher = TokenCipher.from_hex(KEY)
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute("""INSERT INTO challenges (id, status, timeline, proof) VALUES
            (1, 'Active', '{"startsAt": "1541088000", "endsAt": "2018-12-01T13:40:00Z", "proofDeadline": 1999999999}', '{"category": "fitness"}'),
            (2, 'Finalized', '{"startsAt": 1}', '{}'),
            (3, 'Active', '{"startsAt": "1999999990"}', '{}')""")
        conn.execute(f"INSERT INTO participants (challenge_id, subject) VALUES (1, '{ALICE.upper().replace('0X', '0x')}'), (2, '{ALICE}')")
        active = PostgresChallengeSource(settings.pg_dsn).active_challenges(NOW)
        assert active == [ActiveChallenge(1, (ALICE.upper().replace("0X", "0x"),), 1541088000, 1543671600, 1999999999,
                                          frozenset({"strava", "fitbit"}))]

        # linked_accounts (migration 050) as the original had it: without the checks that refuse plain-text
        # tokens, so a legacy plain-text row can be read back
        assert PostgresAccountSource(settings.pg_dsn, cipher).linked_accounts() == {}
        conn.execute("ALTER TABLE linked_accounts DROP CONSTRAINT linked_accounts_access_token_encrypted")
        conn.execute(
            "INSERT INTO linked_accounts (subject, provider, external_id, access_token, refresh_token, token_expires_at) VALUES"
            " (%s, 'strava', '1', %s, %s, to_timestamp(1760003600)), (%s, 'opendota', '76561198083722517', NULL, NULL, NULL),"
            " (%s, 'fitbit', 'U', 'legacy-plain', NULL, NULL)",
            (ALICE.upper().replace("0X", "0x"), cipher.encrypt("acc"), cipher.encrypt("ref"), ALICE, ALICE),
        )
    accounts = PostgresAccountSource(settings.pg_dsn, cipher).linked_accounts()
    assert accounts == {ALICE: [
        LinkedAccount(ALICE, "strava", "1", OAuthTokens("acc", "ref", 1760003600)),
        LinkedAccount(ALICE, "opendota", "76561198083722517", None),
        LinkedAccount(ALICE, "fitbit", "U", OAuthTokens("legacy-plain", None, None)),
    ]}
    with pytest.raises(EncryptionKeyError, match="does not open the stored OAuth tokens"):
        PostgresAccountSource(settings.pg_dsn, TokenCipher.from_hex("22" * 32)).linked_accounts()
