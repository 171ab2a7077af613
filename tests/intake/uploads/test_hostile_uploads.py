"""The hostile corpus (kits/hostile.py) and HTTP-level abuse against `lc run uploads-api` as a real server
process on loopback, with the real broker: every input gets its expected 4xx and error code (never a 500),
nothing is published or kept for it, a refused body leaves no file, a dead letter goes to lc.dlq exactly
where the design says, the server's peak RSS stays under 200 MB for each input, and the server answers a
good upload after each one."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from kits.hostile import GOOD_GPX, corpus
from kits.intake_server import ServerProcess, raw_exchange, running, status_of

from cli.settings import Settings
from eventlog.serde import EventSerde
from eventlog.topics import DLQ, EVIDENCE
from indexers.chain.kafka import read_topic
from intake.auth import sign_headers

KEY = "0x" + "5c" * 32
ADDRESS = Account.from_key(KEY).address
PEAK_RSS_LIMIT_MB = 200
MAX_BYTES = 400 * 1024 * 1024
GOOD_REF = "sha256:" + hashlib.sha256(GOOD_GPX.encode()).hexdigest()


@pytest.fixture
def uploads_api(settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"LC_UPLOAD_LISTEN": "127.0.0.1:{port}", "LC_UPLOAD_DIR": str(tmp_path / "uploads"),
           "LC_UPLOAD_BODY_IDLE_SECONDS": "2", "LC_UPLOAD_MAX_BYTES": str(MAX_BYTES)}
    with running("uploads-api", settings, tmp_path / "home", env) as server:
        yield server


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            yield chunk


def post(server: ServerProcess, body: Path | bytes, *, provider: str, params: dict[str, str] | None = None,
         headers: dict[str, str] | None = None, challenge_id: str = "42") -> httpx.Response:
    query = {"challenge_id": challenge_id, "provider": provider, **(params or {})}
    signed = sign_headers(KEY) if headers is None else headers
    if isinstance(body, Path):
        signed = {**signed, "content-length": str(body.stat().st_size)}
        content: Any = _file_chunks(body)
    else:
        content = body
    return httpx.post(f"{server.base_url}/v1/uploads", params=query, headers=signed, content=content, timeout=120)


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error"))
    except ValueError:
        return "(not JSON)"


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_serves_a_good_upload(server: ServerProcess) -> None:
    response = post(server, GOOD_GPX.encode(), provider="garmin")
    assert response.status_code == 200, response.text
    assert response.json()["raw_ref"] == GOOD_REF


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    serde = EventSerde(settings.schema_registry_url)
    return [serde.decode(m.value()).payload for m in read_topic(settings, DLQ)]


def published_refs(settings: Settings) -> list[str]:
    serde = EventSerde(settings.schema_registry_url)
    return [serde.decode(m.value()).payload["raw_ref"] for m in read_topic(settings, EVIDENCE)]


def test_the_hostile_corpus_is_refused_in_bounded_memory(settings: Settings, uploads_api: ServerProcess,
                                                         tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    cases = corpus()
    assert len(cases) >= 40
    assert_serves_a_good_upload(uploads_api)
    kept = files_under(root / "raw")
    good_uploads, expected_letters, table = 1, [], []
    for case in cases:
        body = tmp_path / "input"
        case.write(body)
        size = body.stat().st_size
        uploads_api.reset_peak()
        started = time.monotonic()
        response = post(uploads_api, body, provider=case.provider, params=case.params)
        seconds = time.monotonic() - started
        peak = uploads_api.peak_mb()
        body.unlink()
        table.append(f"{case.name[:52]:52} {size:>11} B  {response.status_code} {error_code(response):12} "
                     f"peak RSS {peak:6.1f} MB  {seconds:5.2f} s")
        assert (response.status_code, error_code(response)) == (case.status, case.code), (case.name, response.text)
        assert response.json()["message"], case.name
        assert files_under(root / "incoming") == [], case.name
        assert files_under(root / "raw") == kept, case.name
        assert peak < PEAK_RSS_LIMIT_MB, (case.name, peak)
        if case.dead_letter:
            expected_letters.append((case.name, case.code))
        assert_serves_a_good_upload(uploads_api)
        good_uploads += 1
    print("\n" + "\n".join(table))

    assert uploads_api.alive()
    assert "Traceback" not in uploads_api.log()  # no refusal came from an unexpected exception
    assert published_refs(settings) == [GOOD_REF] * good_uploads  # nothing of the corpus became evidence
    letters = [letter for letter in dead_letters(settings) if letter["stage"] == "lc-uploads"]
    assert [letter["reason"].split(":", 1)[0] for letter in letters] == [code for _name, code in expected_letters]
    for letter in letters:
        assert letter["source_key"] == f"42:{ADDRESS.lower()}:{letter['source_key'].rsplit(':', 1)[1]}"
        assert len(letter["original"] or b"") <= 64 * 1024  # a bounded excerpt, whatever the upload's size


def test_http_level_abuse_gets_a_4xx_and_leaves_nothing(settings: Settings, uploads_api: ServerProcess,
                                                        tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    good = GOOD_GPX.encode()
    signed = sign_headers(KEY)
    assert post(uploads_api, good, provider="garmin", headers=signed).status_code == 200  # used once
    digits_5000 = "1" * 5000
    superscript_ts = "\u00b9" + signed["x-lc-timestamp"][1:]
    abuse: list[tuple[str, Any, int, str]] = [
        ("no signature", lambda: post(uploads_api, good, provider="garmin", headers={}), 401, "missing"),
        ("5,000-digit x-lc-timestamp",
         lambda: post(uploads_api, good, provider="garmin", headers={**sign_headers(KEY), "x-lc-timestamp": digits_5000}),
         401, "malformed"),
        ("superscript digit in x-lc-timestamp",
         lambda: post(uploads_api, good, provider="garmin",
                      headers={**sign_headers(KEY), "x-lc-timestamp": superscript_ts.encode("latin-1")}),  # type: ignore[dict-item]
         401, "malformed"),
        ("replayed signature", lambda: post(uploads_api, good, provider="garmin", headers=signed), 401, "replayed"),
        ("5,000-digit challenge_id", lambda: post(uploads_api, good, provider="garmin", challenge_id=digits_5000),
         400, "bad_request"),
        ("superscript challenge_id", lambda: post(uploads_api, good, provider="garmin", challenge_id="4\u00b2"),
         400, "bad_request"),
        ("challenge_id 1e308", lambda: post(uploads_api, good, provider="garmin", challenge_id="1e308"),
         400, "bad_request"),
        ("challenge_id beyond a bigint", lambda: post(uploads_api, good, provider="garmin", challenge_id=str(2**63)),
         400, "bad_request"),
        ("unknown provider", lambda: post(uploads_api, good, provider="strava"), 400, "bad_request"),
        ("subject is not the signer",
         lambda: post(uploads_api, good, provider="garmin", params={"subject": "0x" + "11" * 20}), 403, "forbidden"),
        ("path-traversal filename with a NUL",
         lambda: post(uploads_api, good, provider="googlefit", params={"filename": "../../etc/passwd\x00.csv"}),
         400, "bad_request"),
    ]
    for name, send, status, code in abuse:
        response = send()
        assert (response.status_code, error_code(response)) == (status, code), (name, response.text)
        assert_serves_a_good_upload(uploads_api)

    # what httpx would not send: raw bytes on the socket
    target = b"/v1/uploads?challenge_id=42&provider=garmin"

    def request_head(extra: dict[str, str], length: int | str) -> bytes:
        headers = {**sign_headers(KEY), **extra, "content-length": str(length), "host": "127.0.0.1"}
        lines = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items())
        return b"POST " + target + b" HTTP/1.1\r\n" + lines + b"\r\n"

    declared_huge = raw_exchange(uploads_api.port, [request_head({}, 10**12)])
    assert status_of(declared_huge) == 413
    superscript_length = raw_exchange(uploads_api.port, [request_head({}, "1\u00b9")])
    assert 400 <= status_of(superscript_length) < 500
    huge_header = raw_exchange(uploads_api.port, [request_head({"x-padding": "p" * 200_000}, len(good)), good])
    assert 400 <= status_of(huge_header) < 500 or huge_header == b""  # h11 refuses oversized heads
    assert_serves_a_good_upload(uploads_api)

    # a body that stalls: refused after the idle timeout (2 s here), its partial file removed, and the
    # server answers other uploads meanwhile
    stalled: list[bytes] = []
    slow = threading.Thread(target=lambda: stalled.append(raw_exchange(
        uploads_api.port, [request_head({}, len(good)), good[:40]], read_timeout=30)))
    slow.start()
    time.sleep(0.5)
    assert_serves_a_good_upload(uploads_api)
    slow.join(30)
    assert status_of(stalled[0]) == 408 and b"body_stalled" in stalled[0]

    # a path-traversal filename is only a name: the upload is stored by its content address
    traversal = post(uploads_api, good, provider="garmin", params={"filename": "../../../../tmp/evil.gpx"})
    assert traversal.status_code == 200
    assert [p.name for p in files_under(root / "raw")] == [GOOD_REF.removeprefix("sha256:")]
    assert not any(p.name == "evil.gpx" for p in files_under(tmp_path))

    # a client that disconnects mid-body leaves no partial file either
    raw_exchange(uploads_api.port, [request_head({}, 5_000_000), b"x" * 100_000], read_timeout=0.5)
    time.sleep(0.5)
    assert files_under(root / "incoming") == []
    assert_serves_a_good_upload(uploads_api)
    assert uploads_api.alive()
    assert "Traceback" not in uploads_api.log()
    assert set(published_refs(settings)) == {GOOD_REF}
    assert [letter for letter in dead_letters(settings) if letter["stage"] == "lc-uploads"] == []


def test_partial_uploads_left_by_a_killed_server_are_removed_at_start(settings: Settings, tmp_path: Path) -> None:
    incoming = tmp_path / "uploads" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "tmpabc.part").write_bytes(b"x" * 1000)
    env = {"LC_UPLOAD_LISTEN": "127.0.0.1:{port}", "LC_UPLOAD_DIR": str(tmp_path / "uploads")}
    with running("uploads-api", settings, tmp_path / "home", env) as server:
        assert files_under(incoming) == []
        assert_serves_a_good_upload(server)
