"""Registrations through `lc challenge register FILE` and the HTTP stage, on the real broker and database:
a good one is published and projected to `challenges`; an unauthenticated, replayed, forbidden or invalid
one publishes nothing, and the identified refusals reach lc.dlq with the reason."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from kits.background import Background, wait_for
from starlette.testclient import TestClient

from cli.main import main as lc
from cli.settings import Settings
from cli.tail import tail
from eventlog.consumer import StopFlag
from eventlog.producer import EventProducer
from eventlog.topics import CHALLENGES_REGISTERED, DLQ
from intake.auth import SignatureVerifier, sign_headers
from intake.registrations.api import build_app, run_registrations_api
from intake.registrations.cli import register_file
from intake.registrations.owners import RegistrationIndex
from intake.replay import ReplayStore
from projections.framework import Projector
from projections.registry import all_projections

# anvil's first dev account: a well-known test key, never a real one
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
TIMELINE = {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-08T00:00:00Z",
            "proofDeadline": "2026-01-09T00:00:00Z"}
STORED_TIMELINE = {key: value.replace("Z", ".000Z") for key, value in TIMELINE.items()}  # as the web app writes it


def registration(cid: int, **changes: Any) -> dict[str, Any]:
    return {"id": cid, "subject": ADDRESS, "model_id": "fitness.steps@1", "title": f"Steps {cid}",
            "params": {"rule": {"challengeType": "steps", "mode": "competitive", "topN": 2,
                                "competitiveMetric": "steps", "period": {"start": "2026-01-01T00:00:00Z",
                                                                         "end": "2026-01-08T00:00:00Z"}}},
            "timeline": TIMELINE, "options": {"mode": "competitive", "category": "fitness"}, **changes}


def events(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in tail(settings, topic, follow=False)]


def project(settings: Settings, count: int) -> None:
    projector = Projector(settings, all_projections())
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        def done() -> bool:
            row = conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()
            return int(row[0]) >= count
        projector.run(until=done)


def challenge_row(settings: Settings, cid: int) -> tuple:
    with psycopg.connect(settings.pg_dsn) as conn:
        return conn.execute(
            "SELECT title, subject, model_id, params, timeline, options, status, registry_status, registry_tx_hash,"
            " registry_error, auto_distributed, created_at FROM challenges WHERE id = %s", (cid,)).fetchone()


def test_cli_publishes_a_good_registration_and_dead_letters_a_bad_one(settings: Settings, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(registration(31)))
    result = register_file(settings, good)
    assert result.refused == [] and len(result.published) == 1

    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps([registration(32), registration(33, subject="bob")]))
    result = register_file(settings, mixed)
    assert len(result.published) == 1 and len(result.refused) == 1
    assert "subject must be a 0x-prefixed 20-byte hex address" in result.refused[0]

    published = events(settings, CHALLENGES_REGISTERED)
    assert sorted(e["payload"]["challenge_id"] for e in published) == [31, 32]
    payload = next(e["payload"] for e in published if e["payload"]["challenge_id"] == 31)
    assert (payload["mode"], payload["top_n"], payload["source"], payload["subject"]) == (
        "competitive", 2, "cli", ADDRESS.lower())
    dead = events(settings, DLQ)
    assert len(dead) == 1
    assert dead[0]["payload"]["source_topic"] == CHALLENGES_REGISTERED
    assert "subject must be" in dead[0]["payload"]["reason"] and dead[0]["payload"]["source_key"] == "33"

    project(settings, 2)
    title, subject, model_id, params, timeline, options, status, *registry, auto, created = challenge_row(settings, 31)
    assert (title, subject, model_id) == ("Steps 31", ADDRESS.lower(), "fitness.steps@1")
    assert (params, timeline, options) == (registration(31)["params"], STORED_TIMELINE, registration(31)["options"])
    assert status is None  # registered, not yet created on chain
    assert (registry, auto) == (["pending", None, None], False)  # the registry tracking columns' defaults
    assert created is not None


def test_lc_challenge_register_exit_status(settings: Settings, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("LC_TOPIC_PREFIX", settings.topic_prefix)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(registration(34)))
    bad.write_text("{ not json")
    assert lc(["challenge", "register", str(good)]) == 0
    assert lc(["challenge", "register", str(bad)]) == 1
    assert [e["payload"]["challenge_id"] for e in events(settings, CHALLENGES_REGISTERED)] == [34]
    (dead,) = events(settings, DLQ)
    assert "not JSON" in dead["payload"]["reason"]


def test_http_registration_auth_replay_and_validation(settings: Settings, tmp_path: Path) -> None:
    store = ReplayStore(tmp_path / "replay.sqlite")
    owners = RegistrationIndex(settings)
    owners.catch_up()
    with EventProducer(settings, "lc-registrations-api") as producer:
        client = TestClient(build_app(producer, SignatureVerifier(store), owners))
        body = json.dumps(registration(41)).encode()

        assert client.post("/challenges", content=body).status_code == 401  # unauthenticated
        headers = sign_headers(KEY)
        accepted = client.post("/challenges", content=body, headers=headers)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["challenge_id"] == 41
        replayed = client.post("/challenges", content=json.dumps(registration(42)).encode(), headers=headers)
        assert (replayed.status_code, replayed.json()["code"]) == (401, "replayed")
        stale = sign_headers(KEY, now_ms=1_000)
        assert client.post("/challenges", content=body, headers=stale).json()["code"] == "expired"

        invalid = client.post("/challenges", content=json.dumps(registration(43, timeline={})).encode(),
                              headers=sign_headers(KEY))
        assert invalid.status_code == 422 and "timeline needs startsAt" in invalid.json()["error"]
        too_large = client.post("/challenges", content=b" " * (256 * 1024 + 1), headers=sign_headers(KEY))
        assert too_large.status_code == 413
        forbidden = client.post("/challenges", content=json.dumps(registration(44)).encode(),
                                headers=sign_headers(OTHER_KEY))
        assert forbidden.status_code == 403
    store.close()
    owners.close()

    published = events(settings, CHALLENGES_REGISTERED)
    assert [(e["payload"]["challenge_id"], e["payload"]["source"], e["payload"]["registered_by"])
            for e in published] == [(41, "http", ADDRESS.lower())]
    reasons = sorted(e["payload"]["reason"] for e in events(settings, DLQ))
    assert len(reasons) == 3  # the unauthenticated ones leave no trace
    assert "invalid registration: timeline needs startsAt" in reasons[0]
    assert "registration exceeds 262144 bytes" in reasons[1]
    assert "is not the challenge's subject" in reasons[2]

    project(settings, 1)
    assert challenge_row(settings, 41)[:3] == ("Steps 41", ADDRESS.lower(), "fitness.steps@1")


def test_the_registrations_api_stage_serves_over_http(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stage_settings = settings.replace(registrations_api_listen=f"127.0.0.1:{port}", home=str(tmp_path))
    stop = StopFlag()
    stage = Background(lambda: run_registrations_api(stage_settings, stop), stop.set)
    try:
        def answering() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
            except httpx.TransportError:
                return False
        wait_for(answering, what="the registrations API to answer")
        reply = httpx.post(f"http://127.0.0.1:{port}/challenges", content=json.dumps(registration(51)),
                           headers=sign_headers(KEY))
        assert reply.status_code == 202, reply.text
    finally:
        stage.stop()
    assert [e["payload"]["challenge_id"] for e in events(settings, CHALLENGES_REGISTERED)] == [51]
