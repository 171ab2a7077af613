"""OpenDota, Riot and FACEIT clients against the real payloads served by a scripted API."""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

import pytest
from kits.providers import FakeApi, RecordedSleep, fixture_bytes, fixture_json, provider_http, reply

from indexers.providers.clients import (
    FaceitClient,
    LinkedAccount,
    OpenDotaClient,
    ProviderConfigError,
    ProviderRequestError,
    ProviderShapeError,
    ProviderUnavailableError,
    RiotClient,
    TimeWindow,
)
from indexers.providers.evidence_hash import ZERO_HASH
from indexers.providers.records import STEAM64_BASE

# --- OpenDota ------------------------------------------------------------------------------------

DOTA_ACCOUNT_ID = 101695162
DOTA_MATCHES = "opendota/players_101695162_matches_significant0_first40.json"
DOTA_NOW = 1536700000


def dota(api: FakeApi, api_key: str = "") -> OpenDotaClient:
    return OpenDotaClient(provider_http("opendota", api, RecordedSleep(), DOTA_NOW), base_url="https://od.test", api_key=api_key, clock=lambda: DOTA_NOW)


def dota_account() -> LinkedAccount:
    return LinkedAccount("0xabc", "opendota", external_id=str(STEAM64_BASE + DOTA_ACCOUNT_ID))


def test_opendota_matches_in_window_with_results(shared_fixtures: Path) -> None:
    matches = fixture_json(shared_fixtures, DOTA_MATCHES)
    window = TimeWindow(after=1535800000, before=1536400000)
    api = FakeApi().on("GET", f"/api/players/{DOTA_ACCOUNT_ID}/matches", reply(200, fixture_bytes(shared_fixtures, DOTA_MATCHES)))
    result = dota(api, api_key="od-key").fetch(dota_account(), window)

    inside = [m for m in matches if window.after <= m["start_time"] <= window.before]
    assert 0 < len(inside) < len(matches)
    assert [r["match_id"] for r in result.records] == [str(m["match_id"]) for m in inside]
    for record, match in zip(result.records, inside, strict=True):
        radiant = match["player_slot"] < 128
        assert record["result_for_player"] == ("win" if radiant == match["radiant_win"] else "loss")
        assert (record["kills"], record["deaths"], record["assists"]) == (match["kills"], match["deaths"], match["assists"])
        assert record["ranked"] == (match["lobby_type"] == 7)
    # `date` counts back from now to the window's start (the original counted the window's length)
    params = api.requests[0].url.params
    assert params["date"] == str(math.ceil((DOTA_NOW - window.after) / 86400)) and params["significant"] == "0"
    assert params["api_key"] == "od-key"


def test_opendota_non_array_is_a_shape_error(shared_fixtures: Path) -> None:
    body = fixture_bytes(shared_fixtures, "opendota/players_101695162_profile.json")
    api = FakeApi().on("GET", f"/api/players/{DOTA_ACCOUNT_ID}/matches", reply(200, body))
    with pytest.raises(ProviderShapeError) as raised:
        dota(api).fetch(dota_account(), TimeWindow(0, DOTA_NOW))
    assert raised.value.body == body


def test_opendota_requires_a_numeric_steam64() -> None:
    with pytest.raises(ProviderConfigError):
        dota(FakeApi()).fetch(LinkedAccount("0xabc", "opendota", external_id="not-a-number"), TimeWindow(0, 1))


def test_opendota_same_and_changed_matches(shared_fixtures: Path) -> None:
    matches = fixture_json(shared_fixtures, DOTA_MATCHES)
    window = TimeWindow(after=0, before=DOTA_NOW)
    api = FakeApi().on("GET", f"/api/players/{DOTA_ACCOUNT_ID}/matches", reply(200, matches))
    first, again = dota(api).fetch(dota_account(), window), dota(api).fetch(dota_account(), window)
    assert first.evidence_hash == again.evidence_hash
    matches[5]["kills"] += 1
    api.on("GET", f"/api/players/{DOTA_ACCOUNT_ID}/matches", reply(200, matches))
    assert dota(api).fetch(dota_account(), window).evidence_hash != first.evidence_hash


# --- Riot ----------------------------------------------------------------------------------------

RIOT_MATCH = "riot/match_v5_match_EUW1_6281337448.json"
RIOT_IDS_PATH_PREFIX = "/lol/match/v5/matches/by-puuid/"


