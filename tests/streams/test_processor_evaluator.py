"""The evaluator stage on the real broker: verdicts, re-evaluation, unknown providers, bad input."""

from __future__ import annotations

import json

from kits.background import Background, wait_for
from kits.processors import (
    T0,
    competitive,
    of_type,
    publish_evidence,
    publish_registration,
    read_all,
    steps,
)

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import DLQ, VERDICTS
from streams.processors.evaluator import Evaluator
from streams.processors.evaluator_core import verdict_event_id

ALICE, BOB = "0xA11CE00000000000000000000000000000000001", "0xb0b0000000000000000000000000000000000002"


def running(settings: Settings) -> tuple[Evaluator, Background]:
    evaluator = Evaluator(settings)
    return evaluator, Background(evaluator.run, evaluator.stop.set)


def verdicts(settings: Settings) -> list:
    return of_type(read_all(settings, VERDICTS), "VerdictIssued")


def test_verdicts_reevaluation_across_providers_and_unknown_provider(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        publish_registration(producer, 7, competitive(1))
        first = publish_evidence(producer, 7, ALICE, steps(500), at_ms=T0 * 1000 + 1)
        unknown = publish_evidence(producer, 7, BOB, [{"x": 1}], provider="mystery", at_ms=T0 * 1000 + 2)
    evaluator, background = running(settings)
    try:
        wait_for(lambda: len(verdicts(settings)) >= 2, what="two verdicts")
        with EventProducer(settings, "test") as producer:
            second = publish_evidence(producer, 7, ALICE.lower(), [{"type": "steps", "date": "2025-03-03",
                                                                    "steps": 250}], provider="apple",
                                      at_ms=T0 * 1000 + 3)
        wait_for(lambda: len(verdicts(settings)) >= 3, what="the re-evaluation")
    finally:
        background.stop()
    by_id = {v.event.event_id: v.event.payload for v in verdicts(settings)}
    alice_first = by_id[verdict_event_id(7, ALICE, first)]
    assert (alice_first["pass"], alice_first["score"], alice_first["evaluator"]) == (True, 500.0, "fitbit:stream")
    alice_both = by_id[verdict_event_id(7, ALICE, second)]
    assert (alice_both["score"], alice_both["evaluator"]) == (750.0, "apple+fitbit:stream")
    assert alice_both["subject"] == ALICE  # casing of the first evidence
    assert alice_both["evidence_at"] == T0 * 1000 + 1  # the earliest evidence: the ranking tie-break
    assert json.loads(alice_both["metadata_json"])["providers"] == ["apple", "fitbit"]
    bob = by_id[verdict_event_id(7, BOB, unknown)]
    assert (bob["pass"], bob["score"], bob["evaluator"]) == (False, None, "unknown:no-evaluator")
    assert bob["reasons"] == ['No evaluator registered for provider "mystery"']


def test_a_new_registration_reevaluates_every_subject(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        publish_evidence(producer, 8, ALICE, steps(100), at_ms=T0 * 1000 + 1)
        publish_evidence(producer, 8, BOB, steps(300), at_ms=T0 * 1000 + 2)
    evaluator, background = running(settings)
    try:
        wait_for(lambda: len(verdicts(settings)) >= 2, what="verdicts without a rule")
        with EventProducer(settings, "test") as producer:
            registration = publish_registration(
                producer, 8, {"rules": {"type": "fitness", "metric": "steps", "threshold": 200, "period": "total"}})
        wait_for(lambda: len(verdicts(settings)) >= 4, what="re-evaluation of both subjects")
    finally:
        background.stop()
    again = {v.event.payload["subject"]: v.event.payload for v in verdicts(settings)
             if v.event.payload["trigger_event_id"] == registration}
    assert {s: p["pass"] for s, p in again.items()} == {ALICE: False, BOB: True}


def test_malformed_rule_and_evidence_go_to_the_dlq_and_the_stage_continues(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        publish_registration(producer, 9, {}, params_json="{not json")
        producer.publish("lc.evidence", "9", "EvidenceSubmitted",
                         {"challenge_id": 9, "subject": ALICE, "provider": "fitbit", "records_json": "[oops",
                          "evidence_hash": "0x01", "raw_ref": None}, event_id="bad-evidence", occurred_at=1)
        producer.publish("lc.evidence", "9", "EvidenceSubmitted",
                         {"challenge_id": 9, "subject": " ", "provider": "fitbit", "records_json": "[]",
                          "evidence_hash": "0x01", "raw_ref": None}, event_id="no-subject", occurred_at=2)
        good = publish_evidence(producer, 9, BOB, steps(10), at_ms=3)
    evaluator, background = running(settings)
    try:
        wait_for(lambda: len(verdicts(settings)) >= 1, what="the good evidence's verdict")
    finally:
        background.stop()
    assert [v.event.payload["trigger_event_id"] for v in verdicts(settings)] == [good]
    letters = [d.event.payload for d in read_all(settings, DLQ)]
    reasons = sorted(d["reason"] for d in letters)
    assert len(reasons) == 3, reasons
    assert any("registration" in r and "params_json is not JSON" in r for r in reasons)
    assert any("records_json is not acceptable JSON: not JSON" in r for r in reasons)
    assert any("subject is empty" in r for r in reasons)
    assert {d["stage"] for d in letters} == {"lc-evaluator"}
