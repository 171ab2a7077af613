"""Validation of registrations (pure): what is accepted, normalised, and refused with which reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domain.registration import (
    InvalidRegistration,
    parse_registration_bytes,
    registration_from_payload,
    validate_registration,
)

SUBJECT = "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TIMELINE = {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-08T00:00:00Z",
            "proofDeadline": "2026-01-09T00:00:00Z", "joinClosesAt": "2026-01-01T00:00:00Z"}
RULE = {"challengeType": "steps", "period": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"},
        "conditions": [{"metric": "steps", "op": ">=", "value": 1000}]}


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": 42, "subject": SUBJECT, "model_id": "fitness.steps@1", "params": {"rule": RULE},
                            "timeline": TIMELINE}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_a_threshold_registration_is_normalised() -> None:
    r = validate_registration(document(params=json.dumps({"rule": RULE}), title="  Steps  ",
                                       tx_hash="0x" + "AB" * 32))
    assert (r.challenge_id, r.subject, r.mode, r.top_n) == (42, SUBJECT.lower(), "threshold", 1)
    assert r.params == {"rule": RULE}  # a JSON string became the object
    assert (r.title, r.tx_hash) == ("Steps", "0x" + "ab" * 32)


def test_mode_and_top_n_come_from_the_rule_paths() -> None:
    competitive = {"rule": {**RULE, "mode": "competitive", "topN": 3, "competitiveMetric": "steps"}}
    r = validate_registration(document(params={"templateId": "x"}, proof={"params": competitive},
                                       options={"mode": "competitive"}))
    assert (r.mode, r.top_n) == ("competitive", 3)


def test_the_same_content_gives_the_same_event_id() -> None:
    a = validate_registration(document(title="t"))
    b = validate_registration(json.loads(json.dumps(document(title="t"))))
    assert a.event_id == b.event_id
    assert a.event_id != validate_registration(document(title="u")).event_id


def test_a_published_payload_reads_back_to_the_same_registration() -> None:
    r = validate_registration(document(funds={"stake": "1"}, options={"category": "fitness"}))
    assert registration_from_payload(r.to_payload(source="cli", registered_by=None)) == r


@pytest.mark.parametrize(("changes", "reason"), [
    ({"id": 0}, "id must be a positive integer"),
    ({"id": "42"}, "id must be a positive integer"),
    ({"id": True}, "id must be a positive integer"),
    ({"subject": "alice"}, "subject must be a 0x-prefixed 20-byte hex address"),
    ({"model_id": None}, "missing field(s): model_id"),
    ({"model_id": "  "}, "model_id is empty"),
    ({"timeline": None}, "missing field(s): timeline"),
    ({"colour": "red"}, "unknown field(s): colour"),
    ({"params": "{not json"}, "params must be a JSON object"),
    ({"params": [1, 2]}, "params must be a JSON object"),
    ({"timeline": {"startsAt": "2026-01-08T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"}},
     "endsAt must be after startsAt"),
    ({"timeline": {"endsAt": "2026-01-01T00:00:00Z"}}, "timeline needs startsAt and endsAt"),
    ({"timeline": {**TIMELINE, "proofDeadline": "2026-01-02T00:00:00Z"}}, "proofDeadline must not be before endsAt"),
    ({"timeline": {**TIMELINE, "joinClosesAt": "2026-01-05T00:00:00Z"}}, "joinClosesAt must not be after startsAt"),
    ({"params": {"rule": {**RULE, "mode": "competitive", "topN": "3"}}}, "topN must be a whole number from 1"),
    ({"params": {"rule": {**RULE, "mode": "competitive", "topN": 0}}}, "topN must be a whole number from 1"),
    ({"options": {"mode": "competitive"}}, "options.mode says competitive but the rule is threshold"),
    ({"options": {"mode": "ranked"}}, "options.mode must be one of"),
    ({"params": {"rule": {**RULE, "mode": "competitive"}}, "timeline": {k: v for k, v in TIMELINE.items()
                                                                         if k != "proofDeadline"}},
     "a competitive challenge needs timeline.proofDeadline"),
    ({"params": {"rule": {**RULE, "period": {"start": "2026-01-01", "end": "2026-01-08", "timezone": "Mars/Base"}}}},
     "rule:"),
    ({"tx_hash": "0x1234"}, "tx_hash must be a 0x-prefixed 32-byte hex value"),
    ({"title": "x" * 201}, "title exceeds 200 characters"),
    ({"description": "a\x00b"}, "holds a NUL character"),
])
def test_invalid_registrations_are_refused_with_the_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRegistration) as refused:
        validate_registration(document(**changes))
    assert reason in str(refused.value)


def test_bytes_that_are_not_a_json_object_are_refused() -> None:
    for raw, reason in ((b"{", "not JSON"), (b"[]", "a registration is a JSON object"),
                        (b" " * (256 * 1024 + 1), "exceeds")):
        with pytest.raises(InvalidRegistration, match=reason):
            parse_registration_bytes(raw)


def test_the_example_registration_in_the_repository_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "intake" / "registrations" / "example_registration.json"
    registration = parse_registration_bytes(example.read_bytes())
    assert (registration.mode, registration.top_n) == ("competitive", 3)


@pytest.mark.parametrize("sent", [
    {"startsAt": "1767225600", "endsAt": 1767830400, "proofDeadline": "2026-01-09T02:00:00+02:00"},
    {"startTs": 1767225600000, "ends": "2026-01-08T00:00:00", "proofDeadlineAt": "2026-01-09T00:00:00.000Z"},
    {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-08 00:00:00 +0000", "proofDeadline": "1767916800",
     "joinClosesAt": None},
])
def test_timeline_instants_are_stored_as_iso_utc_under_the_canonical_keys(sent: dict[str, Any]) -> None:
    r = validate_registration(document(timeline={**sent, "note": "kept"}))
    assert r.timeline == {"startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "2026-01-08T00:00:00.000Z",
                          "proofDeadline": "2026-01-09T00:00:00.000Z", "note": "kept"}
    # the same instants sent differently are the same registration
    assert r.event_id == validate_registration(document(timeline={
        "startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "2026-01-08T00:00:00.000Z",
        "proofDeadline": "2026-01-09T00:00:00.000Z", "note": "kept"})).event_id


def test_an_old_event_with_unix_second_strings_reads_back_normalised() -> None:
    """Registrations published before the normalisation are read with ISO timelines too."""
    payload = validate_registration(document()).to_payload(source="cli", registered_by=None)
    payload["timeline_json"] = json.dumps({"startsAt": "1767225600", "endsAt": "1767830400"})
    assert registration_from_payload(payload).timeline == {
        "startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "2026-01-08T00:00:00.000Z"}


@pytest.mark.parametrize("value", ["next week", "2026-13-01T00:00:00Z", 1e300, "-5", [2026], {"at": 1}, -86400])
def test_a_timeline_value_that_names_no_time_is_refused(value: object) -> None:
    with pytest.raises(InvalidRegistration, match="timeline.proofDeadline .* is not a time"):
        validate_registration(document(timeline={**TIMELINE, "proofDeadline": value}))