def riot(api: FakeApi, sleep: RecordedSleep | None = None) -> RiotClient:
    return RiotClient(provider_http("riot", api, sleep or RecordedSleep()), base_url="https://europe.riot.test", api_key="RGAPI-secret")


def test_riot_ids_then_each_match(shared_fixtures: Path) -> None:
    match = fixture_json(shared_fixtures, RIOT_MATCH)
    ids = fixture_json(shared_fixtures, "riot/match_v5_ids_by_puuid_EUW1.json")
    puuid = match["metadata"]["participants"][3]
    api = FakeApi().on("GET", f"{RIOT_IDS_PATH_PREFIX}{puuid}/ids", reply(200, fixture_bytes(shared_fixtures, "riot/match_v5_ids_by_puuid_EUW1.json")))
    api.on("GET", "/lol/match/v5/matches/EUW1_6281337448", reply(200, fixture_bytes(shared_fixtures, RIOT_MATCH)))
    result = riot(api).fetch(LinkedAccount("0xabc", "riot", external_id=puuid), TimeWindow(1675000000, 1676000000))

    player = next(p for p in match["info"]["participants"] if p["puuid"] == puuid)
    assert result.records == [{
        "match_id": "EUW1_6281337448", "game_creation": match["info"]["gameCreation"],
        "game_duration": match["info"]["gameDuration"], "game_mode": "URF", "queue_id": 900, "queue_type": "QUEUE_900",
        "champion": player["championName"], "win": player["win"], "kills": player["kills"], "deaths": player["deaths"],
        "assists": player["assists"], "position": player["individualPosition"],
    }]
    # every listed id was asked for (the others 404 here and are skipped), with the key header
    assert len(api.requests) == 1 + len(ids)
    assert all(r.headers["x-riot-token"] == "RGAPI-secret" for r in api.requests)
    assert api.requests[0].url.params["startTime"] == "1675000000" and api.requests[0].url.params["count"] == "100"


def test_riot_pages_ids_past_100() -> None:
    first_page = [f"EUW1_{n}" for n in range(100)]

    def ids(request):  # type: ignore[no-untyped-def]
        return reply(200, first_page if request.url.params["start"] == "0" else ["EUW1_100"])

    api = FakeApi().on("GET", f"{RIOT_IDS_PATH_PREFIX}p/ids", ids)
    result = riot(api).fetch(LinkedAccount("0xabc", "riot", external_id="p"), TimeWindow(0, 1))
    id_requests = [r for r in api.requests if r.url.path.endswith("/ids")]
    assert [r.url.params["start"] for r in id_requests] == ["0", "100"]
    assert len(api.requests) == 2 + 101 and result.records == []


def test_riot_429_honours_retry_after_and_a_failing_match_fails_the_fetch(shared_fixtures: Path) -> None:
    headers = fixture_json(shared_fixtures, "riot/account_v1_by_riot_id_404.response_headers.json")
    assert any(k.lower() == "x-app-rate-limit" for k in headers.get("headers", headers))
    api = FakeApi().on("GET", f"{RIOT_IDS_PATH_PREFIX}p/ids", reply(429, {"status": {"status_code": 429}}, {"Retry-After": "3"}), reply(200, ["EUW1_1"]))
    api.on("GET", "/lol/match/v5/matches/EUW1_1", reply(503, b""))
    sleep = RecordedSleep()
    with pytest.raises(ProviderUnavailableError, match="HTTP 503 after 4 attempts"):
        riot(api, sleep).fetch(LinkedAccount("0xabc", "riot", external_id="p"), TimeWindow(0, 1))
    assert sleep.delays == [3.0, 1.0, 2.0, 4.0]


def test_riot_requires_the_api_key() -> None:
    client = RiotClient(provider_http("riot", FakeApi(), RecordedSleep()), base_url="https://x.test", api_key="")
    with pytest.raises(ProviderConfigError, match="LC_RIOT_API_KEY"):
        client.fetch(LinkedAccount("0xabc", "riot", external_id="p"), TimeWindow(0, 1))


