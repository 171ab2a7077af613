"""Garmin TCX, GPX and Connect JSON: the real fixtures against independent readings."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path

import pytest
from kits.uploads import EXTERNAL_ENTITY_GPX

from indexers.providers.uploads.detect import detect_and_parse
from indexers.providers.uploads.errors import MalformedUpload, UnsafeXml

TCX_FILES = ("garmin_connect_export_2010_forerunner310xt_run.tcx", "garmin_connect_export_2022_vivoactive_hr_sup.tcx")
LAP_TOTALS = re.compile(r"<Lap StartTime=\"[^\"]+\">\s*<TotalTimeSeconds>([\d.]+)</TotalTimeSeconds>\s*"
                        r"<DistanceMeters>([\d.]+)</DistanceMeters>")


@pytest.mark.parametrize("file_name", TCX_FILES)
def test_tcx_totals_are_the_laps_totals(shared_fixtures: Path, file_name: str) -> None:
    path = shared_fixtures / "garmin" / file_name
    text = path.read_text()
    laps = [(float(seconds), float(metres)) for seconds, metres in LAP_TOTALS.findall(text)]
    calories = sum(float(value) for value in re.findall(r"<Calories>([\d.]+)</Calories>", text))
    activity_id = re.search(r"<Id>([^<]+)</Id>", text).group(1)  # type: ignore[union-attr]
    last_time = re.findall(r"<Time>([^<]+)</Time>", text)[-1]

    parsed = detect_and_parse(path, "garmin")

    assert parsed.kind == "garmin_tcx"
    [record] = parsed.records
    assert record["duration_s"] == round(sum(seconds for seconds, _ in laps))
    assert record["distance_m"] == pytest.approx(sum(metres for _, metres in laps), abs=0.01)
    assert record["calories_kcal"] == calories
    assert record["start"] == datetime.fromisoformat(activity_id.replace("Z", "+00:00")).isoformat(timespec="seconds")
    assert record["end"] == datetime.fromisoformat(last_time.replace("Z", "+00:00")).isoformat(timespec="seconds")
    assert record["period"] == "activity"


def test_tcx_sport_and_heart_rate(shared_fixtures: Path) -> None:
    run = detect_and_parse(shared_fixtures / "garmin" / TCX_FILES[0], "garmin").records[0]
    paddle = detect_and_parse(shared_fixtures / "garmin" / TCX_FILES[1], "garmin").records[0]
    assert run["type"] == "run"
    assert paddle["type"] == "other"  # Sport="Other": not claimed to be a walk
    text = (shared_fixtures / "garmin" / TCX_FILES[1]).read_text()
    maxima = [float(v) for v in re.findall(r"<MaximumHeartRateBpm>\s*<Value>(\d+)</Value>", text)]
    steps = sum(int(v) for v in re.findall(r"<ns3:Steps>(\d+)</ns3:Steps>", text))
    assert paddle["max_hr_bpm"] == max(maxima)
    assert paddle["steps"] == steps


def _haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def test_gpx_distance_time_and_heart_rate(shared_fixtures: Path) -> None:
    path = shared_fixtures / "garmin" / "garmin_connect_export_2016_run_excerpt.gpx"
    text = path.read_text()
    points = [(float(lat), float(lon)) for lat, lon in re.findall(r'<trkpt lat="([^"]+)" lon="([^"]+)"', text)]
    times = re.findall(r"<trkpt[^>]*>\s*<ele>[^<]*</ele>\s*<time>([^<]+)</time>", text)
    heart = [float(v) for v in re.findall(r"<ns3:hr>([\d.]+)</ns3:hr>", text)]
    metres = sum(_haversine(a, b) for a, b in zip(points, points[1:], strict=False))

    [record] = detect_and_parse(path, "garmin").records

    assert record["type"] == "run"
    assert record["distance_m"] == pytest.approx(metres, abs=0.01)
    start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (times[0], times[-1]))
    assert record["duration_s"] == (end - start).total_seconds()
    assert record["start"] == start.isoformat(timespec="seconds")
    assert record["avg_hr_bpm"] == pytest.approx(sum(heart) / len(heart), abs=0.05)
    assert record["max_hr_bpm"] == max(heart)


def test_gpx_segments_are_not_joined(tmp_path: Path) -> None:
    path = tmp_path / "two_segments.gpx"
    path.write_text("""<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
