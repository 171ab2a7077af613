"""Projector throughput against a raw COPY of the same rows, measured in the same run.

Publishes N evidence events (distinct rows) to a fresh topic prefix, projects them with the real
projector processes (consume + Avro decode + validate + COPY into a stage + upsert + fenced
offsets, one transaction per batch) with one and then two instances in the consumer group, and
COPYs the same rows into an empty table shaped like `evidence`. Prints the rates and the ratios
(target: projector >= 0.4 x raw COPY).

    .venv/bin/python bench/projector.py [--events 200000] [--instances 1 2]   (stack up: ./lc up)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place, so the packages also win over the test folders named like them
# (tests/indexers, ...) once tests/ is on the path for the kits, in spawned worker processes too
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.chain_indexer import proc_cpu
from cli.settings import Settings
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from projections.framework import PROJECTOR_GROUP, load_offsets
from projections.migrate import migrate


def make_rows(n: int) -> list[tuple]:
    rows = []
    for i in range(n):
        records = json.dumps([{"activity_id": str(i), "type": "run", "distance_m": 1000 + i % 9000,
                               "duration_s": 600 + i % 3600}], separators=(",", ":"))
        rows.append((i // 4, f"0x{i % 4:040x}", "strava", records,
                     "0x" + hashlib.sha256(records.encode()).hexdigest(), None, 1_700_000_000_000 + i))
    return rows


def publish(settings: Settings, rows: list[tuple]) -> float:
    started = time.perf_counter()
    with EventProducer(settings, "bench") as producer:
        for n, (challenge, subject, provider, records, evidence_hash, raw_ref, occurred) in enumerate(rows):
            producer.publish(EVIDENCE, str(challenge), "EvidenceSubmitted",
                             {"challenge_id": challenge, "subject": subject, "provider": provider,
                              "records_json": records, "evidence_hash": evidence_hash, "raw_ref": raw_ref},
                             event_id=f"bench:{n}", occurred_at=occurred)
    return time.perf_counter() - started


def project(settings: Settings, total: int, instances: int) -> tuple[float, float, float]:
    """(rows/s, projector CPU µs per row, PostgreSQL backends' CPU µs per row) of `instances` projector
    processes (`lc run projector`) over the published events.

    Timed from the first committed batch to the last, so process start-up and the group join are
    left out: rate = rows committed after the first observation / time to the last commit. The CPU
    figures cover the whole processes (start-up included) and their database sessions.
    """
    env = {**os.environ, env_name("kafka_bootstrap"): settings.kafka_bootstrap, env_name("pg_dsn"): settings.pg_dsn,
           env_name("topic_prefix"): settings.topic_prefix, env_name("log_level"): "WARNING"}
    processes = [subprocess.Popen([sys.executable, "-m", "cli.main", "run", "projector"], cwd=PROJECT_ROOT, env=env)
                 for _ in range(instances)]
    try:
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            def committed() -> int:
                return sum(load_offsets(conn, PROJECTOR_GROUP).values())

            while (first := committed()) == 0:
                time.sleep(0.005)
            started = time.perf_counter()
            while committed() < total:
                time.sleep(0.01)
            rate = (total - first) / (time.perf_counter() - started)
            backends = sum(proc_cpu(pid) for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        cpu = 0.0
        for process in processes:
            _pid, _status, usage = os.wait4(process.pid, 0)
            cpu += usage.ru_utime + usage.ru_stime
    return rate, 1e6 * cpu / total, 1e6 * backends / total


def raw_copy(settings: Settings, rows: list[tuple]) -> float:
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute("CREATE TABLE bench_copy (LIKE evidence INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy(
            "COPY bench_copy (challenge_id, subject, provider, data, evidence_hash, raw_ref, created_at, updated_at)"
            " FROM STDIN"
        ) as copy:
            for challenge, subject, provider, records, evidence_hash, raw_ref, occurred in rows:
                at = datetime.fromtimestamp(occurred / 1000, tz=UTC)
                copy.write_row((challenge, subject, provider, records, evidence_hash, raw_ref, at, at))
        conn.commit()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    base = Settings.from_env()
    tag = uuid.uuid4().hex[:8]
    rows = make_rows(args.events)
    n = len(rows)
    print(f"events: {n}")
    print(f"load average before: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}")
    rates: dict[int, float] = {}
    cpus: dict[int, tuple[float, float]] = {}
    copy_rates: dict[int, float] = {}
    for instances in args.instances:
        settings = base.replace(topic_prefix=f"bench{tag}i{instances}.",
                                pg_dsn=base.pg_dsn.rsplit("/", 1)[0] + f"/bench_{tag}")
        with psycopg.connect(base.pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS bench_{tag} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE bench_{tag}")
        migrate(settings.pg_dsn)
        create_topics(settings)
        publish_s = publish(settings, rows)
        if instances == args.instances[0]:
            print(f"publish (produce + Avro encode, acks=all, idempotent): {n / publish_s:,.0f} events/s")
        # the baseline right before and right after the projector run, averaged: the machine is noisy
        copy_before = n / raw_copy(settings, rows)
        rates[instances], *cpu = project(settings, n, instances)
        cpus[instances] = (cpu[0], cpu[1])
        copy_rates[instances] = (copy_before + n / raw_copy(settings, rows)) / 2
        delete_prefixed_topics(settings)
    with psycopg.connect(base.pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS bench_{tag} WITH (FORCE)")
    for instances, rate in rates.items():
        print(f"projector x{instances} (consume + decode + validate + exactly-once write): {rate:,.0f} rows/s; "
              f"raw COPY of the same rows into an empty table like evidence: {copy_rates[instances]:,.0f} rows/s; "
              f"ratio {rate / copy_rates[instances]:.2f} (target >= 0.40); CPU per row: projector process(es) "
              f"{cpus[instances][0]:.1f} µs (start-up included), their PostgreSQL backends {cpus[instances][1]:.1f} µs")
    print(f"load average after: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}")


if __name__ == "__main__":
    main()
