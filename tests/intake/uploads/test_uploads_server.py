"""POST /v1/uploads: an accepted upload is published once; every bad upload gets its error, nothing
is published or kept for it, and the server keeps serving."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from eth_account import Account
from kits.uploads import BILLION_LAUGHS
from starlette.testclient import TestClient

from devstack.anvil import free_port
from intake.auth import sign_headers, wall_clock_ms
from intake.uploads.accepted import AcceptedUpload
from intake.uploads.client import UploadFailed, upload_file
from intake.uploads.server import UploadServerConfig, create_app

KEY = "0x" + "6e" * 32
ADDRESS = Account.from_key(KEY).address
MAX_BYTES = 64 * 1024


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.published: list[AcceptedUpload] = []
        self.client = TestClient(create_app(UploadServerConfig(root, MAX_BYTES), self.published.append))

    def post(self, body: bytes | Iterator[bytes], *, provider: str = "apple", headers: dict[str, str] | None = None,
             **params: str) -> httpx.Response:
        query = {"challenge_id": "42", "provider": provider, **params}
        signed = sign_headers(KEY) if headers is None else headers
        return self.client.post("/v1/uploads", params=query, headers=signed, content=body)

    def kept_files(self) -> list[Path]:
        return sorted(path for path in (self.root / "raw").rglob("*") if path.is_file()) \
            if (self.root / "raw").exists() else []

    def leftovers(self) -> list[Path]:
        return list((self.root / "incoming").glob("*")) if (self.root / "incoming").exists() else []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "uploads")
    with running.client:
        yield running


def test_accepted_upload_is_published_and_kept(server: Server, shared_fixtures: Path) -> None:
    data = (shared_fixtures / "apple_health" / "export.zip").read_bytes()

    response = server.post(data, subject=ADDRESS.lower())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "apple_health_zip" and body["record_count"] == 6
    [accepted] = server.published
    sha = hashlib.sha256(data).hexdigest()
    assert (accepted.challenge_id, accepted.subject, accepted.provider) == (42, ADDRESS, "apple")
    assert accepted.raw_ref == body["raw_ref"] == f"sha256:{sha}"
    assert accepted.evidence_hash == body["evidence_hash"]
    assert len(accepted.records) == 6
    assert server.kept_files() == [server.root / "raw" / sha[:2] / sha]
    assert server.kept_files()[0].read_bytes() == data
    assert server.leftovers() == []


def _zip_with(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


def test_every_bad_upload_gets_its_error_and_nothing_is_published(server: Server, shared_fixtures: Path) -> None:
    good = (shared_fixtures / "apple_health" / "export.zip").read_bytes()
    gpx = (shared_fixtures / "garmin" / "garmin_connect_export_2016_run_excerpt.gpx").read_bytes()
    used = sign_headers(KEY)
    assert server.post(gpx, provider="garmin", headers=used).status_code == 200
    server.published.clear()
    kept_before = server.kept_files()
    stranger = Account.from_key("0x" + "7f" * 32).address

    cases: list[tuple[httpx.Response, int, str]] = [
        (server.post(good, headers={}), 401, "missing"),
        (server.post(good, headers={**sign_headers(KEY), "x-lc-address": stranger}), 401, "bad_signature"),
        (server.post(good, headers=sign_headers(KEY, now_ms=wall_clock_ms() - 600_000)), 401, "expired"),
        (server.post(good, headers=used), 401, "replayed"),
        (server.post(good, subject=stranger), 403, "forbidden"),
        (server.post(good, challenge_id="x"), 400, "bad_request"),
        (server.post(good, provider="strava"), 400, "bad_request"),
        (server.post(bytes(MAX_BYTES + 1)), 413, "too_large"),
        (server.post(iter([bytes(32 * 1024)] * 3)), 413, "too_large"),  # chunked: no content-length to check
        (server.post(good[: len(good) // 2]), 422, "corrupt_zip"),
        (server.post(_zip_with("apple_health_export/export.xml", BILLION_LAUGHS)), 422, "unsafe_xml"),
        (server.post(BILLION_LAUGHS.encode()), 422, "unsafe_xml"),
        (server.post(gpx), 422, "wrong_kind"),
        (server.post(good, provider="garmin"), 422, "wrong_kind"),
        (server.post(b""), 422, "wrong_kind"),
        (server.post(b'<?xml version="1.0"?><gpx version="1.1" creator="x"></gpx>', provider="garmin"), 422,
         "no_records"),
    ]

    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]) == (status, code), response.text
        assert response.json()["message"]
    assert server.published == []
    assert server.kept_files() == kept_before
    assert server.leftovers() == []
    # and it still serves
    assert server.post(good).status_code == 200
    assert len(server.published) == 1


def test_a_replayed_signature_is_refused_after_a_restart(tmp_path: Path, shared_fixtures: Path) -> None:
    gpx = (shared_fixtures / "garmin" / "garmin_connect_export_2016_run_excerpt.gpx").read_bytes()
    headers = sign_headers(KEY)
    first = Server(tmp_path / "uploads")
    with first.client:
        assert first.post(gpx, provider="garmin", headers=headers).status_code == 200
    restarted = Server(tmp_path / "uploads")
    with restarted.client:
        response = restarted.post(gpx, provider="garmin", headers=headers)
        assert (response.status_code, response.json()["error"]) == (401, "replayed")
        assert restarted.published == []


def test_a_failing_publisher_answers_503(tmp_path: Path, shared_fixtures: Path) -> None:
    def broken(_upload: AcceptedUpload) -> None:
        raise RuntimeError("broker down")

    client = TestClient(create_app(UploadServerConfig(tmp_path, MAX_BYTES), broken))
    gpx = (shared_fixtures / "garmin" / "garmin_connect_export_2016_run_excerpt.gpx").read_bytes()
    with client:
        response = client.post("/v1/uploads", params={"challenge_id": "1", "provider": "garmin"},
                               headers=sign_headers(KEY), content=gpx)
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")


def test_upload_file_against_a_real_server(tmp_path: Path, shared_fixtures: Path) -> None:
    published: list[AcceptedUpload] = []
    port = free_port()
    app = create_app(UploadServerConfig(tmp_path / "uploads", 10 * 1024 * 1024), published.append)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        base_url = f"http://127.0.0.1:{port}"
        tcx = shared_fixtures / "garmin" / "garmin_connect_export_2022_vivoactive_hr_sup.tcx"

        answer = upload_file(tcx, base_url=base_url, challenge_id=9, provider="garmin", private_key=KEY)

        assert answer["kind"] == "garmin_tcx" and answer["record_count"] == 1
        assert [(p.challenge_id, p.subject, p.provider) for p in published] == [(9, ADDRESS, "garmin")]
        with pytest.raises(UploadFailed) as refused:
            upload_file(tcx, base_url=base_url, challenge_id=9, provider="apple", private_key=KEY)
        assert refused.value.status == 422
        assert httpx.get(f"{base_url}/health").json() == {"ok": True}
        assert len(published) == 1
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_impossible_records_are_dropped_with_a_note_and_the_rest_accepted(server: Server) -> None:
    days = [{"calendarDate": "2024-03-01", "totalSteps": 9000}, {"calendarDate": "2024-03-02", "totalSteps": -40},
            {"calendarDate": "2024-03-03", "totalSteps": 7000}]
    response = server.post(json.dumps(days).encode(), provider="garmin")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["record_count"], body["skipped"]) == (2, 1)
    assert body["dropped"] == ["day:steps:2024-03-02: steps -40 is negative"]
    [accepted] = server.published
    assert [record["date"] for record in accepted.records] == ["2024-03-01", "2024-03-03"]
