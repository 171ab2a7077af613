"""The intake commands print one clear line for every error (no traceback), `lc upload` whatever the server
answers, and `lc ingest evidence` computes a missing evidence hash as the collector or the uploads API does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from kits.hostile import GOOD_GPX, deep
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cli.main import main as lc
from cli.settings import Settings
from cli.tail import tail
from devstack.anvil import free_port
from eventlog.topics import EVIDENCE
from indexers.providers.evidence_hash import evidence_hash
from indexers.providers.uploads.detect import upload_evidence_hash

KEY = "0x" + "6e" * 32
SUBJECT = "0x" + "ab" * 20


@pytest.fixture
def plain_text_server() -> Iterator[str]:
    """A server answering every upload with a proxy's plain-text 502, as a misconfigured front would."""
    async def bad_gateway(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("<html><body>\n502 Bad Gateway\n</body></html>", status_code=502)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/uploads", bad_gateway, methods=["POST"])]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("lc: "), err
    return err


def test_lc_upload_prints_one_line_for_a_plain_text_answer(plain_text_server: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    gpx = tmp_path / "run.gpx"
    gpx.write_text(GOOD_GPX)
    monkeypatch.setenv("LC_UPLOADER_PRIVATE_KEY", KEY)
    assert lc(["upload", str(gpx), "--challenge", "4", "--provider", "garmin", "--url", plain_text_server]) == 1
    assert "upload refused (502)" in one_line_error(capsys)

    nobody = f"http://127.0.0.1:{free_port()}"
    assert lc(["upload", str(gpx), "--challenge", "4", "--provider", "garmin", "--url", nobody]) == 1
    assert "did not answer" in one_line_error(capsys)

    assert lc(["upload", str(tmp_path / "missing.gpx"), "--challenge", "4", "--provider", "garmin",
               "--url", nobody]) == 1
    assert "missing.gpx" in one_line_error(capsys)

    monkeypatch.setenv("LC_UPLOADER_PRIVATE_KEY", "my-secret-words")
    assert lc(["upload", str(gpx), "--challenge", "4", "--provider", "garmin", "--url", nobody]) == 2
    assert "my-secret-words" not in one_line_error(capsys)  # what a key variable holds is never echoed


def test_lc_upload_default_url_follows_the_listen_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    gpx = tmp_path / "run.gpx"
    gpx.write_text(GOOD_GPX)
    port = free_port()
    monkeypatch.setenv("LC_UPLOADER_PRIVATE_KEY", KEY)
    monkeypatch.setenv("LC_UPLOAD_LISTEN", f"0.0.0.0:{port}")
    assert lc(["upload", str(gpx), "--challenge", "4", "--provider", "garmin"]) == 1
    assert f"http://127.0.0.1:{port} did not answer" in one_line_error(capsys)


def published(settings: Settings) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        try:
            return [json.loads(line)["payload"] for line in tail(settings, EVIDENCE, follow=False)]
        except SystemExit:  # a topic created a moment ago can be missing from a loaded broker's metadata
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def use_stack(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("LC_TOPIC_PREFIX", settings.topic_prefix)


def test_lc_ingest_evidence_computes_the_hash_of_upload_and_api_providers(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_stack(settings, monkeypatch)
    garmin = [{"activity_id": "day:steps:2024-03-01", "type": "steps", "start_ts": 1_709_251_200,
               "end_ts": 1_709_337_599, "steps": 9000, "period": "day", "date": "2024-03-01"}]
    impossible = {"activity_id": "day:steps:2024-03-02", "type": "steps", "steps": -40}
    fitbit = [{"dateTime": "2024-03-01", "value": 9000, "type": "steps", "steps": 9000}]
    file = tmp_path / "evidence.json"
    file.write_text(json.dumps([
        {"challenge_id": 5, "subject": SUBJECT, "provider": "garmin", "records": [*garmin, impossible]},
        {"challenge_id": 5, "subject": SUBJECT, "provider": "apple", "records": garmin},
        {"challenge_id": 5, "subject": SUBJECT, "provider": "fitbit", "records": fitbit},
    ]))
    assert lc(["ingest", "evidence", str(file)]) == 0
    captured = capsys.readouterr()
    assert "published 3 evidence event(s)" in captured.out
    assert "day:steps:2024-03-02: steps -40 is negative" in captured.err  # left out, with a note
    by_provider = {p["provider"]: p for p in published(settings)}
    assert by_provider["garmin"]["evidence_hash"] == upload_evidence_hash(garmin)
    assert json.loads(by_provider["garmin"]["records_json"]) == garmin
    assert by_provider["apple"]["evidence_hash"] == upload_evidence_hash(garmin)
    assert by_provider["fitbit"]["evidence_hash"] == evidence_hash("fitbit", fitbit)


@pytest.mark.parametrize(("content", "reason"), [
    (deep(100_000), "nested deeper"),
    ('[{"challenge_id": 5, "subject": "0xab", "provider": "garmin", "records": [{"steps": NaN}]}]', "NaN"),
    ('{"challenge_id": 1e308, "subject": "0xab", "provider": "garmin", "records": []}', "challenge_id"),
    ('{"challenge_id": ' + "9" * 30 + ', "subject": "0xab", "provider": "garmin", "records": []}', "challenge_id"),
    ('{"challenge_id": 5, "subject": "0xab", "provider": "mystery", "records": [{"x": 1}]}', "no evidence hash rule"),
    ('{"challenge_id": 5, "subject": "", "provider": "garmin", "records": []}', "subject"),
    ('{"challenge_id": 5, "subject": "0xab\\u0000", "provider": "garmin", "records": []}', "NUL"),
    ("not json", "not JSON"),
])
def test_lc_ingest_evidence_refuses_a_bad_file_in_one_line(settings: Settings, tmp_path: Path, content: str,
                                                           reason: str, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    use_stack(settings, monkeypatch)
    file = tmp_path / "evidence.json"
    file.write_text(content)
    assert lc(["ingest", "evidence", str(file)]) == 1
    assert reason in one_line_error(capsys)
    assert published(settings) == []


def test_a_command_error_is_one_line(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    use_stack(settings, monkeypatch)
    assert lc(["challenge", "register", str(tmp_path / "missing.json")]) == 1
    assert "missing.json" in one_line_error(capsys)
    assert lc(["ingest", "evidence", str(tmp_path / "missing.json")]) == 1
    assert "missing.json" in one_line_error(capsys)
