"""Projector throughput against a raw COPY of the same rows, measured in the same run.

Publishes N evidence events (distinct rows) to a fresh topic prefix, projects them with the real
projector (consume + Avro decode + validate + COPY into a stage + upsert + fenced offsets, one
transaction per batch), then COPYs the same rows into an empty table shaped like `evidence`.
Prints both rates and their ratio (target: projector >= 0.4 x raw COPY).

    .venv/bin/python bench/projector.py [--events 200000]     (the local stack must be up: ./lc up)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg

from eventlog.admin import create_topics
from eventlog.config import Settings
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from projections.framework import Projector, load_offsets
from projections.migrate import migrate
from projections.registry import all_projections


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


def project(settings: Settings, total: int) -> float:
    projector = Projector(settings, all_projections())
    first_batch: list[float] = []
    handle = projector.handle

    def timed_handle(batch, reject) -> None:
        if not first_batch:
            first_batch.append(time.perf_counter())
        handle(batch, reject)

    projector.handle = timed_handle  # type: ignore[method-assign]
    worker = threading.Thread(target=projector.run, daemon=True)
    worker.start()
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        while sum(load_offsets(conn, projector.name).values()) < total:
            time.sleep(0.05)
        finished = time.perf_counter()
    projector.stop.set()
    worker.join(30)
    return finished - first_batch[0]


def raw_copy(settings: Settings, rows: list[tuple]) -> float:
    with psycopg.connect(settings.pg_dsn) as conn:
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
    args = parser.parse_args()
    base = Settings.from_env()
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(base.pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE bench_{tag}")
    settings = base.replace(topic_prefix=f"bench{tag}.", pg_dsn=base.pg_dsn.rsplit("/", 1)[0] + f"/bench_{tag}")
    try:
        migrate(settings.pg_dsn)
        create_topics(settings)
        rows = make_rows(args.events)
        publish_s = publish(settings, rows)
        project_s = project(settings, len(rows))
        copy_s = raw_copy(settings, rows)
    finally:
        with psycopg.connect(base.pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS bench_{tag} WITH (FORCE)")
    n = len(rows)
    print(f"events: {n}")
    print(f"publish (produce + Avro encode, acks=all): {n / publish_s:,.0f} events/s")
    print(f"projector (consume + decode + exactly-once write): {n / project_s:,.0f} rows/s")
    print(f"raw COPY of the same rows into an empty table: {n / copy_s:,.0f} rows/s")
    print(f"ratio projector / raw COPY: {copy_s / project_s:.2f} (target >= 0.40)")


if __name__ == "__main__":
    main()
