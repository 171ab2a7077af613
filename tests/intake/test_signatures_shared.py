"""A wallet signature is spent on every intake at once: the signed message is only
`lightchallenge:<timestamp>` (the web app's format), so a signature seen by the uploads API must be
refused by the evidence API, and the other way round (all intakes use one store of used signatures)."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from cli.settings import Settings
from intake.auth import ServiceCredential, SignatureVerifier, sign_headers
from intake.evidence.api import build_app as evidence_app
from intake.replay import ReplayStore
from intake.uploads.server import app_from_settings

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's first dev key


def test_a_signature_spent_on_one_intake_is_refused_by_another(tmp_path: Path) -> None:
    settings = Settings.from_env(home=str(tmp_path))
    uploads = TestClient(app_from_settings(settings, publish=lambda accepted: None, refuse=lambda refused: None))
    store = ReplayStore(settings.used_signatures_path)
    evidence = TestClient(evidence_app(lambda *a: None, lambda *a: None, SignatureVerifier(store),
                                       ServiceCredential("")))
    headers = sign_headers(KEY)
    first = uploads.post("/v1/uploads?challenge_id=1&provider=garmin", content=b"{}", headers=headers)
    assert first.status_code != 401, first.text  # authenticated (the body itself is refused)
    again = evidence.post("/v1/evidence", json={"challenge_id": 1, "provider": "faceit", "records": []},
                          headers=headers)
    assert again.status_code == 401 and "used" in again.text.lower(), again.text

    fresh = sign_headers(KEY, now_ms=int(headers["x-lc-timestamp"]) + 1)
    assert evidence.post("/v1/evidence", json={"challenge_id": 1, "provider": "faceit", "records": []},
                         headers=fresh).status_code != 401
    assert uploads.post("/v1/uploads?challenge_id=1&provider=garmin", content=b"{}",
                        headers=fresh).status_code == 401
    store.close()
