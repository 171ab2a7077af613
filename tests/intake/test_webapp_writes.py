"""Every write the web app used to make into the pipeline's tables, through its new endpoint, on the real
broker and database: each ends as the expected row, written by the projector from a published fact.

JSON evidence (wallet and service), a challenge registration, an OAuth link with tokens, a manual link,
an unlink (row gone; after the broker compacts lc.accounts, the token is gone from the topic), an
identity binding and its removal. Unauthenticated calls publish nothing; refused ones reach lc.dlq.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from kits.accounts import KEY_A, RunningProjector, raw_messages, table_rows, table_text
from kits.background import wait_for
from starlette.testclient import TestClient

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import ACCOUNTS, CHALLENGES_REGISTERED, DLQ, EVIDENCE
from indexers.providers.accounts import publish_identity_binding
from indexers.providers.crypto import TokenCipher
from indexers.providers.evidence_hash import evidence_hash
from indexers.providers.identity import IdentityBinding
from intake.accounts.api import STAGE as ACCOUNTS_STAGE
from intake.accounts.api import AccountsPublisher
from intake.accounts.api import build_app as accounts_app
from intake.auth import ServiceCredential, SignatureVerifier, service_headers, sign_headers
from intake.evidence.api import STAGE as EVIDENCE_STAGE
from intake.evidence.api import build_app as evidence_app
from intake.evidence.api import dead_letter_with
from intake.registrations.api import build_app as registrations_app
from intake.registrations.owners import RegistrationIndex
from intake.replay import ReplayStore
from intake.uploads.publish import PRODUCER_CONFIG, publish_with

# anvil's first dev account: a well-known test key, never a real one
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
WALLET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SERVICE_TOKEN = "service-" + "x" * 32
PLAYER = "0x" + "b7" * 20
MATCH = {"match_id": "1-aaaa", "platform": "faceit", "start_time": 1757500000, "end_time": 1757502400,
         "game_mode": "5v5", "result_for_player": "win", "player_team": "team_A", "opponent_team": "team_B",
         "score": "13-9"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReplayStore]:
    replay = ReplayStore(tmp_path / "used_signatures.sqlite")
    yield replay
    replay.close()


def signed() -> dict[str, str]:
    return sign_headers(KEY)


def messages(settings: Settings, topic: str) -> list[tuple[str, Any]]:
    serde = EventSerde(settings.schema_registry_url)
    return [(key, serde.decode(value)) for key, value in raw_messages(settings, topic)]


def project(settings: Settings, *topics: str) -> None:
    projector = RunningProjector(settings)
    try:
        for topic in topics:
            projector.wait_until_consumed(topic)
    finally:
        projector.stop()


def test_json_evidence_from_a_wallet_and_from_the_web_apps_server(settings: Settings, store: ReplayStore) -> None:
    with EventProducer(settings, EVIDENCE_STAGE, extra_config=dict(PRODUCER_CONFIG)) as producer:
        client = TestClient(evidence_app(publish_with(producer), dead_letter_with(producer),
                                         SignatureVerifier(store), ServiceCredential(SERVICE_TOKEN)))
        steps = [{"date": "2026-01-02", "steps": 12000}]
        own = client.post("/v1/evidence", json={"challenge_id": 70, "provider": "apple", "records": steps},
                          headers=signed())
        assert own.status_code == 202, own.text
        # submit-match / the FACEIT webhook: the web app's server names the wallet; a given hash is kept
        match = client.post("/v1/service/evidence", headers=service_headers(SERVICE_TOKEN), json={
            "challenge_id": 70, "subject": PLAYER, "provider": "faceit", "records": [MATCH],
            "evidence_hash": f"faceit_webhook_1-aaaa_{PLAYER}"})
        assert match.status_code == 202, match.text
        dota = client.post("/v1/service/evidence", headers=service_headers(SERVICE_TOKEN), json={
            "challenge_id": 70, "subject": PLAYER, "provider": "opendota", "records": [{"match_id": "8000000001"}]})
        assert dota.json()["evidence_hash"] == evidence_hash("opendota", [{"match_id": "8000000001"}])
        # a second submission of the same provider replaces the first (the original's insert failed)
        again = client.post("/v1/evidence", json={"challenge_id": 70, "provider": "apple",
                                                  "records": [{"date": "2026-01-03", "steps": 9000}]},
                            headers=signed())
        assert again.status_code == 202
        # a record that cannot have happened is left out with a note (domain/evidence_records.py)
        partly = client.post("/v1/evidence", headers=signed(), json={
            "challenge_id": 71, "provider": "apple",
            "records": [{"date": "2026-01-02", "steps": 5}, {"date": "2026-01-03", "steps": -5}]})
        assert (partly.status_code, partly.json()["record_count"]) == (202, 1), partly.text
        assert "2026-01-03" in partly.json()["dropped"][0]
        no_rule = client.post("/v1/evidence", json={"challenge_id": 70, "provider": "manual", "records": steps},
                              headers=signed())
        assert no_rule.status_code == 422 and "no evidence hash rule" in no_rule.json()["reason"]

        assert client.post("/v1/evidence", json={"challenge_id": 70, "provider": "apple",
                                                 "records": steps}).status_code == 401
        assert client.post("/v1/service/evidence", headers=service_headers("wrong"), json={
            "challenge_id": 70, "subject": PLAYER, "provider": "faceit", "records": [MATCH]}).status_code == 401
        nested = client.post("/v1/evidence", content=b'{"challenge_id": 70, "provider": "apple", "records": '
                             + b"[" * 200 + b"]" * 200 + b"}", headers=signed())
        assert nested.status_code == 422 and "nested deeper" in nested.json()["reason"]
        other = client.post("/v1/evidence", json={"challenge_id": 70, "subject": PLAYER, "provider": "apple",
                                                  "records": steps}, headers=signed())
        assert other.status_code == 422 and "is not the signer" in other.json()["reason"]
        assert client.post("/v1/evidence", json={"challenge_id": -1, "provider": "apple", "records": steps},
                           headers=signed()).status_code == 422
        assert client.post("/v1/service/evidence", headers=service_headers(SERVICE_TOKEN), json={
            "challenge_id": 70, "provider": "faceit", "records": [MATCH]}).status_code == 422  # no subject

    assert len(messages(settings, EVIDENCE)) == 5
    dead = [event.payload["reason"] for _key, event in messages(settings, DLQ)]
    assert len(dead) == 5 and all(EVIDENCE_STAGE == event.payload["stage"] for _k, event in messages(settings, DLQ))

    project(settings, EVIDENCE)
    rows = [r for r in table_rows(settings, "evidence", "provider") if r["challenge_id"] == 70]
    assert [(r["challenge_id"], r["subject"], r["provider"], r["data"], r["evidence_hash"]) for r in rows] == [
        (70, WALLET, "apple", [{"date": "2026-01-03", "steps": 9000}], again.json()["evidence_hash"]),
        (70, PLAYER, "faceit", [MATCH], f"faceit_webhook_1-aaaa_{PLAYER}"),
        (70, PLAYER, "opendota", [{"match_id": "8000000001"}], dota.json()["evidence_hash"]),
    ]


def test_challenge_creation_through_the_registrations_api(settings: Settings, store: ReplayStore) -> None:
    owners = RegistrationIndex(settings)
    owners.catch_up()
    with EventProducer(settings, "lc-registrations-api") as producer:
        client = TestClient(registrations_app(producer, SignatureVerifier(store), owners))
        document = {"id": 71, "subject": WALLET, "model_id": "fitness.steps@1", "title": "Walk",
                    "params": {"rule": {"challengeType": "steps", "conditions": [
                        {"metric": "steps", "op": ">=", "value": 1000}],
                        "period": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"}}},
                    "timeline": {"startsAt": 1767225600, "endsAt": "1767830400"}}
        assert client.post("/challenges", json=document, headers=signed()).status_code == 202
    owners.close()
    project(settings, CHALLENGES_REGISTERED)
    (row,) = table_rows(settings, "challenges", "id")
    assert (row["id"], row["title"], row["subject"], row["timeline"]) == (
        71, "Walk", WALLET.lower(), {"startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "2026-01-08T00:00:00.000Z"})


@pytest.fixture
def accounts_client(settings: Settings, store: ReplayStore) -> Iterator[TestClient]:
    with EventProducer(settings, ACCOUNTS_STAGE) as producer:
        publisher = AccountsPublisher(producer, TokenCipher.from_hex(KEY_A))
        yield TestClient(accounts_app(publisher, SignatureVerifier(store), ServiceCredential(SERVICE_TOKEN)))


def compact_quickly(settings: Settings) -> None:
    """Make the broker compact this test's lc.accounts within seconds instead of hours."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    entries = [ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET) for name, value in (
        ("segment.ms", "100"), ("min.cleanable.dirty.ratio", "0.001"), ("delete.retention.ms", "100"),
        ("min.compaction.lag.ms", "0"))]
    resource = ConfigResource(ConfigResource.Type.TOPIC, settings.topic(ACCOUNTS), incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_account_link_and_unlink_leave_no_token_behind(settings: Settings, accounts_client: TestClient) -> None:
    compact_quickly(settings)
    access, refresh = f"plain-access-{uuid.uuid4().hex}", f"plain-refresh-{uuid.uuid4().hex}"
    # an OAuth callback (Strava) on the web app's server, then a manual OpenDota link by the wallet itself
    linked = accounts_client.post("/v1/service/accounts", headers=service_headers(SERVICE_TOKEN), json={
        "subject": WALLET, "provider": "strava", "external_id": "12345", "access_token": access,
        "refresh_token": refresh, "expires_at": 1760003600})
    assert linked.status_code == 202, linked.text
    assert access not in linked.text and refresh not in linked.text
    assert accounts_client.post("/v1/accounts", headers=signed(),
                                json={"provider": "opendota", "external_id": "76561198000000001"}).status_code == 202
    assert accounts_client.post("/v1/accounts", json={"provider": "riot", "external_id": "x"}).status_code == 401
    tokens_from_browser = accounts_client.post("/v1/accounts", headers=signed(), json={
        "provider": "strava", "access_token": access})
    assert tokens_from_browser.status_code == 422 and access not in tokens_from_browser.text
    project(settings, ACCOUNTS)
    rows = table_rows(settings, "linked_accounts", "provider")
    assert [(r["subject"], r["provider"], r["external_id"]) for r in rows] == [
        (WALLET.lower(), "opendota", "76561198000000001"), (WALLET.lower(), "strava", "12345")]
    assert rows[1]["access_token"].startswith("enc:") and access not in table_text(settings, "linked_accounts")
    assert TokenCipher.from_hex(KEY_A).decrypt(rows[1]["access_token"]) == access

    # the user unlinks Strava (DELETE /api/linked-accounts was unauthenticated in the original)
    assert accounts_client.delete("/v1/accounts/strava").status_code == 401
    assert accounts_client.delete("/v1/accounts/strava", headers=signed()).status_code == 202
    project(settings, ACCOUNTS)
    assert [r["provider"] for r in table_rows(settings, "linked_accounts", "provider")] == ["opendota"]
    sealed = rows[1]["access_token"].encode()
    assert any(sealed in value for _key, value in raw_messages(settings, ACCOUNTS))  # not compacted yet

    def compacted() -> bool:
        # a later message of the partition (the same key: a second unlink) rolls the segment past
        # segment.ms, so the log cleaner may compact the segment that holds the token
        assert accounts_client.delete("/v1/accounts/strava", headers=signed()).status_code == 202
        time.sleep(2)
        return not any(sealed in value for _key, value in raw_messages(settings, ACCOUNTS))

    wait_for(compacted, timeout=180, what="the broker to compact lc.accounts")
    strava_key = f"{WALLET.lower()}:strava"
    kept = [event.event_type for key, event in messages(settings, ACCOUNTS) if key == strava_key]
    assert set(kept) == {"AccountUnlinked"}  # tombstones are all that is left of the account
    # a rebuild from the compacted topic has no Strava row either
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM linked_accounts")
        conn.execute("DELETE FROM projection_offsets WHERE topic = %s", (settings.topic(ACCOUNTS),))
    project(settings, ACCOUNTS)
    assert [r["provider"] for r in table_rows(settings, "linked_accounts", "provider")] == ["opendota"]


def test_identity_binding_and_unbinding(settings: Settings, accounts_client: TestClient) -> None:
    bound = accounts_client.post("/v1/service/identities", headers=service_headers(SERVICE_TOKEN), json={
        "wallet": WALLET, "platform": "steam", "platform_id": "76561198000000001", "handle": "gabe",
        "signed_by": "0x" + "5a" * 20, "signature": "0xsig", "ts": 1_000})
    assert bound.status_code == 202, bound.text
    assert accounts_client.post("/v1/service/identities", json={"wallet": WALLET}).status_code == 401
    project(settings, ACCOUNTS)
    (row,) = table_rows(settings, "identity_bindings", "id")
    assert (row["wallet"], row["platform"], row["platform_id"], row["handle"], row["ts"]) == (
        WALLET.lower(), "steam", "76561198000000001", "gabe", 1_000)

    assert accounts_client.delete("/v1/identities/steam", headers=signed()).status_code == 202
    # the same old binding published again (a re-run import) does not bring the row back
    with EventProducer(settings, "test") as producer:
        publish_identity_binding(producer, IdentityBinding(WALLET.lower(), "steam", "76561198000000001", "gabe",
                                                           None, None, 1_000))
    project(settings, ACCOUNTS)
    assert table_rows(settings, "identity_bindings", "id") == []
    rebound = accounts_client.post("/v1/service/identities", headers=service_headers(SERVICE_TOKEN), json={
        "wallet": WALLET, "platform": "steam", "platform_id": "76561198000000002"})  # ts: now, after the unbind
    assert rebound.status_code == 202
    project(settings, ACCOUNTS)
    assert [r["platform_id"] for r in table_rows(settings, "identity_bindings", "id")] == ["76561198000000002"]
    types = [event.event_type for _key, event in messages(settings, ACCOUNTS)]
    assert types.count("IdentityUnbound") == 1


def test_refused_account_requests_never_copy_the_body(settings: Settings, accounts_client: TestClient) -> None:
    secret = f"plain-{uuid.uuid4().hex}"
    refused = accounts_client.post("/v1/service/accounts", headers=service_headers(SERVICE_TOKEN), json={
        "subject": "not-an-address", "provider": "strava", "access_token": secret})
    assert refused.status_code == 422 and secret not in refused.text
    (dead,) = [event for _key, event in messages(settings, DLQ)]
    assert dead.payload["original"] in (None, b"") and secret not in json.dumps(dead.payload, default=str)
    assert messages(settings, ACCOUNTS) == []
