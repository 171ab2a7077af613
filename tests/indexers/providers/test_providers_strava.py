"""StravaClient against the real Strava payloads served by a scripted API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from kits.providers import FakeApi, RecordedSleep, fixture_bytes, fixture_json, provider_http, reply

from indexers.providers.clients import (
    LinkedAccount,
    OAuthTokens,
    ProviderAuthError,
    ProviderShapeError,
    ProviderUnavailableError,
    StravaClient,
    TimeWindow,
)
from indexers.providers.evidence_hash import evidence_hash

NOW = 1_760_000_000
WINDOW = TimeWindow(after=1_700_000_000, before=1_760_000_000)
ACTIVITIES = "/api/v3/athlete/activities"
VALID = OAuthTokens("live-access", "live-refresh", NOW + 3600)
EXPIRED = OAuthTokens("old-access", "old-refresh", NOW - 10)


def account(tokens: OAuthTokens = VALID) -> LinkedAccount:
    return LinkedAccount(subject="0xabc", provider="strava", external_id="26462176", tokens=tokens)


def client(api: FakeApi, sleep: RecordedSleep, per_page: int = 30) -> StravaClient:
    return StravaClient(
        provider_http("strava", api, sleep, NOW), base_url="https://strava.test", client_id="cid",
        client_secret="csecret", clock=lambda: NOW, per_page=per_page,
    )


def by_page(pages: dict[int, bytes]) -> object:
    return lambda request: reply(200, pages.get(int(request.url.params["page"]), b"[]"))


def kept(activities: list[dict]) -> list[dict]:
    return [a for a in activities if not a["trainer"] and not a["manual"]]


def test_paginates_until_a_short_page(shared_fixtures: Path) -> None:
    page1 = fixture_bytes(shared_fixtures, "strava/athlete_activities_page1.json")
    page2 = fixture_bytes(shared_fixtures, "strava/athlete_activities_per_page_1.json")
    api = FakeApi().on("GET", ACTIVITIES, by_page({1: page1, 2: page2}))
    result = client(api, RecordedSleep()).fetch(account(), WINDOW)

    expected = kept(json.loads(page1)) + kept(json.loads(page2))
    assert [r["activity_id"] for r in result.records] == [str(a["id"]) for a in expected]
    assert [dict(r.url.params) for r in api.requests] == [
        {"after": str(WINDOW.after), "before": str(WINDOW.before), "per_page": "30", "page": str(n)} for n in (1, 2)
    ]
    assert all(r.headers["authorization"] == "Bearer live-access" for r in api.requests)
    assert result.refreshed_tokens is None
    first = json.loads(page1)[0]
    assert result.records[0] == {
        "activity_id": str(first["id"]), "type": "run", "start": first["start_date"],
        "distance_m": round(first["distance"]), "distance_km": first["distance"] / 1000,
        "duration_s": first["moving_time"], "duration_min": int(first["moving_time"] / 60 + 0.5),
        "elev_gain_m": int(first["total_elevation_gain"] + 0.5), "avg_hr_bpm": first["average_heartrate"],
        "max_hr_bpm": first["max_heartrate"], "avg_speed_kmh": int(first["average_speed"] * 36 + 0.5) / 10,
    }


def test_empty_first_page_gives_no_records_and_the_zero_hash(shared_fixtures: Path) -> None:
    api = FakeApi().on("GET", ACTIVITIES, reply(200, fixture_bytes(shared_fixtures, "strava/athlete_activities_empty_page.json")))
    result = client(api, RecordedSleep()).fetch(account(), WINDOW)
    assert result.records == [] and result.evidence_hash == "0x" + "0" * 64


def test_mixed_sport_types_and_manual_activities(shared_fixtures: Path) -> None:
    raw = fixture_json(shared_fixtures, "strava/athlete_activities_mixed_sport_types_excerpt.json")
    api = FakeApi().on("GET", ACTIVITIES, reply(200, json.dumps(raw).encode()))
    result = client(api, RecordedSleep(), per_page=200).fetch(account(), WINDOW)
    assert len(result.records) == len(kept(raw)) < len(raw)
    types = {a["sport_type"]: r["type"] for a, r in zip(kept(raw), result.records, strict=True)}
    assert types == {"Run": "run", "TrailRun": "run", "AlpineSki": "alpineski", "Hike": "hike", "BackcountrySki": "backcountryski"}
    # the trainer/manual ones (Swim, Ride, Workout, WeightTraining here) are dropped, as in the original
    assert {a["sport_type"] for a in raw} - set(types) == {"Swim", "Ride", "Workout", "WeightTraining"}


def test_expired_token_is_refreshed_first_and_returned(shared_fixtures: Path) -> None:
    api = FakeApi().on("POST", "/oauth/token", reply(200, fixture_bytes(shared_fixtures, "strava/oauth_token_refresh_response.json")))
    api.on("GET", ACTIVITIES, reply(200, fixture_bytes(shared_fixtures, "strava/athlete_activities_per_page_1.json")))
    result = client(api, RecordedSleep()).fetch(account(EXPIRED), WINDOW)

    refresh = api.requests[0]
    assert json.loads(refresh.content) == {
        "client_id": "cid", "client_secret": "csecret", "grant_type": "refresh_token", "refresh_token": "old-refresh",
    }
    assert api.requests[1].headers["authorization"] == "Bearer new-access-token"
    assert result.refreshed_tokens == OAuthTokens("new-access-token", "new-refresh-token", 1542940199)
    assert "new-access-token" not in repr(result)


def test_401_refreshes_once_and_retries(shared_fixtures: Path) -> None:
    unauthorized = reply(401, fixture_bytes(shared_fixtures, "strava/error_401_authorization_error.json"))
    page = reply(200, fixture_bytes(shared_fixtures, "strava/athlete_activities_per_page_1.json"))
    api = FakeApi().on("POST", "/oauth/token", reply(200, fixture_bytes(shared_fixtures, "strava/oauth_token_refresh_response.json")))
    api.on("GET", ACTIVITIES, unauthorized, page)
    result = client(api, RecordedSleep()).fetch(account(), WINDOW)
    assert len(result.records) == 1
    assert [r.method for r in api.requests] == ["GET", "POST", "GET"]
    assert result.refreshed_tokens is not None and result.refreshed_tokens.access_token == "new-access-token"


def test_401_after_refresh_is_a_clear_error_without_tokens(shared_fixtures: Path) -> None:
    unauthorized = reply(401, fixture_bytes(shared_fixtures, "strava/error_401_authorization_error.json"))
    api = FakeApi().on("POST", "/oauth/token", reply(200, fixture_bytes(shared_fixtures, "strava/oauth_token_refresh_response.json")))
    api.on("GET", ACTIVITIES, unauthorized)
    with pytest.raises(ProviderAuthError) as raised:
        client(api, RecordedSleep()).fetch(account(), WINDOW)
    assert "401 after a token refresh" in str(raised.value)
    assert not any(secret in str(raised.value) for secret in ("live-access", "live-refresh", "new-access-token", "csecret"))
    # the refresh happened, so its tokens still reach the caller
    assert raised.value.refreshed_tokens is not None
    assert [r.method for r in api.requests] == ["GET", "POST", "GET"]


def test_refused_refresh_is_an_auth_error() -> None:
    api = FakeApi().on("POST", "/oauth/token", reply(400, {"message": "Bad Request", "errors": [{"resource": "RefreshToken", "code": "invalid"}]}))
    with pytest.raises(ProviderAuthError, match="token refresh failed — Bad Request"):
        client(api, RecordedSleep()).fetch(account(EXPIRED), WINDOW)


def test_429_waits_for_retry_after(shared_fixtures: Path) -> None:
    page = reply(200, fixture_bytes(shared_fixtures, "strava/athlete_activities_per_page_1.json"))
    api = FakeApi().on("GET", ACTIVITIES, reply(429, {"message": "Rate Limit Exceeded"}, {"Retry-After": "17"}), page)
    sleep = RecordedSleep()
    result = client(api, sleep).fetch(account(), WINDOW)
    assert sleep.delays == [17.0] and len(result.records) == 1


def test_5xx_backs_off_exponentially_then_succeeds(shared_fixtures: Path) -> None:
    page = reply(200, fixture_bytes(shared_fixtures, "strava/athlete_activities_per_page_1.json"))
    api = FakeApi().on("GET", ACTIVITIES, reply(502, b"bad gateway"), reply(503, b""), page)
    sleep = RecordedSleep()
    assert len(client(api, sleep).fetch(account(), WINDOW).records) == 1
    assert sleep.delays == [1.0, 2.0]


def test_5xx_outlasting_the_budget_is_unavailable() -> None:
    api = FakeApi().on("GET", ACTIVITIES, reply(500, b"oops"))
    sleep = RecordedSleep()
    with pytest.raises(ProviderUnavailableError, match=r"GET /api/v3/athlete/activities → HTTP 500 after 4 attempts"):
        client(api, sleep).fetch(account(), WINDOW)
    assert sleep.delays == [1.0, 2.0, 4.0] and len(api.requests) == 4


def test_transport_errors_are_retried(shared_fixtures: Path) -> None:
    page = reply(200, fixture_bytes(shared_fixtures, "strava/athlete_activities_per_page_1.json"))

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    api = FakeApi().on("GET", ACTIVITIES, timeout, page)
    assert len(client(api, RecordedSleep()).fetch(account(), WINDOW).records) == 1


def test_a_body_of_the_wrong_shape_is_a_shape_error_with_the_bytes(shared_fixtures: Path) -> None:
    body = fixture_bytes(shared_fixtures, "strava/error_401_authorization_error.json")  # an object, not a list
    api = FakeApi().on("GET", ACTIVITIES, reply(200, body))
    with pytest.raises(ProviderShapeError) as raised:
        client(api, RecordedSleep()).fetch(account(), WINDOW)
    assert raised.value.body == body and raised.value.source == "GET /api/v3/athlete/activities"
    assert "expected a JSON array" in raised.value.reason


def test_an_activity_without_id_is_a_shape_error(shared_fixtures: Path) -> None:
    raw = fixture_json(shared_fixtures, "strava/athlete_activities_per_page_1.json")
    del raw[0]["id"]
    api = FakeApi().on("GET", ACTIVITIES, reply(200, raw))
    with pytest.raises(ProviderShapeError, match="`id` is not an integer"):
        client(api, RecordedSleep()).fetch(account(), WINDOW)


def test_same_activities_same_hash_changed_activity_new_hash(shared_fixtures: Path) -> None:
    raw = fixture_json(shared_fixtures, "strava/athlete_activities_after_before_2018-11.json")
    api = FakeApi().on("GET", ACTIVITIES, reply(200, raw))
    first = client(api, RecordedSleep()).fetch(account(), WINDOW)
    again = client(api, RecordedSleep()).fetch(account(), WINDOW)
    assert first.evidence_hash == again.evidence_hash == evidence_hash("strava", list(reversed(first.records)))

    raw[0]["distance"] += 100.0
    api.on("GET", ACTIVITIES, reply(200, raw))
    changed = client(api, RecordedSleep()).fetch(account(), WINDOW)
    assert changed.evidence_hash != first.evidence_hash


def test_tokens_never_in_repr() -> None:
    tokens = OAuthTokens("sekrit-access", "sekrit-refresh", 1)
    assert "sekrit" not in repr(tokens) and "sekrit" not in repr(account(tokens))
    assert "csecret" not in repr(client(FakeApi(), RecordedSleep()))


def test_strava_429_waits_for_the_next_quarter_hour(shared_fixtures: Path) -> None:
    recorded = fixture_json(shared_fixtures, "strava/athlete_activities_page1.response_headers.json")["headers"]
    limits = {k: v for k, v in recorded.items() if k.lower().startswith("x-")}
    page = reply(200, fixture_bytes(shared_fixtures, "strava/athlete_activities_per_page_1.json"))
    api = FakeApi().on("GET", ACTIVITIES, reply(429, {"message": "Rate Limit Exceeded"}, limits), page)
    sleep = RecordedSleep()
    client(api, sleep).fetch(account(), WINDOW)
    assert sleep.delays == [float(900 - NOW % 900)]
