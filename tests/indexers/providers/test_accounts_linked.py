"""Linked accounts on lc.accounts and in `linked_accounts`, on the real broker and database: tokens
sealed from the topic to the table, the original's COALESCE merge, the key checks, and refusals."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from kits.accounts import ALICE, KEY_A, KEY_B, RunningProjector, raw_messages, table_rows, table_text

from cli.main import main
from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import ACCOUNTS, DLQ
from indexers.providers.accounts import link_account, publish_identity_binding, publish_linked_account
from indexers.providers.clients import LinkedAccount, OAuthTokens
from indexers.providers.collector import ActiveChallenge
from indexers.providers.collector_stage import PostgresAccountSource, run_collector
from indexers.providers.crypto import EncryptionKeyError, TokenCipher
from indexers.providers.identity import IdentityBinding
from projections.rebuild import rebuild

BOB = "0xbbbb00000000000000000000000000000000000b"


@dataclass
class NoChallenges:
    def active_challenges(self, now: float) -> list[ActiveChallenge]:
        return []


def use_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, key: str) -> None:
    monkeypatch.setenv("LC_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("LC_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("LC_PG_DSN", settings.pg_dsn)
    monkeypatch.setenv("LC_OAUTH_ENCRYPTION_KEY", key)


def project(settings: Settings, *, batch_size: int = 5000) -> None:
    projector = RunningProjector(settings, batch_size=batch_size)
    try:
        projector.wait_until_consumed(ACCOUNTS)
    finally:
        projector.stop()


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_tokens_stay_sealed_from_the_topic_to_the_table(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    access, refresh = f"plain-access-{uuid.uuid4().hex}", f"plain-refresh-{uuid.uuid4().hex}"
    use_env(monkeypatch, settings, KEY_A)
    monkeypatch.setattr("sys.stdin", io.StringIO(
        f'{{"access_token": "{access}", "refresh_token": "{refresh}", "expires_at": 1760003600}}'))
    assert main(["accounts", "link", ALICE, "strava", "--external-id", "12345", "--tokens-from-stdin"]) == 0
    printed = capsys.readouterr()
    assert access not in printed.out + printed.err and refresh not in printed.out + printed.err

    (key, value), = raw_messages(settings, ACCOUNTS)
    assert key == f"{ALICE.lower()}:strava"
    assert access.encode() not in value and refresh.encode() not in value
    event = EventSerde(settings.schema_registry_url).decode(value)
    assert event.event_type == "LinkedAccount" and event.producer == "lc-accounts"
    assert event.payload["access_token"].startswith("enc:") and event.payload["refresh_token"].startswith("enc:")

    project(settings)
    (row,) = table_rows(settings, "linked_accounts", "id")
    assert (row["subject"], row["provider"], row["external_id"], row["token_expires_at"]) == (
        ALICE.lower(), "strava", "12345", at(1760003600))
    stored = table_text(settings, "linked_accounts")
    assert access not in stored and refresh not in stored
    assert row["access_token"] == event.payload["access_token"]  # the ciphertext published, as it was
    cipher = TokenCipher.from_hex(KEY_A)
    assert (cipher.decrypt(row["access_token"]), cipher.decrypt(row["refresh_token"])) == (access, refresh)
    # what the collector polls with: opened again with the key
    assert PostgresAccountSource(settings.pg_dsn, cipher).linked_accounts() == {
        ALICE.lower(): [LinkedAccount(ALICE.lower(), "strava", "12345", OAuthTokens(access, refresh, 1760003600))]}
    assert raw_messages(settings, DLQ) == []


def test_a_null_never_clears_a_stored_value(settings: Settings) -> None:
    cipher = TokenCipher.from_hex(KEY_A)
    with EventProducer(settings, "test") as producer:
        publish_linked_account(producer, None, ALICE, "fitbit", "U1", None, occurred_at=1_000)
        publish_linked_account(producer, cipher, ALICE.lower(), "fitbit", None, OAuthTokens("a1", "r1", 100),
                               occurred_at=2_000)
        publish_linked_account(producer, cipher, ALICE, "fitbit", None, OAuthTokens("a2", None, None),
                               occurred_at=3_000)
        publish_linked_account(producer, None, ALICE, "opendota", "76561198083722517", None, occurred_at=4_000)
    project(settings)
    fitbit, opendota = table_rows(settings, "linked_accounts", "provider")
    assert (fitbit["subject"], fitbit["external_id"], fitbit["token_expires_at"]) == (ALICE.lower(), "U1", at(100))
    assert cipher.decrypt(fitbit["access_token"]) == "a2" and cipher.decrypt(fitbit["refresh_token"]) == "r1"
    assert (fitbit["created_at"], fitbit["updated_at"]) == (at(1), at(3))
    assert (opendota["external_id"], opendota["access_token"], opendota["refresh_token"]) == (
        "76561198083722517", None, None)

    with EventProducer(settings, "test") as producer:  # a later batch merges into the stored row
        publish_linked_account(producer, None, ALICE, "fitbit", "U2", None, occurred_at=5_000)
    project(settings)
    fitbit_now = table_rows(settings, "linked_accounts", "provider")[0]
    assert fitbit_now == {**fitbit, "external_id": "U2", "updated_at": at(5)}


def test_a_missing_or_wrong_key_stops_before_anything_is_published(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = OAuthTokens("secret-access", "secret-refresh", None)
    with pytest.raises(EncryptionKeyError, match="LC_OAUTH_ENCRYPTION_KEY is not set"):
        link_account(settings.replace(oauth_encryption_key=""), ALICE, "strava", "1", tokens)
    assert raw_messages(settings, ACCOUNTS) == []

    link_account(settings.replace(oauth_encryption_key=KEY_A), ALICE, "strava", "1", tokens)
    project(settings)
    with pytest.raises(EncryptionKeyError, match="does not open the stored OAuth tokens"):
        link_account(settings.replace(oauth_encryption_key=KEY_B), BOB, "strava", "2", tokens)
    assert len(raw_messages(settings, ACCOUNTS)) == 1
    # the collector too refuses a key that does not open the stored tokens, before its first poll
    with pytest.raises(EncryptionKeyError, match="does not open the stored OAuth tokens"):
        run_collector(settings.replace(oauth_encryption_key=KEY_B), challenges=NoChallenges(), max_ticks=1)

    use_env(monkeypatch, settings, "")
    monkeypatch.setattr("sys.stdin", io.StringIO('{"access_token": "secret-access"}'))
    assert main(["accounts", "link", BOB, "strava", "--tokens-from-stdin"]) == 1
    printed = capsys.readouterr()
    assert "LC_OAUTH_ENCRYPTION_KEY is not set" in printed.err and "secret" not in printed.out + printed.err
    assert len(raw_messages(settings, ACCOUNTS)) == 1


def test_refused_events_go_to_the_dlq_and_the_projector_carries_on(settings: Settings) -> None:
    cipher = TokenCipher.from_hex(KEY_A)
    secret = f"plain-{uuid.uuid4().hex}"
    key = f"{ALICE.lower()}:strava"
    good = {"subject": ALICE.lower(), "provider": "strava", "external_id": "1", "access_token": cipher.encrypt("a"),
            "refresh_token": None, "token_expires_at": None}
    raw = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    raw.produce(settings.topic(ACCOUNTS), key=key.encode(), value=b"not avro at all")
    raw.flush(10)
    with EventProducer(settings, "test") as producer:
        producer.publish(ACCOUNTS, key, "LinkedAccount", {**good, "access_token": secret}, event_id="plain")
        producer.publish(ACCOUNTS, "alice:strava", "LinkedAccount", {**good, "subject": "alice"}, event_id="name")
        producer.publish(ACCOUNTS, f"{BOB}:strava", "LinkedAccount", good, event_id="wrong-key")
        producer.publish(ACCOUNTS, key, "LinkedAccount", {**good, "refresh_token": "enc:zz"}, event_id="bad-seal")
        producer.publish(ACCOUNTS, key, "LinkedAccount", {**good, "token_expires_at": 2**62}, event_id="no-such-time")
        producer.publish(ACCOUNTS, key, "EvidenceSubmitted", {
            "challenge_id": 1, "subject": ALICE, "provider": "strava", "records_json": "[]", "evidence_hash": "0x0",
            "raw_ref": None}, event_id="wrong-type")
        publish_identity_binding(producer, IdentityBinding("0x12", "steam", "7656", None, None, None, 1))
        producer.publish(ACCOUNTS, key, "LinkedAccount", good, event_id="good", occurred_at=5_000)
    project(settings)

    (row,) = table_rows(settings, "linked_accounts", "id")
    assert (row["subject"], row["access_token"]) == (ALICE.lower(), good["access_token"])
    assert table_rows(settings, "identity_bindings", "id") == []
    serde = EventSerde(settings.schema_registry_url)
    letters = [serde.decode(value).payload for _key, value in raw_messages(settings, DLQ)]
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == sorted([
        "undecodable: not an Avro event: leading bytes 6e6f7420",
        "invalid linked account: access_token is not encrypted (original withheld)",
        "invalid LinkedAccount: subject 'alice' is not a 0x address",
        f"invalid LinkedAccount: key '{BOB}:strava' is not '{key}'",
        "invalid LinkedAccount: refresh_token is not enc:<iv>:<tag>:<ciphertext> hex",
        "invalid LinkedAccount: token_expires_at 4611686018427387904 is out of range [0, 253402300799999]",
        "event type EvidenceSubmitted does not belong on lc.accounts (it carries LinkedAccount, AccountUnlinked, "
        "IdentityBound, IdentityUnbound)",
        "invalid IdentityBound: wallet '0x12' is not a 0x address",
    ])
    assert all(letter["stage"] == "lc-projector" and letter["source_topic"] == ACCOUNTS for letter in letters)
    withheld = next(letter for letter in letters if "withheld" in letter["reason"])
    assert withheld["original"] == b"" and withheld["source_key"] == key
    assert all(secret.encode() not in value for _key, value in raw_messages(settings, DLQ))


def test_event_by_event_and_a_rebuild_in_one_batch_give_the_same_rows(settings: Settings) -> None:
    cipher = TokenCipher.from_hex(KEY_A)
    with EventProducer(settings, "test") as producer:
        for n in range(30):
            subject = f"0x{n % 7:040x}"
            tokens = OAuthTokens(f"a{n}", f"r{n}" if n % 2 else None, 1_000 + n) if n % 3 else None
            publish_linked_account(producer, cipher, subject, ("strava", "fitbit")[n % 2], None if n % 4 else f"x{n}",
                                   tokens, occurred_at=10_000 + n)
            publish_identity_binding(producer, IdentityBinding(subject, "steam", f"7656{n}", f"h{n}" if n % 2 else None,
                                                               None, None, 5_000 - n if n % 5 else 9_000 + n))
    project(settings, batch_size=1)  # live: one event per batch
    columns = "subject, provider, external_id, access_token, refresh_token, token_expires_at, created_at, updated_at"
    live_accounts = table_rows(settings, f"(SELECT {columns} FROM linked_accounts) a", "subject, provider")
    live_bindings = table_rows(settings, "(SELECT wallet, platform, platform_id, handle, signed_by, signature, ts,"
                                         " created_at, updated_at FROM identity_bindings) b", "wallet, platform")
    assert len(live_accounts) == 14 and len(live_bindings) == 7

    rebuild(settings, timeout_s=120)  # every event again, from offset zero, in large batches (folded)
    assert table_rows(settings, f"(SELECT {columns} FROM linked_accounts) a", "subject, provider") == live_accounts
    assert table_rows(settings, "(SELECT wallet, platform, platform_id, handle, signed_by, signature, ts,"
                                " created_at, updated_at FROM identity_bindings) b", "wallet, platform") == live_bindings
