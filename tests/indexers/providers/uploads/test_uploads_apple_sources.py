"""Apple daily totals across sources: overlapping samples count once, every other sample counts (issue 13.4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kits.uploads import element_attributes

from indexers.providers.uploads import apple_days
from indexers.providers.uploads.detect import detect_and_parse


def _export(tmp_path: Path, records: list[str], export_date: str = "2024-03-10 12:00:00 +0100") -> Path:
    path = tmp_path / "export.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n]>\n'
        f'<HealthData locale="en_US">\n<ExportDate value="{export_date}"/>\n' + "\n".join(records)
        + "\n</HealthData>\n")
    return path


def _steps(source: str, start: str, end: str, value: int) -> str:
    return (f'<Record type="HKQuantityTypeIdentifierStepCount" sourceName="{source}" unit="count" '
            f'startDate="2024-03-09 {start} +0100" endDate="2024-03-09 {end} +0100" value="{value}"/>')


def _day_steps(path: Path) -> dict:
    return next(r for r in detect_and_parse(path, "apple").records if r["activity_id"] == "day:steps:2024-03-09")


def test_phone_in_the_morning_and_watch_in_the_afternoon_both_count(tmp_path: Path) -> None:
    phone = [_steps("Ada’s iPhone", f"{h:02d}:00:00", f"{h:02d}:50:00", 600) for h in range(7, 12)]
    watch = [_steps("Ada’s Apple Watch", f"{h:02d}:00:00", f"{h:02d}:50:00", 700) for h in range(13, 18)]
    day = _day_steps(_export(tmp_path, phone + watch))
    # the original kept the larger source alone: 3,500 of 6,500
    assert day["steps"] == 3000 + 3500
    assert day["source_device"] == "Ada’s Apple Watch + Ada’s iPhone"


def test_where_sources_overlap_the_first_in_priority_counts(tmp_path: Path) -> None:
    records = [
        _steps("Ada’s iPhone", "10:00:00", "10:10:00", 800),
        _steps("Ada’s Apple Watch", "10:05:00", "10:15:00", 900),  # overlaps the phone's sample: the Watch counts
        _steps("Ada’s iPhone", "10:15:00", "10:20:00", 100),  # starts where the Watch's ends: no overlap
        _steps("Pedometer App", "10:19:00", "10:30:00", 400),  # overlaps the phone's last sample: dropped
        _steps("Pedometer App", "11:00:00", "11:00:00", 50),  # an instant nobody else covers
    ]
    assert _day_steps(_export(tmp_path, records))["steps"] == 900 + 100 + 50


def test_source_priority() -> None:
    ordered = sorted(["Zed App", "Ada’s iPhone", "Health", "NJR Apple Watch", "Ryan Phone"], key=apple_days.source_rank)
    assert ordered == ["NJR Apple Watch", "Ada’s iPhone", "Ryan Phone", "Health", "Zed App"]


def test_compaction_never_counts_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past COMPACT_AT samples, a key's samples merge; a lower-priority source can only lose steps by it."""
    monkeypatch.setattr(apple_days, "COMPACT_AT", 8)
    phone = [_steps("Ada’s iPhone", f"{9 + m // 60:02d}:{m % 60:02d}:00", f"{9 + m // 60:02d}:{m % 60:02d}:30", 10)
             for m in range(0, 120, 3)]  # 40 disjoint samples, 10 steps each
    watch = [_steps("Ada’s Apple Watch", "09:30:10", "09:30:20", 5)]
    exact = 400 - 10 + 5  # the Watch's sample overlaps one phone sample
    assert 5 <= _day_steps(_export(tmp_path, phone + watch))["steps"] <= exact
    alone = _day_steps(_export(tmp_path, phone))["steps"]
    assert alone == 400  # one source: merging keeps every value


def test_a_real_export_split_over_two_sources_counts_every_step_once(shared_fixtures: Path, tmp_path: Path) -> None:
    """The real 2019 iPhone samples of one day, as if a Watch had recorded the afternoon too (the same
    samples, overlapping the phone's) and the evening alone (the phone's evening samples moved to it)."""
    text = (shared_fixtures / "apple_health" / "export_v8_2019_iphone_excerpt.xml").read_text()
    day = "2019-06-15"
    samples = [a for a in element_attributes(text, "Record")
               if a["type"] == "HKQuantityTypeIdentifierStepCount" and a["startDate"].startswith(day)]
    true_total = sum(float(a["value"]) for a in samples)

    def hour(a: dict) -> int:
        return int(a["startDate"][11:13])

    def record(a: dict, source: str) -> str:
        return (f'<Record type="HKQuantityTypeIdentifierStepCount" sourceName="{source}" unit="count" '
                f'startDate="{a["startDate"]}" endDate="{a["endDate"]}" value="{a["value"]}"/>')

    phone = [record(a, "Ryan Phone") for a in samples if hour(a) < 17]
    watch = [record(a, "Ryan’s Apple Watch") for a in samples if hour(a) >= 12]  # overlaps the phone 12-17
    export_date = re.search(r'<ExportDate value="([^"]+)"', text).group(1)
    parsed = detect_and_parse(_export(tmp_path, phone + watch, export_date), "apple")
    steps_day = next(r for r in parsed.records if r["activity_id"] == f"day:steps:{day}")

    assert steps_day["steps"] == round(true_total)
    by_source = {"phone": sum(float(a["value"]) for a in samples if hour(a) < 17),
                 "watch": sum(float(a["value"]) for a in samples if hour(a) >= 12)}
    assert steps_day["steps"] > max(by_source.values())  # what keeping the largest source gave


def _naive_day_total(by_source: dict[str, list[tuple[float, float, float]]]) -> tuple[float, list[str]]:
    """The rule without shortcuts: each source in priority order counts what the ones before did not cover."""
    covered = apple_days._Covered()
    total, contributors = 0.0, []
    for source in sorted(by_source, key=apple_days.source_rank):
        counted = [v for s, e, v in by_source[source] if not covered.overlaps(s, e)]
        if counted:
            total += sum(counted)
            contributors.append(source)
        covered.add([(s, e) for s, e, _v in by_source[source]])
    return total, contributors


_SAMPLE = st.tuples(st.integers(0, 86_399), st.integers(0, 600), st.floats(0, 1e4, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["Ada’s Apple Watch", "Ada’s iPhone", "Strava", "Fitbod"]),
                       st.lists(_SAMPLE, min_size=1, max_size=30), min_size=1, max_size=4),
       st.sampled_from([0, 3600, -7200]))
def test_day_totals_shortcuts_agree_with_the_rule(samples: dict, shift: int) -> None:
    by_source = {source: sorted((float(s), float(s + d), v) for s, d, v in items) for source, items in samples.items()}
    expected = _naive_day_total(by_source)
    assert apple_days.day_total(by_source) == expected
    # one offset for every source: the times need no shift (whole seconds, all moved alike)
    shifted = {source: [(s - shift, e - shift, v) for s, e, v in items] for source, items in by_source.items()}
    assert apple_days.day_total(shifted) == expected
    if len(by_source) == 1:
        (source, triples), = by_source.items()
        flat = apple_days.array("d", [x for triple in triples for x in triple])
        assert apple_days.single_source_total(source, flat) == expected
