"""Ten years of daily Apple Health totals, end to end: the uploads API accepts the export, lc.evidence
takes the fact, the projector stores it in `evidence`, the evaluator judges it into a verdict that
the projector stores in `verdicts` (real broker and database). 4,000 days give 12,572 records,
beyond the 10,000 that used to stop both stages."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import date
from pathlib import Path

import psycopg
from eth_account import Account
from kits.apple_export import write_daily_export_zip
from kits.background import Background, wait_for
from kits.evidence import publish
from kits.processors import read_all
from kits.projections import registration_document
from kits.state import close, restore_all
from starlette.testclient import TestClient

from cli.settings import Settings
from domain.evidence import MAX_RECORDS
from domain.registration import validate_registration
from eventlog.producer import EventProducer
from eventlog.topics import DLQ, EVIDENCE
from intake.auth import sign_headers
from intake.registrations.publish import publish_registration
from intake.uploads.server import app_from_settings
from projections.framework import Projector
from projections.registry import all_projections
from streams.processors.evaluator import Evaluator

KEY = "0x" + "5d" * 32
SUBJECT = Account.from_key(KEY).address
CHALLENGE = 4242
DAYS = 4_000
LAST_DAY = date(2026, 1, 31)
PERIOD = ("2026-01-01", "2026-01-08")  # both ends count: a day whose record starts at the end overlaps


def register(settings: Settings, steps_required: int) -> None:
    start, end = (f"{day}T00:00:00Z" for day in PERIOD)
    document = registration_document(CHALLENGE, params={"rule": {
        "challengeType": "steps", "period": {"start": start, "end": end, "timezone": "UTC"},
        "conditions": [{"metric": "steps_count", "op": ">=", "value": steps_required}]}},
        timeline={"startsAt": start, "endsAt": end, "proofDeadline": "2026-01-09T00:00:00Z"})
    with EventProducer(settings, "test") as producer:
        publish_registration(producer, validate_registration(document), source="cli", registered_by=None,
                             occurred_at=1_767_000_000_000)


def test_ten_years_of_daily_totals_become_evidence_and_a_verdict(settings: Settings, tmp_path: Path) -> None:
    settings = settings.replace(upload_dir=str(tmp_path / "uploads"))
    export = write_daily_export_zip(tmp_path / "export.zip", DAYS, last_day=LAST_DAY)
    assert export.records > 10_000 and export.records <= MAX_RECORDS
    in_period = sum(steps for day, steps in export.steps.items() if PERIOD[0] <= day <= PERIOD[1])
    register(settings, steps_required=in_period)

    started = time.monotonic()
    with TestClient(app_from_settings(settings)) as client:
        response = client.post("/v1/uploads", params={"challenge_id": str(CHALLENGE), "provider": "apple"},
                               headers=sign_headers(KEY), content=(tmp_path / "export.zip").read_bytes())
    assert response.status_code == 200, response.text
    assert response.json()["record_count"] == export.records
    accepted_in = time.monotonic() - started

    projector, evaluator = Projector(settings, all_projections()), Evaluator(settings)
    stages = [Background(projector.run, projector.stop.set), Background(evaluator.run, evaluator.stop.set)]
    try:
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            def verdict() -> tuple | None:
                return conn.execute("SELECT pass, score, metadata FROM verdicts WHERE challenge_id = %s AND"
                                    " lower(subject) = lower(%s)", (CHALLENGE, SUBJECT)).fetchone()

            wait_for(lambda: verdict() is not None, timeout=120, what="the verdict projected")
            processed_in = time.monotonic() - started
            stored = conn.execute("SELECT jsonb_array_length(data), length(data::text) FROM evidence"
                                  " WHERE challenge_id = %s", (CHALLENGE,)).fetchone()
            passed, score, metadata = verdict()
    finally:
        for stage in stages:
            stage.stop()

    assert stored is not None and stored[0] == export.records
    metadata = metadata if isinstance(metadata, dict) else json.loads(metadata)
    assert metadata["totalRecords"] == export.records
    assert passed is True and metadata["total_steps_count"] == in_period, metadata
    assert score == in_period
    assert read_all(settings, DLQ) == []
    [event] = read_all(settings, EVIDENCE)
    print(f"\nLARGE-EVIDENCE days={DAYS} records={export.records} records_json="
          f"{len(event.event.payload['records_json'].encode())} B event={len(event.raw)} B "
          f"accepted_in={accepted_in:.1f}s verdict_projected_in={processed_in:.1f}s")


def test_an_incompressible_evidence_event_near_the_limit_is_processed(settings: Settings) -> None:
    """Several MB even after compression: larger than a consumer's per-partition fetch size (1 MiB)."""
    noise = base64.b64encode(os.urandom(3 * 1024 * 1024)).decode()  # 4 MiB of text, 3 MiB compressed at best
    records = [{"provider": "apple_health", "type": "steps", "note": noise[i:i + 4096]}
               for i in range(0, len(noise), 4096)]
    with EventProducer(settings, "test") as producer:
        publish(producer, CHALLENGE, SUBJECT, "apple", records, occurred_at=1_767_000_000_000)
    projector, evaluator = Projector(settings, all_projections()), Evaluator(settings)
    stages = [Background(projector.run, projector.stop.set), Background(evaluator.run, evaluator.stop.set)]
    try:
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            wait_for(lambda: conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 1, timeout=120,
                     what="the verdict projected")
            stored = conn.execute("SELECT jsonb_array_length(data) FROM evidence").fetchone()
    finally:
        for stage in stages:
            stage.stop()
    assert stored == (len(records),)
    assert read_all(settings, DLQ) == []
    restored = Evaluator(settings)  # its state, stored in pieces (each record within 1 MiB), read back whole
    try:
        restore_all(settings, restored)
        assert restored.challenges()[CHALLENGE].subjects[SUBJECT.lower()].by_provider["apple"].records == records
    finally:
        close(restored)