def test_riot_match_without_info_is_a_shape_error(shared_fixtures: Path) -> None:
    match = fixture_json(shared_fixtures, RIOT_MATCH)
    del match["info"]
    api = FakeApi().on("GET", f"{RIOT_IDS_PATH_PREFIX}p/ids", reply(200, ["EUW1_6281337448"]))
    api.on("GET", "/lol/match/v5/matches/EUW1_6281337448", reply(200, match))
    with pytest.raises(ProviderShapeError, match="`info`"):
        riot(api).fetch(LinkedAccount("0xabc", "riot", external_id="p"), TimeWindow(0, 1))


# --- FACEIT --------------------------------------------------------------------------------------

FACEIT_WINDOW = TimeWindow(after=1771000000, before=1774000000)


def faceit(api: FakeApi) -> FaceitClient:
    return FaceitClient(provider_http("faceit", api, RecordedSleep()), base_url="https://faceit.test/data/v4", api_key="fc-key", page_limit=100)


def faceit_api(root: Path, stats_for: str | None = None) -> tuple[FakeApi, dict, dict]:
    player = fixture_json(root, "faceit/players_lookup_player_details.json")
    history = fixture_json(root, "faceit/players_history_cs2.json")
    api = FakeApi().on("GET", "/data/v4/players", reply(200, fixture_bytes(root, "faceit/players_lookup_player_details.json")))
    api.on("GET", f"/data/v4/players/{player['player_id']}/history", reply(200, fixture_bytes(root, "faceit/players_history_cs2.json")))
    if stats_for is not None:
        # The real stats payload belongs to another match: serve it as this match's stats, with the
        # first player of its first team standing in for our player.
        stats = copy.deepcopy(fixture_json(root, "faceit/matches_match_stats.json"))
        stats["rounds"][0]["match_id"] = stats_for
        stats["rounds"][0]["teams"][0]["players"][0]["player_id"] = player["player_id"]
        api.on("GET", f"/data/v4/matches/{stats_for}/stats", reply(200, stats))
    return api, player, history


def test_faceit_player_history_and_stats(shared_fixtures: Path) -> None:
    history = fixture_json(shared_fixtures, "faceit/players_history_cs2.json")
    first_id = history["items"][0]["match_id"]
    api, player, history = faceit_api(shared_fixtures, stats_for=first_id)
    result = faceit(api).fetch(LinkedAccount("0xabc", "faceit", external_id=player["steam_id_64"]), FACEIT_WINDOW)

    assert api.requests[0].url.params["game_player_id"] == player["steam_id_64"]
    assert all(r.headers["authorization"] == "Bearer fc-key" for r in api.requests)
    assert [r["match_id"] for r in result.records] == [i["match_id"] for i in history["items"]]
    item = history["items"][0]
    mine = "faction1" if any(p["player_id"] == player["player_id"] for p in item["teams"]["faction1"]["players"]) else "faction2"
    other = "faction2" if mine == "faction1" else "faction1"
    source_stats = fixture_json(shared_fixtures, "faceit/matches_match_stats.json")["rounds"][0]["teams"][0]["players"][0]["player_stats"]
    assert result.records[0] == {
        "match_id": first_id, "platform": "faceit", "start_time": item["started_at"], "end_time": item["finished_at"],
        "game_mode": item["competition_type"], "result_for_player": "win" if item["results"]["winner"] == mine else "loss",
        "player_team": item["teams"][mine]["nickname"], "opponent_team": item["teams"][other]["nickname"],
        "score": f"{item['results']['score']['faction1']}-{item['results']['score']['faction2']}",
        "duration_s": item["finished_at"] - item["started_at"], "ranked": True, "map": "de_inferno",
        "kills": int(source_stats["Kills"]), "deaths": int(source_stats["Deaths"]), "assists": int(source_stats["Assists"]),
        "headshots": int(source_stats["Headshots"]), "headshots_pct": float(source_stats["Headshots %"]),
        "kd_ratio": float(source_stats["K/D Ratio"]), "adr": float(source_stats["ADR"]), "mvps": int(source_stats["MVPs"]),
    }
    # matches whose stats 404 keep null stats
    assert result.records[1]["kills"] is None and result.records[1]["result_for_player"] in ("win", "loss")


def test_faceit_unknown_player_gives_no_records() -> None:
    api = FakeApi().on("GET", "/data/v4/players", reply(404, {"errors": [{"message": "not found"}]}))
    result = faceit(api).fetch(LinkedAccount("0xabc", "faceit", external_id="76561198000000404"), FACEIT_WINDOW)
    assert result.records == [] and result.evidence_hash == ZERO_HASH


