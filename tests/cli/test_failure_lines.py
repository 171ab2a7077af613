"""Each failure an operator meets is one line of our own (what, where, what to do), not a traceback; what is
transient is retried, what is not exits non-zero."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from kits.cli import LineReader, operator_lines, run_lc, start_lc

from cli.settings import Settings
from devstack.anvil import free_port

A_KEY = "0x" + "11" * 32


def test_a_stage_reading_topics_that_do_not_exist_says_so_and_exits_1(settings: Settings) -> None:
    done = run_lc(settings, "run", "evaluator", topic_prefix=settings.topic_prefix + "typo.")
    assert done.returncode == 1
    [line] = operator_lines(done.stderr)
    assert "typo.lc.evidence" in line and "lc topics create" in line
    assert "Traceback" not in done.stderr


def test_a_writer_without_its_key_says_so_in_one_line(settings: Settings) -> None:
    done = run_lc(settings, "run", "aivm-worker", private_key="")
    assert done.returncode == 2  # a setting
    assert operator_lines(done.stderr) == [
        "lc: LC_PRIVATE_KEY is not set: this chain writer needs its wallet's private key (0x-hex) in its environment"]
    assert "Traceback" not in done.stderr


def test_a_writer_without_a_deployments_file_says_so_in_one_line(settings: Settings, tmp_path: Path) -> None:
    done = run_lc(settings, "run", "finalizer", private_key=A_KEY, deployments_file=str(tmp_path / "none.json"))
    assert done.returncode == 1
    [line] = operator_lines(done.stderr)
    assert str(tmp_path / "none.json") in line and "LC_DEPLOYMENTS_FILE" in line
    assert "Traceback" not in done.stderr


def test_ingest_with_kafka_down_is_one_line_and_exit_1(settings: Settings, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps({"challenge_id": 1, "subject": "0x" + "ab" * 20, "provider": "strava",
                                    "records": []}))
    started = time.monotonic()
    done = run_lc(settings, "ingest", "evidence", str(evidence), kafka_bootstrap=f"127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert time.monotonic() - started < 30
    [line] = operator_lines(done.stderr)
    assert "did not answer" in line and "LC_KAFKA_BOOTSTRAP" in line
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("stage", ["dispatcher", "evaluator"])
def test_a_stage_with_kafka_down_retries_quietly_and_ends_on_sigterm(settings: Settings, stage: str) -> None:
    """A transactional stage cannot read its inputs while Kafka is down: it must still end on SIGTERM, and say
    what is wrong once, not twenty times a second."""
    process = start_lc(settings, "run", stage, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    time.sleep(12)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the {stage} ignored SIGTERM while Kafka was down") from None
    stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 0, stderr
    unreachable = [line for line in stderr.splitlines() if "is unreachable" in line]
    assert len(unreachable) == 1, stderr  # one report per 30 s
    assert "FAIL" not in stderr and "rdkafka" not in stderr


def test_lag_with_postgres_unreachable_says_so_and_exits_1(settings: Settings) -> None:
    dsn = f"postgresql://lc:hunter2@127.0.0.1:{free_port()}/lightchallenge"
    done = run_lc(settings, "lag", pg_dsn=dsn)
    assert done.returncode == 1
    [line] = operator_lines(done.stderr)
    assert "PostgreSQL" in line and "projector" in line and "LC_PG_DSN" in line
    assert "hunter2" not in done.stderr + done.stdout


def test_a_writer_says_at_start_that_the_node_does_not_answer(settings: Settings, tmp_path: Path) -> None:
    deployments = tmp_path / "deployments.json"
    deployments.write_text(json.dumps({"contracts": {name: "0x" + f"{n:02x}" * 20 for n, name in enumerate(
        ["ChallengePay", "AIVMInferenceV2", "ChallengeTaskRegistry", "ChallengePayAivmPoiVerifier"], 1)}}))
    rpc = f"http://127.0.0.1:{free_port()}/api-key-in-path"
    process = start_lc(settings, "run", "finalizer", private_key=A_KEY, deployments_file=str(deployments), rpc_url=rpc)
    output = LineReader(process)
    try:
        line = output.wait_for("does not answer", timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert "LC_RPC_URL" in line and "api-key-in-path" not in "".join(output.seen)
