"""The evidence limits every stage applies alike (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.evidence import (
    MAX_DATA_BYTES,
    MAX_EVENT_BYTES,
    MAX_FIELD_CHARS,
    MAX_RECORDS,
    EvidenceTooLarge,
    check_size,
    parse,
)


def payload(**changes: Any) -> dict[str, Any]:
    base = {"challenge_id": 1, "subject": "0xabc", "provider": "apple", "records_json": "[]",
            "evidence_hash": "0x01", "raw_ref": None}
    return {**base, **changes}


def test_ten_years_of_daily_totals_fit() -> None:
    ten_years = 3653 * 5 + 3653  # five daily kinds and a workout a day, about 0.5 KB a record
    check_size(ten_years, ten_years * 520)
    assert ten_years <= MAX_RECORDS and MAX_EVENT_BYTES > MAX_DATA_BYTES


@pytest.mark.parametrize(("count", "size", "reason"), [
    (MAX_RECORDS + 1, 0, f"{MAX_RECORDS + 1} records exceed the limit of {MAX_RECORDS}"),
    (1, MAX_DATA_BYTES + 1, f"records of {MAX_DATA_BYTES + 1} bytes exceed the limit of {MAX_DATA_BYTES}"),
])
def test_more_is_refused(count: int, size: int, reason: str) -> None:
    with pytest.raises(EvidenceTooLarge, match=reason):
        check_size(count, size)


def test_parse_applies_the_same_limits() -> None:
    fact, records = parse(payload(records_json=json.dumps([{"steps": 1}] * MAX_RECORDS)), 5)
    assert len(records) == MAX_RECORDS and fact.occurred_at == 5
    with pytest.raises(EvidenceTooLarge):
        parse(payload(records_json=json.dumps([0] * (MAX_RECORDS + 1))), 5)
    with pytest.raises(EvidenceTooLarge):
        parse(payload(records_json=json.dumps(["x" * 1024] * (MAX_DATA_BYTES // 1024))), 5)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"records_json": '[{"a": "\\u0000"}]'}, "NUL"),
    ({"records_json": "[" * 100 + "]" * 100}, "nested deeper"),
    ({"records_json": "[NaN]"}, "NaN is not a JSON number"),
    ({"records_json": "[1e999]"}, "out of range"),
    ({"records_json": "{}"}, "not a JSON array"),
    ({"subject": "0x\x00"}, "subject holds a NUL"),
    ({"provider": "p" * (MAX_FIELD_CHARS + 1)}, "provider is longer than"),
    ({"raw_ref": "sha256:\x00"}, "raw_ref holds a NUL"),
    ({"evidence_hash": " "}, "evidence_hash is empty"),
])
def test_what_no_stage_could_store_is_refused(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse(payload(**changes), 0)