def test_faceit_window_filters_history(shared_fixtures: Path) -> None:
    api, player, history = faceit_api(shared_fixtures)
    starts = sorted(i["started_at"] for i in history["items"])
    window = TimeWindow(after=starts[5], before=starts[14])
    result = faceit(api).fetch(LinkedAccount("0xabc", "faceit", external_id=player["steam_id_64"]), window)
    assert len(result.records) == 10
    params = api.requests[1].url.params
    assert (params["from"], params["to"], params["game"]) == (str(window.after), str(window.before), "cs2")


def test_faceit_stats_of_another_match_is_a_shape_error(shared_fixtures: Path) -> None:
    history = fixture_json(shared_fixtures, "faceit/players_history_cs2.json")
    api, player, _ = faceit_api(shared_fixtures)
    first_id = history["items"][0]["match_id"]
    api.on("GET", f"/data/v4/matches/{first_id}/stats", reply(200, fixture_bytes(shared_fixtures, "faceit/matches_match_stats.json")))
    with pytest.raises(ProviderShapeError, match="name another match"):
        faceit(api).fetch(LinkedAccount("0xabc", "faceit", external_id=player["steam_id_64"]), FACEIT_WINDOW)


def test_faceit_same_history_same_hash_changed_result_new_hash(shared_fixtures: Path) -> None:
    api, player, history = faceit_api(shared_fixtures)
    account = LinkedAccount("0xabc", "faceit", external_id=player["steam_id_64"])
    first, again = faceit(api).fetch(account, FACEIT_WINDOW), faceit(api).fetch(account, FACEIT_WINDOW)
    assert first.evidence_hash == again.evidence_hash != ZERO_HASH
    item = history["items"][2]
    item["results"]["winner"] = "faction1" if item["results"]["winner"] == "faction2" else "faction2"
    api.on("GET", f"/data/v4/players/{player['player_id']}/history", reply(200, history))
    assert faceit(api).fetch(account, FACEIT_WINDOW).evidence_hash != first.evidence_hash


def test_api_keys_stay_out_of_logs_and_errors(shared_fixtures: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="httpx")  # `lc` quiets httpx; an in-process CLI test may have run first
    api = FakeApi().on("GET", f"/api/players/{DOTA_ACCOUNT_ID}/matches", reply(500, b"down"))
    with pytest.raises(ProviderUnavailableError) as raised:
        dota(api, api_key="od-secret-key").fetch(dota_account(), TimeWindow(0, DOTA_NOW))
    assert api.requests[0].url.params["api_key"] == "od-secret-key"
    assert "od-secret-key" not in str(raised.value)
    assert "HTTP Request" in caplog.text and "api_key=***" in caplog.text
    assert "od-secret-key" not in caplog.text

    caplog.clear()
    riot_api = FakeApi().on("GET", f"{RIOT_IDS_PATH_PREFIX}p/ids", reply(403, {"status": {"message": "Forbidden"}}))
    with pytest.raises(ProviderRequestError, match="403") as denied:
        riot(riot_api).fetch(LinkedAccount("0xabc", "riot", external_id="p"), TimeWindow(0, 1))
    assert "RGAPI-secret" not in str(denied.value) and "RGAPI-secret" not in caplog.text


def test_riot_account_by_riot_id(shared_fixtures: Path) -> None:
    dto = fixture_json(shared_fixtures, "riot/account_v1_account_dto.json")
    api = FakeApi().on("GET", "/riot/account/v1/accounts/by-riot-id/Some Player/EUW", reply(200, fixture_bytes(shared_fixtures, "riot/account_v1_account_dto.json")))
    api.on("GET", "/riot/account/v1/accounts/by-riot-id/NonExistentName/XYZ.R", reply(404, fixture_bytes(shared_fixtures, "riot/account_v1_by_riot_id_404.json")))
    client = riot(api)
    assert client.account_by_riot_id("Some Player", "EUW") == {"puuid": dto["puuid"], "gameName": dto["gameName"], "tagLine": dto["tagLine"]}
    assert client.account_by_riot_id("NonExistentName", "XYZ.R") is None
    assert api.requests[0].url.raw_path.startswith(b"/riot/account/v1/accounts/by-riot-id/Some%20Player/EUW")
