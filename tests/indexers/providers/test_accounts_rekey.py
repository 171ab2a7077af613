"""`lc accounts rekey`: every stored token re-sealed under the new key, the old key still accepted during
the change, idempotent, --dry-run publishing nothing; the projected table follows."""

from __future__ import annotations

from kits.accounts import ALICE, KEY_A, KEY_B, RunningProjector, raw_messages, table_rows
from kits.cli import run_lc

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import ACCOUNTS
from indexers.providers.accounts import publish_linked_account
from indexers.providers.clients import OAuthTokens
from indexers.providers.collector_stage import PostgresAccountSource
from indexers.providers.crypto import TokenCipher
from indexers.providers.rekey import rekey_accounts

BOB = "0xbbbb00000000000000000000000000000000000b"
CAROL = "0xcccc00000000000000000000000000000000000c"
KEY_C = "c3" * 32


def project(settings: Settings) -> None:
    projector = RunningProjector(settings)
    try:
        projector.wait_until_consumed(ACCOUNTS)
    finally:
        projector.stop()


def seed_accounts(settings: Settings) -> None:
    """Alice's tokens in two events (a null never clears), Bob's under the new key already, Carol without tokens."""
    old, new = TokenCipher.from_hex(KEY_A), TokenCipher.from_hex(KEY_B)
    with EventProducer(settings, "test") as producer:
        publish_linked_account(producer, old, ALICE, "strava", "42", OAuthTokens("alice-a1", "alice-r1", 1_800_000_000))
        publish_linked_account(producer, old, ALICE, "strava", None, OAuthTokens("alice-a2", None, None))
        publish_linked_account(producer, old, ALICE, "fitbit", "F1", OAuthTokens("alice-fa", "alice-fr", None))
        publish_linked_account(producer, new, BOB, "strava", "7", OAuthTokens("bob-a", "bob-r", None))
        publish_linked_account(producer, None, CAROL, "opendota", "76561198083722517", None)


def test_rekey_reseals_every_token_under_the_new_key_once(settings: Settings) -> None:
    seed_accounts(settings)
    during = settings.replace(oauth_encryption_key=KEY_B, oauth_previous_keys=KEY_A)
    before = len(raw_messages(settings, ACCOUNTS))

    dry = run_lc(during, "accounts", "rekey", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would re-seal 2 account(s) under the current key: {ALICE.lower()}:fitbit, {ALICE.lower()}:strava" \
        in dry.stdout
    assert "already under the current key: 1; without tokens: 1" in dry.stdout
    assert len(raw_messages(settings, ACCOUNTS)) == before  # nothing published

    done = run_lc(during, "accounts", "rekey")
    assert done.returncode == 0, done.stderr
    assert "published 2 LinkedAccount event(s)" in done.stdout
    for secret in ("alice-a2", "alice-r1", "alice-fa", KEY_A, KEY_B):
        assert secret not in done.stdout + done.stderr
    assert len(raw_messages(settings, ACCOUNTS)) == before + 2

    again = rekey_accounts(during)  # idempotent: everything is under the new key now
    assert (again.resealed, again.published, len(again.current)) == ([], [], 3)

    project(settings)
    new_only = TokenCipher.from_hex(KEY_B)  # the old key can now be dropped
    rows = {(r["subject"], r["provider"]): r for r in table_rows(settings, "linked_accounts", "id")}
    alice = rows[(ALICE.lower(), "strava")]
    assert (new_only.decrypt(alice["access_token"]), new_only.decrypt(alice["refresh_token"])) == ("alice-a2",
                                                                                                   "alice-r1")
    assert alice["external_id"] == "42" and alice["token_expires_at"].timestamp() == 1_800_000_000
    assert new_only.decrypt(rows[(ALICE.lower(), "fitbit")]["refresh_token"]) == "alice-fr"
    assert new_only.decrypt(rows[(BOB, "strava")]["access_token"]) == "bob-a"
    assert rows[(CAROL, "opendota")]["access_token"] is None
    polled = PostgresAccountSource(settings.pg_dsn, new_only).linked_accounts()  # the collector, new key only
    assert {a.tokens.access_token for accounts in polled.values() for a in accounts if a.tokens} == {
        "alice-a2", "alice-fa", "bob-a"}


def test_during_the_change_the_collector_opens_tokens_of_either_key(settings: Settings) -> None:
    seed_accounts(settings)
    project(settings)
    during = TokenCipher.from_hex(KEY_B, KEY_A)
    polled = PostgresAccountSource(settings.pg_dsn, during).linked_accounts()
    assert {a.tokens.access_token for accounts in polled.values() for a in accounts if a.tokens} == {
        "alice-a2", "alice-fa", "bob-a"}
    assert during.encrypt("x") and TokenCipher.from_hex(KEY_B).decrypt(during.encrypt("x")) == "x"  # seals with new


def test_a_token_no_configured_key_opens_is_reported_and_not_touched(settings: Settings) -> None:
    seed_accounts(settings)
    before = len(raw_messages(settings, ACCOUNTS))
    done = run_lc(settings.replace(oauth_encryption_key=KEY_C, oauth_previous_keys=KEY_B), "accounts", "rekey")
    assert done.returncode == 1
    unreadable = [line for line in done.stderr.splitlines() if line.startswith("lc: ")]
    assert len(unreadable) == 2 and all("LC_OAUTH_PREVIOUS_KEYS" in line for line in unreadable)
    assert len(raw_messages(settings, ACCOUNTS)) == before + 1  # only Bob's, which KEY_B opens


def test_rekey_never_brings_back_an_unlinked_account(settings: Settings) -> None:
    from indexers.providers.accounts import publish_account_unlinked

    seed_accounts(settings)
    with EventProducer(settings, "test") as producer:
        publish_account_unlinked(producer, ALICE, "strava", occurred_at=1_900_000_000_000)
    report = rekey_accounts(settings.replace(oauth_encryption_key=KEY_B, oauth_previous_keys=KEY_A))
    assert report.resealed == [f"{ALICE.lower()}:fitbit"]
    project(settings)
    assert (ALICE.lower(), "strava") not in {(r["subject"], r["provider"])
                                             for r in table_rows(settings, "linked_accounts", "id")}
