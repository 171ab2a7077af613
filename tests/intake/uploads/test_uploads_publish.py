"""Accepted uploads reach lc.evidence as EvidenceSubmitted facts (against the real broker)."""

from __future__ import annotations

import json
from datetime import date, timedelta, timezone
from pathlib import Path

from eth_account import Account
from starlette.testclient import TestClient

from cli.settings import Settings
from eventlog.serde import EventSerde
from eventlog.topics import DLQ, EVIDENCE
from indexers.chain.kafka import read_topic
from indexers.providers.uploads.detect import upload_evidence_hash
from indexers.providers.uploads.record import DAY, local_midnight, make_record
from intake.auth import sign_headers
from intake.uploads.accepted import AcceptedUpload
from intake.uploads.publish import make_publisher
from intake.uploads.server import app_from_settings

KEY = "0x" + "8a" * 32


def _evidence_events(settings: Settings) -> list[tuple[str, object]]:
    serde = EventSerde(settings.schema_registry_url)
    return [((m.key() or b"").decode(), serde.decode(m.value())) for m in read_topic(settings, EVIDENCE)]


def test_an_accepted_upload_is_published_once_and_a_refused_one_not(
    settings: Settings, tmp_path: Path, shared_fixtures: Path
) -> None:
    settings = settings.replace(upload_dir=str(tmp_path / "uploads"))
    tcx = (shared_fixtures / "garmin" / "garmin_connect_export_2010_forerunner310xt_run.tcx").read_bytes()
    with TestClient(app_from_settings(settings)) as client:
        def post(body: bytes, provider: str) -> int:
            return client.post("/v1/uploads", params={"challenge_id": "77", "provider": provider},
                               headers=sign_headers(KEY), content=body).status_code

        assert post(tcx, "garmin") == 200
        assert post(tcx, "apple") == 422
        assert post(tcx, "garmin") == 200  # the same file again: the same fact (same event id)

    events = _evidence_events(settings)
    assert [key for key, _event in events] == ["77", "77"]
    first, second = (event for _key, event in events)
    assert first.event_type == "EvidenceSubmitted"  # type: ignore[attr-defined]
    assert first.event_id == second.event_id  # type: ignore[attr-defined]
    payload = first.payload  # type: ignore[attr-defined]
    assert payload["challenge_id"] == 77
    assert payload["subject"] == Account.from_key(KEY).address
    assert payload["provider"] == "garmin"
    assert payload["raw_ref"].startswith("sha256:")
    [record] = json.loads(payload["records_json"])
    assert record["type"] == "run" and record["distance_m"] == 299.03

    # the refused one (a TCX declared as an Apple export) went to lc.dlq: reason, origin, original bytes
    serde = EventSerde(settings.schema_registry_url)
    [letter] = [serde.decode(m.value()) for m in read_topic(settings, DLQ)]
    signer = Account.from_key(KEY).address.lower()
    assert letter.payload["stage"] == "lc-uploads"
    assert letter.payload["reason"].startswith("wrong_kind: ")
    assert (letter.payload["source_topic"], letter.payload["source_key"]) == ("uploads", f"77:{signer}:apple")
    assert letter.payload["original"] == tcx


def test_years_of_daily_records_fit_in_one_event(settings: Settings) -> None:
    offset = timezone(timedelta(hours=2))
    records = []
    for index in range(365 * 8):  # eight years of steps, distance and active energy
        day = date(2017, 1, 1) + timedelta(days=index)
        start = local_midnight(day, offset)
        for kind, field in (("steps", "steps"), ("distance", "distance_m"), ("active_energy", "calories_kcal")):
            records.append(make_record(provider="apple_health", activity_id=f"day:{kind}:{day}", activity_type=kind,
                                       start=start, end=start + DAY, duration_s=None, source_device="Watch",
                                       period="day", day=day, **{field: 5000.5 + index}))
    upload = AcceptedUpload(5, "0x" + "ab" * 20, "apple", records, upload_evidence_hash(records), "sha256:00")

    make_publisher(settings)(upload)

    [(key, event)] = _evidence_events(settings)
    assert key == "5"
    assert len(json.loads(event.payload["records_json"])) == len(records)  # type: ignore[attr-defined]
