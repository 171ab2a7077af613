"""Google Fit Takeout: sessions, daily metrics CSVs (both column orders), and a whole Takeout ZIP."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from indexers.providers.uploads.detect import detect_and_parse

FIT = Path("google_fit") / "Takeout" / "Fit"
SUMMARY = FIT / "Daily activity metrics" / "Daily activity metrics.csv"
OLD_SUMMARY = Path("google_fit") / "daily_activity_metrics_2018-2021_format_excerpt.csv"


def _csv_days(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="") as stream:
        return {row["Date"]: (row["Step count"], row["Distance (m)"]) for row in csv.DictReader(stream)}


@pytest.mark.parametrize("relative", [SUMMARY, OLD_SUMMARY])
def test_daily_metrics_csv(shared_fixtures: Path, relative: Path) -> None:
    path = shared_fixtures / relative
    days = _csv_days(path)

    parsed = detect_and_parse(path, "googlefit")

    assert parsed.kind == "googlefit_daily_csv"
    records = {record["activity_id"]: record for record in parsed.records}
    for day, (steps, metres) in days.items():
        if steps:
            assert records[f"day:steps:{day}"]["steps"] == round(float(steps))
        else:
            assert f"day:steps:{day}" not in records
        if metres:
            assert records[f"day:distance:{day}"]["distance_m"] == pytest.approx(float(metres), abs=0.01)
    assert sum(r["steps"] for r in parsed.records if r["type"] == "steps") == sum(
        round(float(steps)) for steps, _ in days.values() if steps)
    assert all(r["period"] == "day" and r["date"] for r in parsed.records)


def test_session_files(shared_fixtures: Path) -> None:
    for path in sorted((shared_fixtures / FIT / "All Sessions").glob("*.json")):
        session = json.loads(path.read_text())
        metrics = {a["metricName"]: a.get("intValue", a.get("floatValue")) for a in session["aggregate"]}
        offset = path.name.split("+", 1)[1][:5].replace("_", ":")

        parsed = detect_and_parse(path, "googlefit", file_name=path.name)

        [record] = parsed.records
        assert parsed.kind == "googlefit_session_json"
        assert record["type"] == "walk"
        assert record["steps"] == metrics["com.google.step_count.delta"]
        assert record["distance_m"] == pytest.approx(metrics["com.google.distance.delta"], abs=0.01)
        assert record["calories_kcal"] == pytest.approx(metrics["com.google.calories.expended"], abs=0.01)
        assert record["duration_s"] == round(float(session["duration"].rstrip("s")))
        assert record["start"].endswith("+" + offset)  # the local offset from the file name
        assert record["start"][:10] == path.name[:10]


def test_per_day_file_alone(shared_fixtures: Path) -> None:
    path = shared_fixtures / FIT / "Daily activity metrics" / "2025-02-02.csv"
    with path.open(newline="") as stream:
        steps = sum(float(row["Step count"]) for row in csv.DictReader(stream) if row["Step count"])
    parsed = detect_and_parse(path, "googlefit", file_name=path.name)
    [record] = [r for r in parsed.records if r["type"] == "steps"]
    assert record["steps"] == round(steps)
    assert record["start"] == "2025-02-02T00:00:00+05:30"


def test_takeout_zip(shared_fixtures: Path, tmp_path: Path) -> None:
    takeout = tmp_path / "takeout-20250301.zip"
    with zipfile.ZipFile(takeout, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((shared_fixtures / "google_fit" / "Takeout").rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(shared_fixtures / "google_fit"))
    days = _csv_days(shared_fixtures / SUMMARY)

    parsed = detect_and_parse(takeout, "googlefit")

    assert parsed.kind == "googlefit_takeout_zip"
    day_steps = {r["date"]: r for r in parsed.records if r["type"] == "steps" and r["period"] == "day"}
    assert set(day_steps) == {day for day, (steps, _) in days.items() if steps}  # the summary, not the day file too
    assert day_steps["2025-02-02"]["steps"] == int(days["2025-02-02"][0])
    assert day_steps["2025-02-02"]["start"] == "2025-02-02T00:00:00+05:30"  # offset learnt from 2025-02-02.csv
    assert day_steps["2025-01-29"]["start"] == "2025-01-29T00:00:00+00:00"  # no per-day file: UTC
    assert len([r for r in parsed.records if r["period"] == "activity"]) == 3
