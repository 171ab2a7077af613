"""The evidence hash (spec/evidence.md §4.3): every test vector, JS number formatting and sorting."""

from __future__ import annotations

import pytest

from indexers.providers import records as r
from indexers.providers.evidence_hash import (
    ZERO_HASH,
    canonical_json,
    evidence_hash,
    js_number,
    js_stringify,
    keccak256_hex,
    locale_sorted,
)

# Example payloads of spec/evidence.md §9 (written out here, they are the spec's own examples).
STRAVA_9_1 = [
    {"id": 12345678902, "name": "Evening Ride", "type": "Ride", "sport_type": "GravelRide",
     "start_date": "2025-09-12T16:05:00Z", "elapsed_time": 4000, "moving_time": 3600,
     "distance": 30000.0, "total_elevation_gain": 250.5, "average_speed": 8.333, "trainer": False, "manual": False},
    {"id": 12345678901, "name": "Morning Run", "type": "Run", "sport_type": "Run",
     "start_date": "2025-09-10T05:30:12Z", "elapsed_time": 3100, "moving_time": 3012,
     "distance": 10234.7, "total_elevation_gain": 42.4, "average_heartrate": 151.3,
     "max_heartrate": 178, "average_speed": 3.398, "trainer": False, "manual": False},
    {"id": 12345678903, "name": "Treadmill", "type": "Run", "sport_type": "Run",
     "start_date": "2025-09-11T05:30:12Z", "elapsed_time": 1800, "moving_time": 1800,
     "distance": 5000, "total_elevation_gain": 0, "average_speed": 2.778, "trainer": True, "manual": False},
]
FITBIT_STEPS_9_2 = {"activities-steps": [{"dateTime": "2025-09-10", "value": "12034"}, {"dateTime": "2025-09-11", "value": "0"}]}
FITBIT_LIST_9_2 = {"activities": [
    {"logId": 71234567890, "activityName": "Run", "activityTypeId": 90009,
     "startTime": "2025-09-10T07:30:00.000+02:00", "duration": 1805000,
     "distance": 5.012, "distanceUnit": "Kilometer", "steps": 5210, "calories": 410},
    {"logId": 71234567891, "activityName": "Outdoor Bike", "activityTypeId": 90001,
     "startTime": "2025-09-11T18:02:10.000+02:00", "duration": 3600000,
     "distance": 12.5, "distanceUnit": "Mile", "calories": 600}]}
OPENDOTA_9_3 = [
    {"match_id": 8000000002, "player_slot": 130, "radiant_win": True, "duration": 2400, "game_mode": 22,
     "lobby_type": 7, "hero_id": 14, "start_time": 1757500000, "kills": 3, "deaths": 7, "assists": 12},
    {"match_id": 8000000001, "player_slot": 2, "radiant_win": True, "duration": 1980, "game_mode": 22,
     "lobby_type": 0, "hero_id": 8, "start_time": 1757400000, "kills": 11, "deaths": 2, "assists": 9},
]
RIOT_9_4 = {"metadata": {"dataVersion": "2", "matchId": "EUW1_7012345678", "participants": ["puuid-a", "puuid-b"]},
            "info": {"gameCreation": 1757520000000, "gameDuration": 1834, "gameMode": "CLASSIC", "queueId": 420,
                     "participants": [
                         {"puuid": "puuid-a", "championName": "Ahri", "win": True, "kills": 8, "deaths": 3,
                          "assists": 11, "teamId": 100, "individualPosition": "MIDDLE"},
                         {"puuid": "puuid-b", "championName": "Zed", "win": False, "kills": 5, "deaths": 7,
                          "assists": 2, "teamId": 200, "individualPosition": "MIDDLE"}]}}

STRAVA_SORTED_JSON = (
    '[{"activity_id":"12345678901","type":"run","start":"2025-09-10T05:30:12Z","distance_m":10235,'
    '"distance_km":10.2347,"duration_s":3012,"duration_min":50,"elev_gain_m":42,"avg_hr_bpm":151.3,'
    '"max_hr_bpm":178,"avg_speed_kmh":12.2},{"activity_id":"12345678902","type":"cycle",'
    '"start":"2025-09-12T16:05:00Z","distance_m":30000,"distance_km":30,"duration_s":3600,"duration_min":60,'
    '"elev_gain_m":251,"avg_hr_bpm":null,"max_hr_bpm":null,"avg_speed_kmh":30}]'
)


def test_strava_vector_from_the_example_payload() -> None:
    records = r.strava_records(STRAVA_9_1)
    assert [rec["activity_id"] for rec in records] == ["12345678902", "12345678901"]  # trainer dropped, API order kept
    assert canonical_json("strava", records) == STRAVA_SORTED_JSON
    assert evidence_hash("strava", records) == "0x4fc18a5d7551d5d616c41e7c76c6d0f1a17959393ef8c74a94304a7ea3fdd094"


