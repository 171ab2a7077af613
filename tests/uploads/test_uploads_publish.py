"""Accepted uploads reach lc.evidence as EvidenceSubmitted facts (against the real broker)."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from starlette.testclient import TestClient

from eventlog.config import Settings
from eventlog.serde import EventSerde
from eventlog.topics import EVIDENCE
from indexers.chain.kafka import read_topic
from indexers.providers.uploads.auth import sign_headers
from indexers.providers.uploads.server import app_from_settings

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
