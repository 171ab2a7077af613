"""What a stage admits from a topic (pure): the catalogue names every event type once, and anything
without a key, undecodable, or of another topic's type is refused with the reason."""

from __future__ import annotations

import pytest

from eventlog.admission import Inadmissible, admit
from eventlog.serde import SCHEMAS_DIR, EventSerde
from eventlog.topics import (
    CATALOGUE,
    CHAIN_BLOCKS,
    CHAIN_EVENTS,
    DLQ,
    EVIDENCE,
    LARGEST_MESSAGE_BYTES,
    VERDICTS,
    ordered_facts,
)

ENVELOPE = {"event_id": "e-1", "occurred_at": 1_757_500_000_123, "producer": "test"}
EVIDENCE_PAYLOAD = {"challenge_id": 42, "subject": "0xAbC", "provider": "strava", "records_json": "[]",
                    "evidence_hash": "0x" + "ab" * 32, "raw_ref": None}


def test_every_event_type_belongs_to_exactly_one_topic() -> None:
    types = [t for spec in CATALOGUE.values() for t in spec.event_types]
    schemas = {path.name.partition(".v")[0] for path in SCHEMAS_DIR.glob("*.v*.avsc")}
    assert len(types) == len(set(types)) and set(types) == schemas


def test_only_the_chain_topics_halt_and_only_evidence_takes_large_messages() -> None:
    assert {name for name in CATALOGUE if ordered_facts(name)} == {CHAIN_BLOCKS, CHAIN_EVENTS}
    assert {name for name, spec in CATALOGUE.items() if spec.max_message_bytes} == {EVIDENCE}
    assert LARGEST_MESSAGE_BYTES == CATALOGUE[EVIDENCE].message_limit
    assert CATALOGUE[EVIDENCE].config()["max.message.bytes"] == str(LARGEST_MESSAGE_BYTES)
    assert "max.message.bytes" not in CATALOGUE[DLQ].config()


def test_a_good_message_is_admitted_with_its_key() -> None:
    serde = EventSerde("")
    key, event = admit(serde, EVIDENCE, b"42", serde.encode("lc.evidence", "EvidenceSubmitted", ENVELOPE,
                                                            EVIDENCE_PAYLOAD))
    assert key == "42" and event.payload == EVIDENCE_PAYLOAD


@pytest.mark.parametrize(("key", "value", "reason"), [
    (None, "evidence", "no key (lc.evidence is keyed by challenge id)"),
    (b"\xff\xfe", "evidence", "the key is not UTF-8"),
    (b"42", None, "undecodable: empty message value"),
    (b"42", b"garbage", "undecodable: not an Avro event"),
    (b"42", "verdict", "event type VerdictIssued does not belong on lc.evidence (it carries EvidenceSubmitted)"),
])
def test_anything_else_is_refused_with_the_reason(key: bytes | None, value: object, reason: str) -> None:
    serde = EventSerde("")
    if value == "evidence":
        value = serde.encode("lc.evidence", "EvidenceSubmitted", ENVELOPE, EVIDENCE_PAYLOAD)
    elif value == "verdict":
        value = serde.encode(VERDICTS, "VerdictIssued", ENVELOPE, {
            "challenge_id": 42, "subject": "0xabc", "pass": True, "score": None, "reasons": [],
            "metadata_json": None, "evaluator": "x", "evidence_hash": "0x", "evidence_at": 0,
            "trigger_event_id": "t"})
    with pytest.raises(Inadmissible) as refused:
        admit(serde, EVIDENCE, key, value)  # type: ignore[arg-type]
    assert str(refused.value) == reason or str(refused.value).startswith(reason)


def test_a_topic_outside_the_catalogue_takes_any_type_and_no_key() -> None:
    serde = EventSerde("")
    key, event = admit(serde, "spike.topic", None, serde.encode("x", "EvidenceSubmitted", ENVELOPE, EVIDENCE_PAYLOAD))
    assert key is None and event.event_type == "EvidenceSubmitted"


@pytest.mark.parametrize("occurred_at", [-1, 253_402_300_800_000, 2**62])
def test_an_event_time_no_stage_can_store_is_refused(occurred_at: int) -> None:
    serde = EventSerde("")
    value = serde.encode("lc.evidence", "EvidenceSubmitted", {**ENVELOPE, "occurred_at": occurred_at}, EVIDENCE_PAYLOAD)
    with pytest.raises(Inadmissible, match=rf"^occurred_at {occurred_at} is out of range \[0, 253402300799999\]$"):
        admit(serde, EVIDENCE, b"42", value)
    last = serde.encode("lc.evidence", "EvidenceSubmitted", {**ENVELOPE, "occurred_at": 253_402_300_799_999},
                        EVIDENCE_PAYLOAD)
    assert admit(serde, EVIDENCE, b"42", last)[1].occurred_at == 253_402_300_799_999