<trk><type>hiking</type>
<trkseg><trkpt lat="46.0" lon="8.0"><ele>100</ele><time>2024-05-01T08:00:00Z</time></trkpt>
<trkpt lat="46.001" lon="8.0"><ele>150</ele><time>2024-05-01T08:10:00Z</time></trkpt></trkseg>
<trkseg><trkpt lat="46.1" lon="8.0"><ele>140</ele><time>2024-05-01T10:00:00Z</time></trkpt>
<trkpt lat="46.101" lon="8.0"><ele>160</ele><time>2024-05-01T10:10:00Z</time></trkpt></trkseg>
</trk></gpx>""")
    [record] = detect_and_parse(path, "garmin").records
    one_segment = _haversine((46.0, 8.0), (46.001, 8.0))
    assert record["distance_m"] == pytest.approx(2 * one_segment, abs=0.01)
    assert record["type"] == "hike"
    assert record["elev_gain_m"] == 70


def test_connect_activity_list(shared_fixtures: Path) -> None:
    path = shared_fixtures / "garmin" / "connect_activitylist_search_activities.json"
    activities = json.loads(path.read_text())

    parsed = detect_and_parse(path, "garmin")

    assert parsed.kind == "garmin_connect_json"
    records = {record["activity_id"]: record for record in parsed.records}
    assert len(records) == len(activities)
    for activity in activities:
        record = records[f"connect:{activity['activityId']}"]
        assert record["distance_m"] == pytest.approx(activity["distance"], abs=0.01)
        assert record["duration_s"] == round(activity["duration"])
        assert record["calories_kcal"] == activity["calories"]
        assert record["steps"] == activity["steps"]
        local = activity["startTimeLocal"].replace(" ", "T")
        assert record["start"].startswith(local)  # local wall time, with its offset appended
        assert record["start_ts"] == int(datetime.fromisoformat(activity["startTimeGMT"] + "+00:00").timestamp())
    assert [records[f"connect:{a['activityId']}"]["type"] for a in activities] == ["walk", "multi_sport", "run"]
    assert records["connect:6585943400"]["start"] == "2021-04-11T07:48:33+02:00"


def test_connect_activity_detail(shared_fixtures: Path) -> None:
    path = shared_fixtures / "garmin" / "connect_activity_detail_2541953812.json"
    summary = json.loads(path.read_text())["summaryDTO"]
    [record] = detect_and_parse(path, "garmin").records
    assert record["start"] == "2018-03-08T12:23:22+01:00"
    assert record["distance_m"] == pytest.approx(summary["distance"], abs=0.01)
    assert record["elev_gain_m"] == summary["elevationGain"]
    assert record["type"] == "cross_country_skiing"


def test_daily_steps_json_both_spellings(tmp_path: Path) -> None:
    path = tmp_path / "steps.json"
    path.write_text(json.dumps([{"calendarDate": "2024-06-01", "totalSteps": 12034, "stepGoal": 8000},
                                {"date": "2024-06-02", "steps": 4000}]))
    records = detect_and_parse(path, "garmin").records
    assert [(r["date"], r["steps"], r["type"], r["period"]) for r in records] == [
        ("2024-06-01", 12034, "steps", "day"), ("2024-06-02", 4000, "steps", "day")]


def test_garmin_refuses_unsafe_and_broken_files(tmp_path: Path) -> None:
    gpx = tmp_path / "x.gpx"
    gpx.write_text(EXTERNAL_ENTITY_GPX)
    with pytest.raises(UnsafeXml):
        detect_and_parse(gpx, "garmin")
    broken = tmp_path / "x.json"
    broken.write_text('[{"activityId": 1,')
    with pytest.raises(MalformedUpload):
        detect_and_parse(broken, "garmin")