def test_opendota_vector_from_the_example_payload() -> None:
    records = r.opendota_records(OPENDOTA_9_3, after=1757376000, before=1757980800)
    assert canonical_json("opendota", records) == (
        '[{"match_id":"8000000001","start_time":1757400000,"duration":1980,"game_mode":22,"lobby_type":0,'
        '"hero_id":8,"kills":11,"deaths":2,"assists":9,"result_for_player":"win","ranked":false},'
        '{"match_id":"8000000002","start_time":1757500000,"duration":2400,"game_mode":22,"lobby_type":7,'
        '"hero_id":14,"kills":3,"deaths":7,"assists":12,"result_for_player":"loss","ranked":true}]'
    )
    assert evidence_hash("opendota", records) == "0x3e1c85046ec4d697bb79188f7dcb586d1217c734db503b9b7dff9e5500ead3e4"


def test_riot_vector_from_the_example_payload() -> None:
    record = r.riot_record(RIOT_9_4, "puuid-a")
    assert record is not None
    assert evidence_hash("riot", [record]) == "0xeb86afeceb1ac8c1ad08e77b9a7249f5093c1a46f5f66e2aa9071f05b9c2e8fc"
    assert r.riot_record(RIOT_9_4, "someone-else") is None


def test_faceit_vector_literal_record() -> None:
    record = {"match_id": "1-aaaa", "platform": "faceit", "start_time": 1757500000, "end_time": 1757502400,
              "game_mode": "5v5", "result_for_player": "win", "player_team": "team_A", "opponent_team": "team_B",
              "score": "13-9"}
    assert evidence_hash("faceit", [record]) == "0x29963bc425938bd1692c89ea267184e79f8540361c96809720ae7de236c2f588"


def test_faceit_records_in_original_shape_reproduce_the_vector() -> None:
    item = {"match_id": "1-aaaa", "competition_type": "5v5", "started_at": 1757500000, "finished_at": 1757502400,
            "teams": {"faction1": {"nickname": "team_A", "players": [{"player_id": "p"}]},
                      "faction2": {"nickname": "team_B", "players": [{"player_id": "q"}]}},
            "results": {"winner": "faction1", "score": {"faction1": 13, "faction2": 9}}}
    record = r.faceit_record(item, "p", None)
    assert record is not None
    assert evidence_hash("faceit", [r.original_shape(record, "faceit")]) == (
        "0x29963bc425938bd1692c89ea267184e79f8540361c96809720ae7de236c2f588"
    )


def test_fitbit_vector_from_the_example_payloads_in_original_shape() -> None:
    steps = r.fitbit_steps_records(FITBIT_STEPS_9_2)
    activities = r.fitbit_activity_records(FITBIT_LIST_9_2)
    original = [r.original_shape(s, "fitbit_steps") for s in steps] + [
        r.original_shape(a, "fitbit_activity") for a in activities
    ]
    assert original[3]["distance_km"] == 20.11675 and original[3]["steps"] == 0
    assert evidence_hash("fitbit", original) == "0xe1f023fbd6b93ed431fdb0dbeabd033e23a59a84592dc81b01fb0ae4f8250670"
    # the published records (with the added fields) hash differently, and stably
    published = steps + activities
    assert evidence_hash("fitbit", published) != evidence_hash("fitbit", original)
    assert evidence_hash("fitbit", published) == evidence_hash("fitbit", list(reversed(published)))


def test_empty_records_give_the_zero_hash() -> None:
    assert evidence_hash("strava", []) == ZERO_HASH == "0x" + "0" * 64
    assert keccak256_hex(b"[]") == "0x518674ab2b227e5f11e9084f615d57663cde47bce1ba168b4c19c7ee22a73d70"


@pytest.mark.parametrize(
    ("value", "text"),
    [(30.0, "30"), (10.2347, "10.2347"), (1e-7, "1e-7"), (1e-6, "0.000001"), (0.1, "0.1"), (1e21, "1e+21"),
     (123456789012345680000.0, "123456789012345680000"), (-2.5, "-2.5"), (-0.0, "0"), (float("nan"), "null"),
     (float("inf"), "null"), (20.11675, "20.11675"), (1.5e-7, "1.5e-7"), (5e-324, "5e-324")],
)
def test_js_number_formatting(value: float, text: str) -> None:
    assert js_number(value) == text


def test_js_stringify_strings_and_nesting() -> None:
    assert js_stringify({"a": "é/\"\n", "b": [1, 2.0, None, True], "c": {}}) == '{"a":"é/\\"\\n","b":[1,2,null,true],"c":{}}'


@pytest.mark.parametrize(("value", "rounded"), [(250.5, 251), (-2.5, -2), (2.4999, 2), (-2.6, -3), (0.5, 1)])
def test_js_round_halves_go_up(value: float, rounded: int) -> None:
    assert r.js_round(value) == rounded


def test_locale_sort_orders_like_icu() -> None:
    keys = ["1-abc", "1_abc", "9", "10", "B", "a", "b", "A", ":x", "2025-09-10T07:30:00.000+02:00", "2025-09-10"]
    ordered = [rec["k"] for rec in locale_sorted([{"k": k} for k in keys], lambda rec: rec["k"])]
    assert ordered == [":x", "1_abc", "1-abc", "10", "2025-09-10", "2025-09-10T07:30:00.000+02:00", "9", "a", "A", "b", "B"]


def test_sort_is_stable_for_equal_keys() -> None:
    records = [{"dateTime": "2025-09-10", "n": 1}, {"dateTime": "2025-09-10", "n": 2}]
    assert [rec["n"] for rec in locale_sorted(records, lambda rec: rec["dateTime"])] == [1, 2]
