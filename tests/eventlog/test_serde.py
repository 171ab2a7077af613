"""Avro serde: both framings round-trip, and a reader on a newer schema reads older events."""

from __future__ import annotations

from pathlib import Path

import pytest
from kits.schemas import widget_catalogue

from eventlog.serde import EventSerde, UndecodableMessage

ENVELOPE = {"event_id": "e-1", "occurred_at": 1_757_500_000_123, "producer": "test"}
PAYLOAD = {"challenge_id": 42, "subject": "0xAbC", "provider": "strava", "records_json": "[{\"a\":1}]",
           "evidence_hash": "0x" + "ab" * 32, "raw_ref": None}


@pytest.mark.parametrize("registry_url", ["", "mock://serde-round-trip"])
def test_round_trip_in_both_framings(registry_url: str) -> None:
    serde = EventSerde(registry_url)
    data = serde.encode("lc.evidence", "EvidenceSubmitted", ENVELOPE, PAYLOAD)
    assert data[:2] == b"\xc3\x01" if not registry_url else data[:1] == b"\x00"
    event = serde.decode(data)
    assert event.event_type == "EvidenceSubmitted"
    assert event.event_id == "e-1"
    assert event.occurred_at == 1_757_500_000_123
    assert event.schema_version == 1
    assert event.payload == PAYLOAD


def test_a_reader_without_registry_config_still_reads_single_object_events() -> None:
    written = EventSerde("").encode("lc.evidence", "EvidenceSubmitted", ENVELOPE, PAYLOAD)
    assert EventSerde("mock://other-reader").decode(written).payload == PAYLOAD


V1_FIELDS = [{"name": "size", "type": "int"}]
V2_FIELDS = [{"name": "size", "type": "long"}, {"name": "colour", "type": "string", "default": "grey"}]


@pytest.mark.parametrize("registry_url", ["", "mock://serde-evolution"])
def test_reader_on_new_schema_reads_events_written_with_the_old_one(tmp_path: Path, registry_url: str) -> None:
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir(), new_dir.mkdir()
    old_writer = EventSerde(registry_url, widget_catalogue(old_dir, {1: V1_FIELDS}))
    new_reader = EventSerde(registry_url, widget_catalogue(new_dir, {1: V1_FIELDS, 2: V2_FIELDS}))

    data = old_writer.encode("lc.widgets", "Widget", ENVELOPE, {"size": 7})
    event = new_reader.decode(data)

    assert event.schema_version == 1  # written as v1 ...
    assert event.payload == {"size": 7, "colour": "grey"}  # ... read as v2: promoted int, defaulted field


def test_new_events_are_written_with_the_newest_version(tmp_path: Path) -> None:
    serde = EventSerde("", widget_catalogue(tmp_path, {1: V1_FIELDS, 2: V2_FIELDS}))
    event = serde.decode(serde.encode("lc.widgets", "Widget", ENVELOPE, {"size": 1, "colour": "red"}))
    assert (event.schema_version, event.payload) == (2, {"size": 1, "colour": "red"})


@pytest.mark.parametrize("garbage, reason", [
    (b"", "empty"),
    (b"{\"json\": true}", "not an Avro event"),
    (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown schema fingerprint"),
    (b"\x00\x00\x00\x00\x07\x02", "no schema registry configured"),
])
def test_garbage_is_refused_with_a_reason(garbage: bytes, reason: str) -> None:
    with pytest.raises(UndecodableMessage, match=reason):
        EventSerde("").decode(garbage)


def test_truncated_body_is_refused() -> None:
    serde = EventSerde("")
    data = serde.encode("lc.evidence", "EvidenceSubmitted", ENVELOPE, PAYLOAD)
    with pytest.raises(UndecodableMessage, match="corrupt EvidenceSubmitted"):
        serde.decode(data[:20])


def test_bytes_after_the_event_are_refused() -> None:
    serde = EventSerde("")
    data = serde.encode("lc.evidence", "EvidenceSubmitted", ENVELOPE, PAYLOAD)
    with pytest.raises(UndecodableMessage, match="3 bytes after the EvidenceSubmitted event"):
        serde.decode(data + b"xyz")
