"""The collector's pure part: planning, windows, the publish-on-new-hash decision, failures, tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kits.providers import FakeApi, RecordedSleep, fixture_json, provider_http, reply

from indexers.providers.clients import (
    FetchResult,
    LinkedAccount,
    OAuthTokens,
    ProviderAuthError,
    ProviderShapeError,
    StravaClient,
    TimeWindow,
)
from indexers.providers.collector import (
    DEFAULT_LOOKBACK_SECONDS,
    ActiveChallenge,
    PublishLedger,
    collect_once,
    collection_window,
    plan_polls,
    providers_for_category,
)
from indexers.providers.evidence_hash import ZERO_HASH, evidence_hash

NOW = 1_760_000_000
ALICE = "0xAAAA000000000000000000000000000000000001"
BOB = "0xbbbb000000000000000000000000000000000002"


def accounts() -> dict[str, list[LinkedAccount]]:
    return {
        ALICE: [
            LinkedAccount(ALICE.lower(), "apple"),
            LinkedAccount(ALICE.lower(), "strava", "1", OAuthTokens("a", "r", NOW + 9999)),
            LinkedAccount(ALICE.lower(), "faceit", "76561198000000001"),
            LinkedAccount(ALICE.lower(), "garmin"),
            LinkedAccount(ALICE.lower(), "googlefit"),
        ],
        BOB: [LinkedAccount(BOB, "fitbit", "U", OAuthTokens("b", "rb", NOW + 9999)), LinkedAccount(BOB, "opendota", "76561198083722517")],
    }


def test_plan_skips_upload_only_providers_and_lowercases_subjects() -> None:
    challenge = ActiveChallenge(7, (ALICE, BOB.upper().replace("0X", "0x")), NOW - 86400, NOW - 3600, NOW + 86400)
    tasks = plan_polls([challenge], accounts(), NOW)
    assert [(t.subject, t.provider) for t in tasks] == [
        (ALICE.lower(), "strava"), (ALICE.lower(), "faceit"), (BOB, "fitbit"), (BOB, "opendota"),
    ]
    assert all(t.window == TimeWindow(NOW - 86400, NOW - 3600) for t in tasks)


def test_plan_filters_by_category_and_collecting_period() -> None:
    fitness = ActiveChallenge(1, (ALICE, BOB), NOW - 10, None, None, providers_for_category("fitness"))
    not_started = ActiveChallenge(2, (ALICE,), NOW + 10)
    deadline_passed = ActiveChallenge(3, (ALICE,), NOW - 100, NOW - 50, NOW - 1)
    tasks = plan_polls([fitness, not_started, deadline_passed], accounts(), NOW)
    assert [(t.challenge_id, t.provider) for t in tasks] == [(1, "strava"), (1, "fitbit")]
    assert providers_for_category("cs2") == frozenset({"faceit"}) and providers_for_category(None) is None


def test_window_is_start_to_end_or_now_with_the_lookback_as_fallback() -> None:
    assert collection_window(ActiveChallenge(1, (), NOW - 500, NOW + 500), NOW) == TimeWindow(NOW - 500, NOW)
    assert collection_window(ActiveChallenge(1, (), NOW - 500, NOW - 100), NOW) == TimeWindow(NOW - 500, NOW - 100)
    assert collection_window(ActiveChallenge(1, ()), NOW) == TimeWindow(NOW - DEFAULT_LOOKBACK_SECONDS, NOW)
    assert collection_window(ActiveChallenge(1, (), None, None), NOW, 3600) == TimeWindow(NOW - 3600, NOW)


@dataclass
class ScriptedClient:
    """A pure stand-in for a provider client: answers from a list, records the accounts it saw."""

    provider: str
    answers: list[FetchResult | Exception]
    seen: list[LinkedAccount] = field(default_factory=list)

    def fetch(self, account: LinkedAccount, window: TimeWindow) -> FetchResult:
        self.seen.append(account)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def result(provider: str, records: list[dict], tokens: OAuthTokens | None = None) -> FetchResult:
    return FetchResult(provider, records, evidence_hash(provider, records), tokens)


MATCH = {"match_id": "1-a", "platform": "faceit", "start_time": NOW - 50}


def test_publish_only_when_the_hash_changes() -> None:
    challenge = ActiveChallenge(9, (ALICE,), NOW - 100, None, None, frozenset({"faceit"}))
    tasks = plan_polls([challenge], accounts(), NOW)
    client = ScriptedClient("faceit", [result("faceit", [MATCH])])
    ledger = PublishLedger()

    first = collect_once(tasks, {"faceit": client}.get, ledger)
    assert [(e.challenge_id, e.subject, e.provider) for e in first.evidence] == [(9, ALICE.lower(), "faceit")]
    ledger.mark_published(first.evidence[0].ledger_key, first.evidence[0].evidence_hash)

    again = collect_once(tasks, {"faceit": client}.get, ledger)
    assert again.evidence == [] and again.unchanged == 1

    client.answers = [result("faceit", [{**MATCH, "start_time": NOW - 40}])]
    changed = collect_once(tasks, {"faceit": client}.get, ledger)
    assert len(changed.evidence) == 1 and changed.evidence[0].evidence_hash != first.evidence[0].evidence_hash
    assert changed.evidence[0].event_id == f"evidence:9:{ALICE.lower()}:faceit:{changed.evidence[0].evidence_hash}"


def test_no_records_are_not_published_first_but_are_after_records() -> None:
    ledger = PublishLedger()
    key = (1, "0xa", "strava")
    assert not ledger.should_publish(key, ZERO_HASH)
    ledger.mark_published(key, "0x01")
    assert ledger.should_publish(key, ZERO_HASH)


def test_one_failing_provider_does_not_stop_the_others() -> None:
    challenge = ActiveChallenge(5, (ALICE, BOB), NOW - 100)
    tasks = plan_polls([challenge], accounts(), NOW)
    shape = ProviderShapeError("strava", "expected a JSON array", source="GET /api/v3/athlete/activities", body=b"{}")
    clients = {
        "strava": ScriptedClient("strava", [shape]),
        "faceit": ScriptedClient("faceit", [RuntimeError("bug")]),
        "fitbit": ScriptedClient("fitbit", [ProviderAuthError("fitbit", "fitbit GET /x → 401 after a token refresh")]),
        "opendota": ScriptedClient("opendota", [result("opendota", [{"match_id": "1"}])]),
    }
    outcome = collect_once(tasks, clients.get, PublishLedger())
    assert [e.provider for e in outcome.evidence] == ["opendota"]
    assert {f.task.provider: f.reason for f in outcome.failures} == {
        "strava": "strava: unexpected response from GET /api/v3/athlete/activities: expected a JSON array",
        "faceit": "RuntimeError: bug",
        "fitbit": "fitbit GET /x → 401 after a token refresh",
    }
    assert next(f for f in outcome.failures if f.task.provider == "strava").shape_error is shape


def test_refreshed_tokens_are_returned_and_used_by_later_tasks_of_the_account() -> None:
    new_tokens = OAuthTokens("fresh", "fresh-refresh", NOW + 3600)
    challenges = [ActiveChallenge(1, (BOB,), NOW - 100, None, None, frozenset({"fitbit"})),
                  ActiveChallenge(2, (BOB,), NOW - 200, None, None, frozenset({"fitbit"}))]
    tasks = plan_polls(challenges, accounts(), NOW)
    failed = ProviderAuthError("fitbit", "fitbit GET /y → 401 after a token refresh")
    failed.refreshed_tokens = new_tokens
    client = ScriptedClient("fitbit", [failed, result("fitbit", [])])
    outcome = collect_once(tasks, {"fitbit": client}.get, PublishLedger())
    assert [u.tokens for u in outcome.token_updates] == [new_tokens]
    assert outcome.token_updates[0].subject == BOB and outcome.token_updates[0].external_id == "U"
    assert client.seen[1].tokens == new_tokens


def test_same_account_and_window_is_fetched_once_per_tick() -> None:
    challenges = [ActiveChallenge(1, (BOB,), NOW - 100, None, None, frozenset({"opendota"})),
                  ActiveChallenge(2, (BOB,), NOW - 100, None, None, frozenset({"opendota"}))]
    client = ScriptedClient("opendota", [result("opendota", [{"match_id": "1"}])])
    outcome = collect_once(plan_polls(challenges, accounts(), NOW), {"opendota": client}.get, PublishLedger())
    assert len(client.seen) == 1 and [e.challenge_id for e in outcome.evidence] == [1, 2]


def test_real_strava_client_same_activity_publishes_once_changed_publishes_again(shared_fixtures: Path) -> None:
    raw = fixture_json(shared_fixtures, "strava/athlete_activities_after_before_2018-11.json")
    api = FakeApi().on("GET", "/api/v3/athlete/activities", reply(200, raw))
    client = StravaClient(provider_http("strava", api, RecordedSleep(), NOW), base_url="https://s.test",
                          client_id="c", client_secret="s", clock=lambda: NOW)
    tasks = plan_polls([ActiveChallenge(3, (ALICE,), 1541088000, 1543683600, NOW + 1)], accounts(), NOW)
    tasks = [t for t in tasks if t.provider == "strava"]
    ledger = PublishLedger()

    def tick() -> int:
        outcome = collect_once(tasks, {"strava": client}.get, ledger)
        for evidence in outcome.evidence:
            ledger.mark_published(evidence.ledger_key, evidence.evidence_hash)
        return len(outcome.evidence)

    assert (tick(), tick()) == (1, 0)
    raw[2]["moving_time"] += 60
    api.on("GET", "/api/v3/athlete/activities", reply(200, json.dumps(raw).encode()))
    assert (tick(), tick()) == (1, 0)
