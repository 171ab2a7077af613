"""`lc demo`: the pipeline end to end on the local stack, narrated step by step.

Runs each stage as its own process (`lc run STAGE`), the way an operator would, feeds it the demo
challenge's facts, waits for the projections the web app reads, prints them, and stops the stages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg

from cli.evidence_file import publish_evidence, read_evidence_file
from eventlog.config import PROJECT_ROOT, Settings, env_name
from eventlog.producer import EventProducer

DEMO_DIR = PROJECT_ROOT / "demo"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


@contextmanager
def stages(settings: Settings, names: list[str]) -> Iterator[None]:
    env = {**os.environ, env_name("kafka_bootstrap"): settings.kafka_bootstrap, env_name("pg_dsn"): settings.pg_dsn,
           env_name("topic_prefix"): settings.topic_prefix, env_name("rpc_url"): settings.rpc_url}
    logs = settings.home_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for name in names:
        log = open(logs / f"demo-{name}.log", "ab")
        processes.append((name, subprocess.Popen([sys.executable, "-m", "cli.main", "run", name], cwd=PROJECT_ROOT,
                                                 env=env, stdout=log, stderr=subprocess.STDOUT), log))
        print(f"   started stage {name} (log: {logs / f'demo-{name}.log'})")
    try:
        yield
    finally:
        for _name, process, _log in processes:
            process.send_signal(signal.SIGTERM)
        for name, process, log in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
            print(f"   stopped stage {name}")


def wait_for_rows(dsn: str, query: str, count: int, timeout: float = 120) -> list[tuple]:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            rows = conn.execute(query).fetchall()
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.3)


def print_rows(title: str, rows: list[tuple], columns: list[str]) -> None:
    print(f"   {title}:")
    for row in rows:
        print("     " + ", ".join(f"{c}={_short(v)}" for c, v in zip(columns, row, strict=True)))


def _short(value: object) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 90 else text[:87] + "..."


def evidence_slice(settings: Settings, evidence_file: Path, challenge_id: int) -> bool:
    say(f"evidence: {evidence_file.relative_to(PROJECT_ROOT)} -> lc.evidence -> projector -> public.evidence")
    inputs = [replace(e, challenge_id=challenge_id) for e in read_evidence_file(evidence_file)]
    with EventProducer(settings, "lc-demo") as producer:
        for evidence in inputs:
            publish_evidence(producer, evidence)
    print(f"   published {len(inputs)} EvidenceSubmitted events")
    challenge_ids = ",".join(sorted({str(e.challenge_id) for e in inputs}))
    rows = wait_for_rows(
        settings.pg_dsn,
        "SELECT challenge_id, subject, provider, jsonb_array_length(data), evidence_hash, updated_at FROM evidence"
        f" WHERE challenge_id IN ({challenge_ids}) ORDER BY subject",
        len(inputs),
    )
    print_rows("evidence rows", rows, ["challenge", "subject", "provider", "records", "hash", "updated_at"])
    return len(rows) == len(inputs)


def run_demo(settings: Settings) -> int:
    # the demo challenge gets an id of its own per run, so its facts never mix with an earlier run's
    challenge_id = 1_000_000 + int(time.time()) % 1_000_000
    steps: list[tuple[list[str], Callable[[Settings], bool]]] = [
        (["projector"], lambda s: evidence_slice(s, DEMO_DIR / "evidence.json", challenge_id)),
    ]
    ok = True
    for stage_names, step in steps:
        with stages(settings, stage_names):
            ok = step(settings) and ok
    say("demo " + ("finished: every projection arrived" if ok else "FAILED: a projection did not arrive in time"))
    return 0 if ok else 1
