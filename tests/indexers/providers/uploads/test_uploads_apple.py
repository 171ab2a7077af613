"""Apple Health export parsing: the real fixtures against a regex reading, and the shapes they lack."""

from __future__ import annotations

import hashlib
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest
from kits.uploads import BILLION_LAUGHS, element_attributes

from indexers.providers.uploads.detect import detect_and_parse
from indexers.providers.uploads.errors import MalformedUpload, UnsafeXml

METRES = {"km": 1000.0, "mi": 1609.344, "m": 1.0}


def _regex_day_totals(xml_text: str, hk_type: str) -> dict[str, float]:
    """Per startDate day: the sum of the values of one HK type, in steps or metres, up to the export date."""
    export_day = element_attributes(xml_text, "ExportDate")[0]["value"][:10]
    totals: dict[str, float] = defaultdict(float)
    for attrs in element_attributes(xml_text, "Record"):
        if attrs["type"] == hk_type and attrs["startDate"][:10] <= export_day:
            totals[attrs["startDate"][:10]] += float(attrs["value"]) * METRES.get(attrs.get("unit", ""), 1.0)
    return dict(totals)


def _by_id(records: list[dict]) -> dict[str, dict]:
    return {record["activity_id"]: record for record in records}


def test_export_zip_gives_the_daily_totals_of_the_real_export(shared_fixtures: Path) -> None:
    xml_text = (shared_fixtures / "apple_health" / "export_v8_2019_iphone_excerpt.xml").read_text()
    steps = _regex_day_totals(xml_text, "HKQuantityTypeIdentifierStepCount")
    metres = _regex_day_totals(xml_text, "HKQuantityTypeIdentifierDistanceWalkingRunning")

    parsed = detect_and_parse(shared_fixtures / "apple_health" / "export.zip", "apple")

    assert parsed.kind == "apple_health_zip"
    records = _by_id(parsed.records)
    assert {rid for rid in records if rid.startswith("day:steps:")} == {f"day:steps:{d}" for d in steps}
    for day, total in steps.items():
        assert records[f"day:steps:{day}"]["steps"] == round(total)
        assert records[f"day:distance:{day}"]["distance_m"] == pytest.approx(metres[day], abs=0.01)
    # the two samples dated 2030, after the export date, are left out
    assert parsed.skipped == 2
    assert not any(record["date"].startswith("2030") for record in parsed.records)


def test_day_records_carry_what_evaluation_needs(shared_fixtures: Path) -> None:
    parsed = detect_and_parse(shared_fixtures / "apple_health" / "export.zip", "apple", subject="0xAbC")
    steps_day = _by_id(parsed.records)["day:steps:2019-06-15"]
    assert steps_day["type"] == "steps"
    assert steps_day["start"] == "2019-06-15T00:00:00-04:00"  # local midnight with the export's offset
    assert steps_day["end"] == "2019-06-15T23:59:59-04:00"
    assert steps_day["start_ts"] == 1560571200
    assert steps_day["date"] == "2019-06-15"
    assert steps_day["period"] == "day"
    assert steps_day["source_device"] == "Ryan Phone"
    assert steps_day["user_id"] == "0x" + hashlib.sha256(b"0xAbC").hexdigest()
    distance_day = _by_id(parsed.records)["day:distance:2019-06-15"]
    assert distance_day["type"] == "distance" and distance_day["duration_s"] is None  # a day total is no activity


def test_workout_of_the_2016_export(shared_fixtures: Path) -> None:
    path = shared_fixtures / "apple_health" / "export_v3_2016_iphone6s_watch_sample.xml"
    workout_attrs = element_attributes(path.read_text(), "Workout")[0]

    parsed = detect_and_parse(path, "apple")

    assert parsed.kind == "apple_health_xml"
    workouts = [record for record in parsed.records if record["period"] == "activity"]
    assert len(workouts) == 1
    workout = workouts[0]
    assert workout["duration_s"] == round(float(workout_attrs["duration"]) * 60)
    assert workout["calories_kcal"] == pytest.approx(float(workout_attrs["totalEnergyBurned"]), abs=0.01)
    assert workout["distance_m"] == 0
    assert workout["start"] == "2016-04-02T10:40:38+01:00"
    assert workout["type"] == "other"


def _write(tmp_path: Path, body: str, name: str = "export.xml") -> Path:
    path = tmp_path / name
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n]>\n'
        f'<HealthData locale="en_US">\n<ExportDate value="2024-03-10 12:00:00 +0100"/>\n{body}\n</HealthData>\n'
    )
    return path


def _record(hk: str, source: str, start: str, end: str, value: str, unit: str) -> str:
    return (f'<Record type="HKQuantityTypeIdentifier{hk}" sourceName="{source}" unit="{unit}" '
            f'startDate="{start}" endDate="{end}" value="{value}"/>')


