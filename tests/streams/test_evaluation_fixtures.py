"""Counting once on the real provider payloads of ../shared/fixtures (read in place; skipped when absent)."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from indexers.providers import records as provider_records
from indexers.providers.uploads.detect import detect_and_parse
from streams.evaluation import evaluate, parse_challenge_rule

STEPS_TOTAL = parse_challenge_rule({"rules": {"type": "fitness", "metric": "steps", "threshold": 0, "period": "total"}})


def load(shared_fixtures: Path, name: str) -> object:
    return json.loads((shared_fixtures / name).read_text())


def test_fitbit_steps_and_activity_logs(shared_fixtures: Path) -> None:
    """The 7-day steps series (2014) moved onto the first week of the activity log page (2017), as the
    collector would have fetched both for one week: values and logs are the real ones."""
    series = load(shared_fixtures, "fitbit/activities_steps_date_timeseries_7d.json")
    logs = load(shared_fixtures, "fitbit/activities_list_log_page1.json")
    first = date.fromisoformat(series["activities-steps"][0]["dateTime"])
    moved = copy.deepcopy(series)
    for day in moved["activities-steps"]:
        day["dateTime"] = (date(2017, 1, 1) + (date.fromisoformat(day["dateTime"]) - first)).isoformat()
    daily = provider_records.fitbit_steps_records(moved)
    week = provider_records.fitbit_activity_records(logs, before=int(datetime(2017, 1, 8).timestamp()))
    assert [r["dateTime"] for r in daily] == [f"2017-01-0{d}" for d in range(1, 8)]
    assert {r["startTime"][:10] for r in week} >= {"2017-01-01", "2017-01-05"}

    verdict = evaluate(STEPS_TOTAL, {"fitbit": daily + week})

    day_totals = {r["dateTime"]: r["steps"] for r in daily}
    activity_steps: dict[str, float] = {}
    for log in week:
        activity_steps[log["startTime"][:10]] = activity_steps.get(log["startTime"][:10], 0) + log["steps"]
    # each day: its total, unless the logged activities of the day add up to more (2017-01-05: a total of
    # 0 in the series, a 4,798-step walk in the log)
    expected = sum(max(day_totals[d], activity_steps.get(d, 0)) for d in day_totals)
    assert verdict.score == expected
    assert expected == sum(day_totals.values()) - day_totals["2017-01-05"] + activity_steps["2017-01-05"]
    assert verdict.score < sum(day_totals.values()) + sum(activity_steps.values())  # what adding up gave


def test_the_same_run_from_strava_and_garmin(shared_fixtures: Path, tmp_path: Path) -> None:
    """A real Strava run uploaded from a Garmin watch (`external_id: garmin_ping_...`), and that run as
    Garmin Connect lists it: the real Connect list entry of a run, given the Strava run's start and the
    distance and time Garmin measured (Strava recomputes them from the same track, so they differ a little)."""
    activities = load(shared_fixtures, "strava/athlete_activities_page1.json")
    strava_run = next(a for a in activities if str(a.get("external_id", "")).startswith("garmin_ping")
                      and a["sport_type"] == "Run")
    strava = provider_records.strava_records([strava_run])
    assert len(strava) == 1

    connect = load(shared_fixtures, "garmin/connect_activitylist_search_activities.json")
    garmin_entry = copy.deepcopy(next(a for a in connect if a["activityType"]["typeKey"] == "running"))
    start = datetime.fromisoformat(strava_run["start_date"].replace("Z", "+00:00"))
    local_offset = timedelta(seconds=strava_run["utc_offset"])
    garmin_entry.update(
        activityId=garmin_entry["activityId"] + 1,
        startTimeGMT=start.strftime("%Y-%m-%d %H:%M:%S"),
        startTimeLocal=(start + local_offset).strftime("%Y-%m-%d %H:%M:%S"),
        distance=strava_run["distance"] * 1.004, duration=strava_run["elapsed_time"] + 3,
        movingDuration=strava_run["moving_time"], elapsedDuration=strava_run["elapsed_time"] + 3,
        beginTimestamp=int(start.timestamp() * 1000),
    )
    upload = tmp_path / "activities.json"
    upload.write_text(json.dumps([garmin_entry]))
    garmin = detect_and_parse(upload, "garmin").records
    assert len(garmin) == 1 and garmin[0]["type"] == "run"

    km = strava_run["distance"] / 1000
    one_run = parse_challenge_rule({"rules": {"type": "fitness", "metric": "distance_km", "threshold": km * 1.5,
                                              "period": "total"}})
    both = evaluate(one_run, {"strava": strava, "garmin": garmin})
    assert both.pass_ is False  # one run, not two
    assert both.score == pytest.approx(garmin[0]["distance_m"] / 1000, abs=0.01)  # Garmin's, first in priority
    assert both.metadata["duplicates"] == 1
    alone = evaluate(one_run, {"strava": strava})
    assert (alone.pass_, alone.score) == (False, pytest.approx(km, abs=0.01))


def test_every_strava_run_of_a_page_against_itself_from_a_second_provider(shared_fixtures: Path) -> None:
    """A page of 30 real activities, and the same page delivered again under another provider name."""
    strava = provider_records.strava_records(load(shared_fixtures, "strava/athlete_activities_page1.json"))
    total = parse_challenge_rule({"rules": {"type": "fitness", "metric": "distance_km", "threshold": 0,
                                            "period": "total"}})
    once = evaluate(total, {"strava": strava})
    again = evaluate(total, {"strava": strava, "googlefit": copy.deepcopy(strava)})
    assert again.score == once.score
    assert again.metadata["duplicates"] == len(strava)


def test_the_apple_export_with_its_workout_counts_each_step_once(shared_fixtures: Path) -> None:
    parsed = detect_and_parse(shared_fixtures / "apple_health" / "export.zip", "apple")
    days = [r for r in parsed.records if r["period"] == "day" and r["type"] == "steps"]
    workout = {"provider": "apple_health", "activity_id": "workout:walk", "type": "walk", "period": "activity",
               "start": days[0]["start"].replace("T00:00:00", "T09:00:00"),
               "end": days[0]["start"].replace("T00:00:00", "T09:30:00"), "steps": 2500, "duration_s": 1800}
    assert days[0]["steps"] > workout["steps"]
    verdict = evaluate(STEPS_TOTAL, {"apple_health": parsed.records + [workout]})
    assert verdict.score == sum(r["steps"] for r in days)
