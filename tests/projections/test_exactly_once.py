"""Exactly once into PostgreSQL: a projector killed with SIGKILL mid-stream and restarted."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime

import psycopg
import pytest
from kits.background import wait_for
from kits.evidence import evidence_rows

from cli.settings import Settings
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE

EVENTS = 50_000


def projector_process(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, env_name("kafka_bootstrap"): settings.kafka_bootstrap,
           env_name("pg_dsn"): settings.pg_dsn, env_name("topic_prefix"): settings.topic_prefix,
           env_name("log_level"): "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run", "projector"], cwd=PROJECT_ROOT, env=env)


def projected(settings: Settings) -> int:
    with psycopg.connect(settings.pg_dsn) as conn:
        return int(conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()[0])


def publish_stream(settings: Settings) -> dict[tuple[int, str, str], tuple[str, str, int, int]]:
    """Publish EVENTS evidence events; return the rows applying them one by one must give."""
    rng = random.Random(50_000)
    expected: dict[tuple[int, str, str], tuple[str, str, int, int]] = {}
    with EventProducer(settings, "test") as producer:
        for n in range(EVENTS):
            challenge, subject = rng.randrange(500), f"0x{rng.randrange(8):040x}"
            provider = rng.choice(["strava", "fitbit"])
            records = [{"v": rng.randrange(3)}]
            data = json.dumps(records, separators=(",", ":"))
            evidence_hash = "0x" + hashlib.sha256(data.encode()).hexdigest()
            producer.publish(
                EVIDENCE, str(challenge), "EvidenceSubmitted",
                {"challenge_id": challenge, "subject": subject, "provider": provider, "records_json": data,
                 "evidence_hash": evidence_hash, "raw_ref": None},
                event_id=f"eo:{n}", occurred_at=1_700_000_000_000 + n,
            )
            key = (challenge, subject, provider)
            row = expected.get(key)
            occurred = 1_700_000_000_000 + n
            if row is None:
                expected[key] = (data, evidence_hash, occurred, occurred)
            elif row[1] != evidence_hash:
                expected[key] = (data, evidence_hash, row[2], occurred)
    return expected


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@pytest.mark.slow
def test_sigkill_mid_stream_then_restart_gives_exactly_the_expected_rows(settings: Settings) -> None:
    expected = publish_stream(settings)
    first = projector_process(settings)
    try:
        wait_for(lambda: projected(settings) > 0, timeout=120, what="the first committed batch")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        first.kill()
    at_kill = projected(settings)
    assert 0 < at_kill < EVENTS, f"the kill should land mid-stream, it landed at {at_kill}"

    second = projector_process(settings)
    try:
        wait_for(lambda: projected(settings) == EVENTS, timeout=300, what="all events projected after restart")
        time.sleep(1)  # anything applied twice would show up as a moved offset or changed row now
        assert projected(settings) == EVENTS
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0

    want = sorted(
        (c, s, p, json.loads(d), h, None, created, updated)
        for (c, s, p), (d, h, created, updated) in expected.items()
    )
    got = [(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], epoch_ms(r[6]), epoch_ms(r[7]))
           for r in evidence_rows(settings.pg_dsn)]
    assert len(got) == len(want)
    assert hashlib.sha256(repr(got).encode()).hexdigest() == hashlib.sha256(repr(want).encode()).hexdigest()
