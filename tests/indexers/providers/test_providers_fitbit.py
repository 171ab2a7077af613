"""FitbitClient against the real Fitbit payloads served by a scripted API."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from kits.providers import FakeApi, RecordedSleep, fixture_bytes, fixture_json, provider_http, reply

from indexers.providers.clients import FitbitClient, LinkedAccount, OAuthTokens, ProviderAuthError, TimeWindow

NOW = 1_760_000_000
JAN_2017 = TimeWindow(after=1483228800, before=1485907199)  # 2017-01-01T00:00Z .. 2017-01-31T23:59:59Z
STEPS = "/1/user/-/activities/steps/date/2017-01-01/2017-01-31.json"
LIST = "/1/user/-/activities/list.json"
VALID = OAuthTokens("live-access", "live-refresh", NOW + 3600)


def account(tokens: OAuthTokens = VALID) -> LinkedAccount:
    return LinkedAccount(subject="0xabc", provider="fitbit", external_id="26FWFL", tokens=tokens)


def client(api: FakeApi) -> FitbitClient:
    return FitbitClient(
        provider_http("fitbit", api, RecordedSleep(), NOW), base_url="https://fitbit.test", client_id="cid",
        client_secret="csecret", clock=lambda: NOW, page_limit=20,
    )


def list_pages(first_page: bytes) -> object:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("offset", "0") == "0":
            return reply(200, first_page)
        return reply(200, {"activities": [], "pagination": {"next": "", "previous": "", "offset": 20, "limit": 20}})

    return answer


def serve(api: FakeApi, root: Path, window: TimeWindow = JAN_2017, steps: str = STEPS) -> FakeApi:
    api.on("GET", steps, reply(200, fixture_bytes(root, "fitbit/activities_steps_date_timeseries_7d.json")))
    api.on("GET", LIST, list_pages(fixture_bytes(root, "fitbit/activities_list_log_page1.json")))
    return api


def test_steps_then_activity_logs_following_pagination_next(shared_fixtures: Path) -> None:
    api = serve(FakeApi(), shared_fixtures)
    result = client(api).fetch(account(), JAN_2017)

    steps = fixture_json(shared_fixtures, "fitbit/activities_steps_date_timeseries_7d.json")["activities-steps"]
    logs = fixture_json(shared_fixtures, "fitbit/activities_list_log_page1.json")["activities"]
    assert len(result.records) == len(steps) + len(logs)
    assert result.records[0] == {"dateTime": steps[0]["dateTime"], "value": int(steps[0]["value"]), "type": "steps", "steps": int(steps[0]["value"])}
    assert [r["activity_id"] for r in result.records[len(steps):]] == [str(log["logId"]) for log in logs]
    # the list's `next` (an api.fitbit.com URL) is followed on the configured base
    assert api.paths() == [STEPS, LIST, LIST]
    assert api.requests[1].url.params["afterDate"] == "2017-01-01" and api.requests[1].url.params["sort"] == "asc"
    assert api.requests[2].url.host == "fitbit.test" and api.requests[2].url.params["offset"] == "20"
    assert all(r.headers["authorization"] == "Bearer live-access" for r in api.requests)


def test_logs_after_the_window_are_dropped(shared_fixtures: Path) -> None:
    window = TimeWindow(after=1483228800, before=1484006400)  # .. 2017-01-10T00:00Z
    api = serve(FakeApi(), shared_fixtures, window, "/1/user/-/activities/steps/date/2017-01-01/2017-01-10.json")
    result = client(api).fetch(account(), window)
    logs = fixture_json(shared_fixtures, "fitbit/activities_list_log_page1.json")["activities"]
    inside = [log for log in logs if log["startTime"] < "2017-01-10T00:00:00"]
    assert 0 < len(inside) < len(logs)
    assert [r["activity_id"] for r in result.records if "activity_id" in r] == [str(log["logId"]) for log in inside]
    assert api.paths(method="GET").count(LIST) == 1  # sort=asc: nothing later can be in the window


def test_activity_record_fields_from_the_real_log(shared_fixtures: Path) -> None:
    api = serve(FakeApi(), shared_fixtures)
    result = client(api).fetch(account(), JAN_2017)
    logs = {str(log["logId"]): log for log in fixture_json(shared_fixtures, "fitbit/activities_list_log_page1.json")["activities"]}
    with_distance = next(r for r in result.records if r.get("activity_id") and logs[r["activity_id"]].get("distance"))
    log = logs[with_distance["activity_id"]]
    assert with_distance == {
        "startTime": log["startTime"], "duration": log["duration"], "distance": log["distance"],
        "distanceUnit": "Kilometer", "steps": log.get("steps", 0), "activityName": log["activityName"],
        "type": with_distance["type"], "duration_s": int(log["duration"] / 1000 + 0.5),
        "duration_min": int(log["duration"] / 60000 + 0.5), "distance_km": log["distance"],
        "activity_id": str(log["logId"]), "start": log["startTime"], "distance_m": int(log["distance"] * 1000 + 0.5),
        "calories_kcal": log["calories"], "avg_hr_bpm": log.get("averageHeartRate"), "log_type": log["logType"],
    }
    names = {r["activityName"]: r["type"] for r in result.records if "activityName" in r}
    assert names == {"Walk": "walk", "Run": "run", "Bike": "cycle", "Spinning": "cycle", "Outdoor Bike": "cycle"}


def test_expired_token_refresh_uses_basic_auth_and_form(shared_fixtures: Path) -> None:
    api = serve(FakeApi(), shared_fixtures)
    api.on("POST", "/oauth2/token", reply(200, fixture_bytes(shared_fixtures, "fitbit/oauth_token_response.json")))
    result = client(api).fetch(account(OAuthTokens("old", "old-refresh", NOW + 60)), JAN_2017)
    refresh = api.requests[0]
    assert refresh.url.path == "/oauth2/token"
    assert refresh.headers["authorization"] == "Basic " + base64.b64encode(b"cid:csecret").decode()
    assert parse_qs(refresh.content.decode()) == {"grant_type": ["refresh_token"], "refresh_token": ["old-refresh"]}
    assert result.refreshed_tokens == OAuthTokens("FAKE-FITBIT-ACCESS-TOKEN", "FAKE-FITBIT-REFRESH-TOKEN", NOW + 3600)
    assert all(r.headers["authorization"] == "Bearer FAKE-FITBIT-ACCESS-TOKEN" for r in api.requests[1:])


def test_401_expired_token_refreshes_once_for_both_requests(shared_fixtures: Path) -> None:
    api = serve(FakeApi(), shared_fixtures)
    steps_ok = api.routes[("GET", STEPS)][0]
    api.on("GET", STEPS, reply(401, fixture_bytes(shared_fixtures, "fitbit/error_401_expired_token.json")), steps_ok)
    api.on("POST", "/oauth2/token", reply(200, fixture_bytes(shared_fixtures, "fitbit/oauth_token_response.json")))
    result = client(api).fetch(account(), JAN_2017)
    assert [r.method for r in api.requests].count("POST") == 1  # single-use refresh token spent once
    assert result.refreshed_tokens is not None and len(result.records) > 0


def test_401_twice_is_a_clear_error_and_keeps_the_new_tokens(shared_fixtures: Path) -> None:
    api = FakeApi().on("GET", STEPS, reply(401, fixture_bytes(shared_fixtures, "fitbit/error_401_expired_token.json")))
    api.on("POST", "/oauth2/token", reply(200, fixture_bytes(shared_fixtures, "fitbit/oauth_token_response.json")))
    with pytest.raises(ProviderAuthError, match="401 after a token refresh") as raised:
        client(api).fetch(account(), JAN_2017)
    assert "FAKE-FITBIT" not in str(raised.value) and "live-" not in str(raised.value)
    assert raised.value.refreshed_tokens is not None
    assert raised.value.refreshed_tokens.refresh_token == "FAKE-FITBIT-REFRESH-TOKEN"


def test_refused_refresh_names_the_error_type_not_the_token(shared_fixtures: Path) -> None:
    api = FakeApi().on("POST", "/oauth2/token", reply(401, fixture_bytes(shared_fixtures, "fitbit/error_401_expired_token.json")))
    with pytest.raises(ProviderAuthError, match="token refresh failed — expired_token") as raised:
        client(api).fetch(account(OAuthTokens("", "old-refresh", None)), JAN_2017)
    assert "FAKE-FITBIT" not in str(raised.value)


def test_empty_steps_series(shared_fixtures: Path) -> None:
    api = FakeApi().on("GET", STEPS, reply(200, fixture_bytes(shared_fixtures, "fitbit/activities_steps_date_timeseries_empty.json")))
    api.on("GET", LIST, reply(200, {"activities": [], "pagination": {"next": ""}}))
    result = client(api).fetch(account(), JAN_2017)
    assert result.records == []


def test_same_logs_same_hash_changed_log_new_hash(shared_fixtures: Path) -> None:
    first = client(serve(FakeApi(), shared_fixtures)).fetch(account(), JAN_2017)
    again = client(serve(FakeApi(), shared_fixtures)).fetch(account(), JAN_2017)
    assert first.evidence_hash == again.evidence_hash
    page = fixture_json(shared_fixtures, "fitbit/activities_list_log_page1.json")
    page["activities"][3]["steps"] += 1
    api = serve(FakeApi(), shared_fixtures)
    api.on("GET", LIST, list_pages(json.dumps(page).encode()))
    assert client(api).fetch(account(), JAN_2017).evidence_hash != first.evidence_hash
