"""Every provider's records carry what evaluation needs (spec/evaluation.md §8), per real fixture,
read back through the evaluator's own readers (streams.evaluation)."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path

import pytest
from kits.providers import fixture_json

from indexers.providers import records as r
from streams.evaluation.activities import normalize_activity
from streams.evaluation.matches import assists, deaths, is_loss, is_ranked, is_win, kills, match_time


def _offset_bearing(text: str) -> bool:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo is not None


@pytest.mark.parametrize(
    "fixture",
    ["strava/athlete_activities_page1.json", "strava/athlete_activities_after_before_2018-11.json",
     "strava/athlete_activities_mixed_sport_types_excerpt.json"],
)
def test_strava_records_have_type_start_duration_distance(shared_fixtures: Path, fixture: str) -> None:
    records = r.strava_records(fixture_json(shared_fixtures, fixture))
    assert records
    for record in records:
        assert _offset_bearing(record["start"])
        activity = normalize_activity(record)
        if record["type"] in ("alpineski", "backcountryski"):
            assert activity is None  # no evaluation type for skiing: the evaluator skips it by design
            continue
        assert activity is not None and activity.type == record["type"]
        assert activity.duration_min == record["duration_min"] and activity.distance_km == record["distance_km"]


def test_fitbit_steps_records_are_typed_daily_steps(shared_fixtures: Path) -> None:
    payload = fixture_json(shared_fixtures, "fitbit/activities_steps_date_timeseries_7d.json")
    records = r.fitbit_steps_records(payload)
    assert [rec["steps"] for rec in records] == [int(day["value"]) for day in payload["activities-steps"]]
    for record in records:
        activity = normalize_activity(record)
        assert activity is not None and activity.type == "steps" and activity.steps_count == record["steps"]
        assert activity.local_day is not None and activity.local_day.isoformat() == record["dateTime"]


def test_fitbit_activity_records_have_what_evaluation_needs(shared_fixtures: Path) -> None:
    payload = fixture_json(shared_fixtures, "fitbit/activities_list_log_page1.json")
    records = r.fitbit_activity_records(payload)
    assert len(records) == len(payload["activities"])
    for record, log in zip(records, payload["activities"], strict=True):
        assert _offset_bearing(record["start"]) and record["start"] == log["startTime"]
        assert record["steps"] == log.get("steps", 0) and record["duration_s"] == round(log["duration"] / 1000)
        activity = normalize_activity(record)
        assert activity is not None and activity.type in ("walk", "run", "cycle")
        assert activity.start == datetime.fromisoformat(log["startTime"].replace("Z", "+00:00"))
        assert activity.duration_min == record["duration_min"] and activity.steps_count == record["steps"]
        assert activity.distance_km == record["distance_km"]


def test_opendota_records_have_result_time_and_kda(shared_fixtures: Path) -> None:
    matches = fixture_json(shared_fixtures, "opendota/players_101695162_matches_significant0_first40.json")
    records = r.opendota_records(matches, after=0, before=2**31)
    assert len(records) == len(matches)
    for record, match in zip(records, matches, strict=True):
        assert is_win(record) != is_loss(record)
        assert match_time(record) is not None and record["duration"] == match["duration"]
        assert (kills(record), deaths(record), assists(record)) == (match["kills"], match["deaths"], match["assists"])
        assert is_ranked(record) == (match["lobby_type"] == 7)


def test_riot_records_have_result_time_kda_and_queue(shared_fixtures: Path) -> None:
    match = fixture_json(shared_fixtures, "riot/match_v5_match_EUW1_6281337448.json")
    for participant in match["info"]["participants"]:
        record = r.riot_record(match, participant["puuid"])
        assert record is not None
        assert is_win(record) == participant["win"] and is_loss(record) == (not participant["win"])
        assert match_time(record) is not None and record["game_duration"] == match["info"]["gameDuration"]
        assert kills(record) == participant["kills"] and deaths(record) == participant["deaths"]
        assert record["queue_type"] == "QUEUE_900" and not is_ranked(record)


def test_faceit_records_have_result_time_ranked_marker_and_stats(shared_fixtures: Path) -> None:
    player = fixture_json(shared_fixtures, "faceit/players_lookup_player_details.json")
    history = fixture_json(shared_fixtures, "faceit/players_history_cs2.json")
    stats_payload = copy.deepcopy(fixture_json(shared_fixtures, "faceit/matches_match_stats.json"))
    stats_player = stats_payload["rounds"][0]["teams"][1]["players"][2]
    stats_player["player_id"] = player["player_id"]
    stats = r.faceit_player_stats(stats_payload, player["player_id"])
    first = history["items"][0]["match_id"]
    records = r.faceit_records(history["items"], player["player_id"], {first: stats}, after=0, before=2**31)
    assert len(records) == len(history["items"])
    for record in records:
        assert is_win(record) != is_loss(record)
        assert match_time(record) is not None and record["duration_s"] > 0
        assert record["ranked"] is True and is_ranked(record)  # all matchmaking in this history
    with_stats = records[0]
    expected = stats_player["player_stats"]
    assert (kills(with_stats), deaths(with_stats), assists(with_stats)) == (
        int(expected["Kills"]), int(expected["Deaths"]), int(expected["Assists"]))
    assert with_stats["headshots"] == int(expected["Headshots"]) and with_stats["map"] == "de_inferno"


def test_faceit_player_in_neither_faction_gives_no_record(shared_fixtures: Path) -> None:
    history = fixture_json(shared_fixtures, "faceit/players_history_cs2.json")
    assert r.faceit_records(history["items"], "not-a-member", {}, after=0, before=2**31) == []


def test_faceit_match_details_roster_is_read_for_membership(shared_fixtures: Path) -> None:
    details = fixture_json(shared_fixtures, "faceit/matches_match_details.json")
    member = details["teams"]["faction2"]["roster"][0]["player_id"]
    record = r.faceit_record(details, member, None)
    assert record is not None
    assert record["player_team"] == details["teams"]["faction2"]["name"]
    assert record["opponent_team"] == details["teams"]["faction1"]["name"]
    assert record["result_for_player"] == ("win" if details["results"]["winner"] == "faction2" else "loss")