def test_ios16_workout_statistics_and_activities(tmp_path: Path) -> None:
    body = """
<Workout workoutActivityType="HKWorkoutActivityTypeCycling" duration="1.5" durationUnit="hr" sourceName="Watch"
  startDate="2024-03-09 08:00:00 +0100" endDate="2024-03-09 09:40:00 +0100">
  <MetadataEntry key="HKElevationAscended" value="41200 cm"/>
  <WorkoutActivity workoutActivityType="HKWorkoutActivityTypeCycling" startDate="2024-03-09 08:00:00 +0100">
    <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceCycling" sum="99" unit="km"/>
  </WorkoutActivity>
  <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceCycling" sum="31.5" unit="mi"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" sum="2092" unit="kJ"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" average="141" minimum="90" maximum="171" unit="count/min"/>
  <WorkoutRoute sourceName="Watch"><FileReference path="/workout-routes/route_1.gpx"/></WorkoutRoute>
</Workout>"""
    [workout] = detect_and_parse(_write(tmp_path, body), "apple").records
    assert workout["type"] == "cycle"
    assert workout["duration_s"] == 5400
    assert workout["distance_m"] == pytest.approx(31.5 * 1609.344, abs=0.01)  # the workout's, not the activity's
    assert workout["calories_kcal"] == pytest.approx(500, abs=0.01)
    assert workout["elev_gain_m"] == 412
    assert (workout["avg_hr_bpm"], workout["max_hr_bpm"]) == (141, 171)
    assert workout["start"] == "2024-03-09T08:00:00+01:00"


def test_overlapping_sources_count_once_and_correlations_do_not_count_twice(tmp_path: Path) -> None:
    body = "\n".join([
        _record("StepCount", "iPhone", "2024-03-09 10:00:00 +0100", "2024-03-09 10:10:00 +0100", "800", "count"),
        _record("StepCount", "iPhone", "2024-03-09 23:50:00 +0100", "2024-03-10 00:05:00 +0100", "100", "count"),
        _record("StepCount", "Watch", "2024-03-09 10:00:00 +0100", "2024-03-09 10:10:00 +0100", "850", "count"),
        _record("DistanceSwimming", "Watch", "2024-03-09 07:00:00 +0100", "2024-03-09 07:30:00 +0100", "1000", "yd"),
        _record("ActiveEnergyBurned", "Watch", "2024-03-09 07:00:00 +0100", "2024-03-09 07:30:00 +0100", "250", "Cal"),
        _record("HeartRate", "Watch", "2024-03-09 07:00:00 +0100", "2024-03-09 07:00:00 +0100", "99", "count/min"),
        '<Correlation type="HKCorrelationTypeIdentifierFood" sourceName="App" '
        'startDate="2024-03-09 12:00:00 +0100" endDate="2024-03-09 12:00:00 +0100">',
        _record("StepCount", "iPhone", "2024-03-09 12:00:00 +0100", "2024-03-09 12:01:00 +0100", "5000", "count"),
        "</Correlation>",
        _record("StepCount", "iPhone", "2024-03-11 09:00:00 +0100", "2024-03-11 09:01:00 +0100", "10", "count"),
    ])
    parsed = detect_and_parse(_write(tmp_path, body), "apple")
    records = _by_id(parsed.records)
    # the Watch's 850 counts where both recorded 10:00-10:10 (the Watch comes first), the iPhone's sample
    # nothing else covers counts too (crossing midnight, on its start day): 950, not the larger 900 alone
    assert records["day:steps:2024-03-09"]["steps"] == 950
    assert records["day:steps:2024-03-09"]["source_device"] == "Watch + iPhone"
    assert records["day:swim:2024-03-09"]["distance_m"] == pytest.approx(914.4)
    assert records["day:active_energy:2024-03-09"]["calories_kcal"] == 250
    assert "day:steps:2024-03-11" not in records  # after the export date
    assert parsed.skipped == 1


def test_billion_laughs_is_refused_before_expansion(billion_laughs_xml: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsafeXml, match="entity"):
        detect_and_parse(billion_laughs_xml, "apple")
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("apple_health_export/export.xml", BILLION_LAUGHS)
    with pytest.raises(UnsafeXml):
        detect_and_parse(zipped, "apple")


def test_parameter_entities_are_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE HealthData [<!ENTITY % p "<!ENTITY x \'y\'>"> %p;]>\n'
                    "<HealthData/>")
    with pytest.raises(UnsafeXml):
        detect_and_parse(path, "apple")


def test_broken_xml_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_text('<?xml version="1.0"?>\n<HealthData><Record type="x" value="1"></HealthData>')
    with pytest.raises(MalformedUpload, match="not well-formed"):
        detect_and_parse(path, "apple")


def test_unreadable_samples_are_skipped_not_fatal(tmp_path: Path) -> None:
    body = "\n".join([
        _record("StepCount", "iPhone", "2024-03-09T10:00:00Z", "2024-03-09 10:10:00 +0100", "800", "count"),
        _record("StepCount", "iPhone", "2024-03-09 10:00:00 +01:0", "2024-03-09 10:10:00 +0100", "800", "count"),
        _record("StepCount", "iPhone", "2024-02-30 10:00:00 +0100", "2024-02-30 10:10:00 +0100", "800", "count"),
        _record("StepCount", "iPhone", "2024-03-09 10:00:00 +0100", "2024-03-09 10:10:00 +0100", "many", "count"),
        _record("DistanceWalkingRunning", "iPhone", "2024-03-09 10:00:00 +0100", "2024-03-09 10:10:00 +0100",
                "3", "furlong"),
        _record("StepCount", "iPhone", "2024-03-09 11:00:00 +0100", "2024-03-09 11:10:00 +0100", "25.6", "count"),
    ])
    path = _write(tmp_path, body)
    path.write_text(path.read_text().replace("2024-03-10 12:00:00 +0100", "someday"))  # unreadable export date
    parsed = detect_and_parse(path, "apple")
    assert [(r["activity_id"], r["steps"]) for r in parsed.records] == [("day:steps:2024-03-09", 26)]
    assert parsed.skipped == 5
