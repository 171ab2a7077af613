"""`lc rebuild` with and without live traffic, measured in the same run (issue 15: within 2x).

Publishes N evidence events (as bench/projector.py makes them) to a fresh topic prefix and a fresh
database, starts the live projector (`lc run projector`, its own process) and a publisher process
that publishes evidence at --rate events/s (new rows and updates of existing ones) for a few seconds
while the live projector follows it, then pauses it; then:
1. quiet: `rebuild()` (this process) while nothing is published;
2. live: the publisher resumes, and `rebuild()` runs again while the live projector keeps up with it.
Both rebuilds start from the same history (the busy one also has the events of its first half
second of traffic), so the ratio compares a rebuild with and without live traffic, not two
histories. Prints both rebuild times and the ratio (target: live <= 2 x quiet), how long the live
projector was held by the swap, whether the live projector then followed the swapped-in tables to
the end (its offsets reach the topic's end and the row count is right), the machine load before and
after, and the CPU per event of each process.

    .venv/bin/python bench/rebuild.py [--events 150000] [--rate 15000]   (stack up: ./lc up)
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place, so the packages also win over the test folders named like them
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import psycopg
import psycopg.conninfo

from bench.chain_indexer import proc_cpu
from bench.projector import make_rows
from cli.settings import Settings
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.process import tune_process
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from projections.framework import PROJECTOR_GROUP, load_offsets
from projections.migrate import migrate
from projections.rebuild import end_offsets, rebuild


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def publish_rows(producer: EventProducer, rows: list[tuple], first_id: int) -> None:
    for n, (challenge, subject, provider, records, evidence_hash, raw_ref, occurred) in enumerate(rows, first_id):
        producer.publish(EVIDENCE, str(challenge), "EvidenceSubmitted",
                         {"challenge_id": challenge, "subject": subject, "provider": provider,
                          "records_json": records, "evidence_hash": evidence_hash, "raw_ref": raw_ref},
                         event_id=f"bench:{n}", occurred_at=occurred)


def publish_at_rate(settings: Settings, rows: list[tuple], rate: float, stop: multiprocessing.Event,
                    paused: multiprocessing.Event, published: multiprocessing.Value) -> None:
    """In its own process: `rate` events/s in chunks of 1% of a second, cycling through `rows`; nothing
    while `paused` is set (the rate is kept from the resumption on, without a burst to catch up)."""
    chunk = max(1, int(rate / 100))
    with EventProducer(settings, "bench-live", extra_config={"linger.ms": 5}) as producer:
        n = 0
        while not stop.is_set():
            if paused.is_set():
                producer.flush()
                published.value = n
                while paused.is_set() and not stop.is_set():
                    time.sleep(0.01)
            started, resumed_at = time.monotonic(), n
            while not stop.is_set() and not paused.is_set():
                part = [rows[(n + i) % len(rows)] for i in range(chunk)]
                publish_rows(producer, part, 10_000_000 + n)
                n += chunk
                published.value = n
                delay = started + (n - resumed_at) / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)


def start_projector(settings: Settings) -> subprocess.Popen:
    env = {**os.environ, env_name("kafka_bootstrap"): settings.kafka_bootstrap, env_name("pg_dsn"): settings.pg_dsn,
           env_name("topic_prefix"): settings.topic_prefix, env_name("log_level"): "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run", "projector"], cwd=PROJECT_ROOT, env=env)


def lag(settings: Settings, conn: psycopg.Connection) -> int:
    ends = {(settings.topic(t), p): o for (t, p), o in end_offsets(settings, [EVIDENCE]).items()}
    stored = load_offsets(conn, PROJECTOR_GROUP)
    return sum(max(0, end - stored.get(key, 0)) for key, end in ends.items())


def wait_live_at_end(settings: Settings, conn: psycopg.Connection, timeout: float = 300) -> float:
    """Seconds until the live projector's stored offsets reach the topic's end offsets."""
    started = time.monotonic()
    ends = {(settings.topic(t), p): o for (t, p), o in end_offsets(settings, [EVIDENCE]).items() if o}
    while True:
        stored = load_offsets(conn, PROJECTOR_GROUP)
        # the end offset of a transactional topic sits past the commit marker; the producer here is not
        if all(stored.get(key, 0) >= end for key, end in ends.items()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"live projector not at the end after {timeout} s: {stored} vs {ends}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--rate", type=float, default=15_000.0, help="live events per second during the second rebuild")
    parser.add_argument("--timeout", type=float, default=300.0, help="give the rebuild under traffic up this long")
    options = parser.parse_args()
    tune_process()  # as `lc rebuild` does
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    base = Settings.from_env()
    tag = uuid.uuid4().hex[:8]
    conninfo = psycopg.conninfo.conninfo_to_dict(base.pg_dsn)
    admin_dsn = psycopg.conninfo.make_conninfo(**{**conninfo, "dbname": "postgres"})
    database = f"bench_rebuild_{tag}"
    settings = base.replace(topic_prefix=f"bench{tag}.",
                            pg_dsn=psycopg.conninfo.make_conninfo(**{**conninfo, "dbname": database}))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    live: subprocess.Popen | None = None
    rows = make_rows(options.events)
    spawn = multiprocessing.get_context("spawn")
    stop, paused = spawn.Event(), spawn.Event()
    published = spawn.Value("q", 0)
    publisher = spawn.Process(
        target=publish_at_rate, args=(settings, rows, options.rate, stop, paused, published), daemon=True)
    try:
        migrate(settings.pg_dsn)
        create_topics(settings)
        with EventProducer(settings, "bench") as producer:
            publish_rows(producer, rows, 0)
        live = start_projector(settings)
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            wait_live_at_end(settings, conn)
            publisher.start()
            time.sleep(3)  # the live projector follows the traffic; what it publishes is history for both rebuilds
            paused.set()
            time.sleep(0.2)
            wait_live_at_end(settings, conn)
            print(f"history: {options.events} evidence events and {published.value} of live traffic, projected by "
                  f"the live projector; load {load()}")

            cpu_before = {"this process": own_cpu(), "live projector": proc_cpu(live.pid)}
            quiet = rebuild(settings)
            cpu_quiet = {name: cpu - cpu_before[name] for name, cpu in
                         {"this process": own_cpu(), "live projector": proc_cpu(live.pid)}.items()}
            print(f"rebuild, no live traffic: {quiet['seconds']:.2f} s ({quiet['events']} events); load {load()}")
            print("  CPU per rebuilt event: " + ", ".join(f"{name} {1e6 * v / quiet['events']:.1f} us"
                                                        for name, v in cpu_quiet.items()))
            wait_live_at_end(settings, conn)

            paused.clear()
            time.sleep(0.5)  # the publisher is back at its rate and the live projector follows it
            print(f"live projector behind the topic's end when the rebuild starts: {lag(settings, conn):,} events")
            cpu_before = {"this process": own_cpu(), "live projector": proc_cpu(live.pid),
                          "publisher": proc_cpu(publisher.pid)}
            sent_before = published.value
            try:
                busy = rebuild(settings, timeout_s=options.timeout)
            except TimeoutError:
                print(f"rebuild under traffic did not finish within {options.timeout:.0f} s; load {load()}")
                return
            rate = (published.value - sent_before) / busy["seconds"]
            cpu_busy = {name: cpu - cpu_before[name] for name, cpu in
                        {"this process": own_cpu(), "live projector": proc_cpu(live.pid),
                         "publisher": proc_cpu(publisher.pid)}.items()}
            stop.set()
            print(f"rebuild, live traffic at {rate:,.0f} events/s: {busy['seconds']:.2f} s ({busy['events']} events at "
                  f"its start; the live projector held {busy.get('live_held_seconds', 0):.3f} s for the final "
                  f"catch-up and the swap); load {load()}")
            print("  CPU per rebuilt event: " + ", ".join(f"{name} {1e6 * v / busy['events']:.1f} us"
                                                        for name, v in cpu_busy.items()))
            followed = wait_live_at_end(settings, conn)
            rows_now = conn.execute("SELECT count(*) FROM evidence").fetchone()[0]
            print(f"live projector at the topic's end {followed:.1f} s after the publisher stopped; evidence rows "
                  f"{rows_now} (expected {len(rows)})")
            print(f"ratio live / quiet: {busy['seconds'] / quiet['seconds']:.2f} (target <= 2)")
    finally:
        stop.set()
        if publisher.pid is not None:
            publisher.join(30)
        if live is not None:
            live.send_signal(signal.SIGTERM)
            live.wait(60)
        delete_prefixed_topics(settings)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
