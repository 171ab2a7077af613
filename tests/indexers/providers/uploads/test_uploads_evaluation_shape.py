"""Every fixture upload gives records the fitness evaluator reads: a type it knows (or an honest
unknown one), a start with its UTC offset, the local day, and the numbers of the record."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from indexers.providers.uploads.detect import detect_and_parse
from streams.evaluation.activities import normalize_activity

UPLOADS = [
    ("apple_health/export.zip", "apple", None),
    ("apple_health/export_v3_2016_iphone6s_watch_sample.xml", "apple", None),
    ("garmin/garmin_connect_export_2010_forerunner310xt_run.tcx", "garmin", None),
    ("garmin/garmin_connect_export_2016_run_excerpt.gpx", "garmin", None),
    ("garmin/connect_activitylist_search_activities.json", "garmin", None),
    ("garmin/connect_activity_detail_2541953812.json", "garmin", None),
    ("google_fit/Takeout/Fit/Daily activity metrics/Daily activity metrics.csv", "googlefit", None),
    ("google_fit/daily_activity_metrics_2018-2021_format_excerpt.csv", "googlefit", None),
    ("google_fit/Takeout/Fit/All Sessions/2025-02-02T17_04_20.909+05_30_WALKING.json", "googlefit",
     "2025-02-02T17_04_20.909+05_30_WALKING.json"),
]
# record types the evaluator does not know, which it should drop rather than guess
UNKNOWN_TYPES = {"other", "multi_sport", "cross_country_skiing"}


@pytest.mark.parametrize(("relative", "provider", "file_name"), UPLOADS)
def test_records_normalize_for_the_evaluator(shared_fixtures: Path, relative: str, provider: str,
                                            file_name: str | None) -> None:
    parsed = detect_and_parse(shared_fixtures / relative, provider, file_name=file_name)
    assert parsed.records
    for record in parsed.records:
        start = datetime.fromisoformat(record["start"])
        assert start.utcoffset() is not None
        assert int(start.timestamp()) == record["start_ts"]
        activity = normalize_activity(record)
        if record["type"] in UNKNOWN_TYPES:
            assert activity is None
            continue
        assert activity is not None, record
        assert activity.start == start
        assert activity.day_key == (datetime.fromisoformat(record["date"]).date() if record["date"] else start.date())
        if record["steps"] is not None:
            assert activity.steps_count == record["steps"]
        if record["distance_m"] is not None:
            assert activity.distance_km == pytest.approx(record["distance_m"] / 1000)
        if record["calories_kcal"] is not None:
            assert activity.calories == record["calories_kcal"]
        if record["duration_s"] is not None:
            assert activity.duration_min == pytest.approx(record["duration_s"] / 60)
