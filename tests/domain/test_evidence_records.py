"""Impossible records are not evidence: what domain.evidence_records drops and why, and that no input makes
it raise."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.evidence_records import position_problem, record_problem, screen_records

GOOD: dict[str, Any] = {
    "activity_id": "gpx:1709276400", "type": "run", "start_ts": 1_709_276_400, "end_ts": 1_709_278_200,
    "duration_s": 1800, "distance_m": 5000.5, "elev_gain_m": 12, "steps": 5200, "avg_hr_bpm": 150.2,
    "max_hr_bpm": 181, "calories_kcal": 320.5, "start": "2024-03-01T07:00:00+00:00",
    "end": "2024-03-01T07:30:00+00:00", "date": None, "period": "activity",
}


def test_possible_records_pass_including_the_api_providers_shapes() -> None:
    assert record_problem(GOOD) is None
    assert record_problem({"dateTime": "2024-03-01", "value": "1234", "type": "steps", "steps": 1234}) is None
    assert record_problem({"match_id": "1", "start_time": 1_700_000_000, "duration": 2400, "kills": 3,
                           "deaths": 0, "assists": 11, "result_for_player": "win"}) is None
    assert record_problem({"match_id": "x", "start_time": 1_700_000_000, "end_time": 1_700_002_000,
                           "kills": None, "elo": -5}) is None  # an absent value and a field with no rule
    assert record_problem({**GOOD, "start_ts": GOOD["end_ts"]}) is None  # zero length is possible


@pytest.mark.parametrize(("change", "reason"), [
    ({"steps": -1}, "steps -1 is negative"),
    ({"duration_s": -60}, "duration_s -60 is negative"),
    ({"distance_m": -0.5}, "distance_m -0.5 is negative"),
    ({"calories_kcal": -3}, "calories_kcal -3 is negative"),
    ({"kills": -2}, "kills -2 is negative"),
    ({"steps": "12"}, "steps '12' is not a number"),
    ({"avg_hr_bpm": 301}, "avg_hr_bpm 301 is above 300"),
    ({"end_ts": 1_709_276_399}, "time running backwards"),
    ({"end": "2024-03-01T06:59:59+00:00"}, "time running backwards"),
    ({"start": "2024-03-01T09:00:00+02:00", "end": "2024-03-01T07:30:00+01:00"}, "time running backwards"),
    ({"start_ts": 4_102_444_800, "end_ts": 4_102_444_801}, "start_ts 4102444800 is outside 1970..2100"),
    ({"start_ts": -1}, "outside 1970..2100"),
    ({"start": "9999-12-31T23:59:59-23:59"}, "outside 1970..2100"),
    ({"steps": math.nan}, "NaN or infinite"),
    ({"distance_m": math.inf}, "NaN or infinite"),
    ({"type": "run\x00"}, "NUL"),
    ({"type": "\ud800"}, "surrogate"),
    ({"steps": 10**100}, "out of range"),
])
def test_impossible_records_are_named_with_the_reason(change: dict[str, Any], reason: str) -> None:
    problem = record_problem({**GOOD, **change})
    assert problem is not None and reason in problem


def test_screening_keeps_the_order_and_notes_each_dropped_record() -> None:
    records = [GOOD, {**GOOD, "activity_id": "b", "steps": -5}, "not an object", {**GOOD, "activity_id": "c"}]
    screened = screen_records(records)
    assert screened.kept == [GOOD, {**GOOD, "activity_id": "c"}]
    assert [str(note) for note in screened.dropped] == ["b: steps -5 is negative",
                                                        "#2: a record is a JSON object, got str"]


@pytest.mark.parametrize(("latitude", "longitude", "reason"), [
    (91.0, 0.0, "latitude 91.0 is outside ±90"), (-90.5, 0.0, "outside ±90"), (0.0, 999.0, "longitude 999.0"),
    (0.0, -180.01, "outside ±180"), (math.nan, 0.0, "not a finite number"), (0.0, math.inf, "not a finite"),
])
def test_impossible_positions(latitude: float, longitude: float, reason: str) -> None:
    problem = position_problem(latitude, longitude)
    assert problem is not None and reason in problem


def test_possible_positions() -> None:
    for latitude, longitude in ((90.0, 180.0), (-90.0, -180.0), (0.0, 0.0), (47.6, -122.3)):
        assert position_problem(latitude, longitude) is None


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
FIELD_VALUES = (st.none() | st.booleans() | st.integers(min_value=-(10**90), max_value=10**90) | st.floats()
                | st.text(max_size=40) | st.sampled_from(["2024-03-01T07:00:00Z", "9999-12-31T23:59:59-23:59",
                                                          "0001-01-01T00:00:00+23:59", "1" * 30, "", "nan"]))
RECORDS = st.fixed_dictionaries({}, optional={key: FIELD_VALUES for key in GOOD}) | JSONISH


@settings(max_examples=400, deadline=None)
@given(st.lists(RECORDS, max_size=6))
def test_no_record_makes_the_check_raise(records: list[Any]) -> None:
    screened = screen_records(records)
    assert len(screened.kept) + len(screened.dropped) == len(records)
    for record in screened.kept:
        assert record_problem(record) is None
