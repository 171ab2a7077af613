"""The collector's token sink on the real broker and database: tokens a provider client refreshed go
to lc.accounts sealed, are projected into `linked_accounts`, and the next poll reads them back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from kits.accounts import ALICE, KEY_A, RunningProjector, raw_messages, table_rows, table_text

from cli.settings import Settings
from cli.stages import STAGES
from eventlog.consumer import StopFlag
from eventlog.serde import EventSerde
from eventlog.topics import ACCOUNTS, EVIDENCE
from indexers.providers.accounts import link_account
from indexers.providers.clients import FetchResult, LinkedAccount, OAuthTokens, TimeWindow
from indexers.providers.collector import ActiveChallenge
from indexers.providers.collector_stage import PostgresAccountSource, run_collector
from indexers.providers.crypto import TokenCipher
from indexers.providers.evidence_hash import ZERO_HASH

NOW = 1_760_000_000
SUBJECT = ALICE.lower()


@dataclass
class OneChallenge:
    def active_challenges(self, now: float) -> list[ActiveChallenge]:
        return [ActiveChallenge(7, (ALICE,), NOW - 86_400, NOW + 86_400, NOW + 2 * 86_400)]


@dataclass
class RefreshingStrava:
    """A Strava client whose access token had expired: it refreshes and finds no activity."""

    new_tokens: OAuthTokens
    provider: str = "strava"
    seen: list[LinkedAccount] = field(default_factory=list)

    def fetch(self, account: LinkedAccount, window: TimeWindow) -> FetchResult:
        self.seen.append(account)
        return FetchResult(self.provider, [], ZERO_HASH, refreshed_tokens=self.new_tokens)


def test_refreshed_tokens_from_the_collector_land_in_the_table_sealed(settings: Settings) -> None:
    keyed = settings.replace(oauth_encryption_key=KEY_A)
    old = OAuthTokens(f"old-access-{uuid.uuid4().hex}", f"old-refresh-{uuid.uuid4().hex}", NOW - 60)
    new = OAuthTokens(f"new-access-{uuid.uuid4().hex}", f"new-refresh-{uuid.uuid4().hex}", NOW + 21_600)
    link_account(keyed, ALICE, "strava", "12345", old)
    strava = RefreshingStrava(new)
    projector = RunningProjector(settings)
    try:
        projector.wait_until_consumed(ACCOUNTS)
        run_collector(keyed, challenges=OneChallenge(), clients={"strava": strava}.get, clock=lambda: NOW,
                      max_ticks=1)
        projector.wait_until_consumed(ACCOUNTS)
    finally:
        projector.stop()

    # the client was handed the tokens opened from the table, and its refreshed ones were published
    assert strava.seen == [LinkedAccount(SUBJECT, "strava", "12345", old)]
    linked, refreshed = raw_messages(settings, ACCOUNTS)
    assert refreshed[0] == linked[0] == f"{SUBJECT}:strava"
    for plain in (old.access_token, old.refresh_token, new.access_token, new.refresh_token):
        assert all(plain.encode() not in value for _key, value in (linked, refreshed))
    event = EventSerde(settings.schema_registry_url).decode(refreshed[1])
    assert event.producer == "lc-collector" and event.event_id.startswith(f"account-tokens:{SUBJECT}:strava:")
    assert raw_messages(settings, EVIDENCE) == []  # nothing found, nothing published

    (row,) = table_rows(settings, "linked_accounts", "id")
    cipher = TokenCipher.from_hex(KEY_A)
    assert (row["external_id"], row["token_expires_at"].timestamp()) == ("12345", NOW + 21_600)
    assert (cipher.decrypt(row["access_token"]), cipher.decrypt(row["refresh_token"])) == (
        new.access_token, new.refresh_token)
    stored = table_text(settings, "linked_accounts")
    assert new.access_token not in stored and new.refresh_token not in stored
    # the next poll starts from the refreshed tokens (a Fitbit refresh token works only once)
    assert PostgresAccountSource(settings.pg_dsn, cipher).linked_accounts() == {
        SUBJECT: [LinkedAccount(SUBJECT, "strava", "12345", new)]}


def test_lc_run_collector_starts_with_its_kafka_token_sink(settings: Settings) -> None:
    stop = StopFlag()
    stop.set()  # start everything (key, producer, token sink, clients, ledger), then stop before polling
    STAGES["collector"](settings.replace(oauth_encryption_key=KEY_A), stop)


def test_lc_run_collector_without_the_key_exits_with_one_clear_line(settings: Settings) -> None:
    with pytest.raises(SystemExit, match="^lc run collector: LC_OAUTH_ENCRYPTION_KEY is not set"):
        STAGES["collector"](settings.replace(oauth_encryption_key=""), StopFlag())
