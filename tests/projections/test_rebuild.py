"""`lc rebuild` while events keep arriving ends with the table the live projector would have."""

from __future__ import annotations

import threading
import time

import psycopg
from kits.background import Background, wait_for
from kits.evidence import evidence_rows, publish

from cli.settings import Settings
from eventlog.admin import describe_topics
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from projections.framework import Projector, load_offsets
from projections.migrate import migrate
from projections.rebuild import rebuild
from projections.registry import all_projections


def keep_publishing(settings: Settings, stop: threading.Event, start: int) -> int:
    n = start
    with EventProducer(settings, "test-feed") as producer:
        while not stop.is_set():
            publish(producer, n % 40, f"0x{n % 3:040x}", "strava", [{"n": n % 5}], occurred_at=1_000 + n)
            n += 1
            if n % 50 == 0:
                producer.flush()
                time.sleep(0.01)
    return n


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    (state,) = [s for s in describe_topics(settings) if s.name == EVIDENCE]
    return {(settings.topic(EVIDENCE), p): end for p, end in enumerate(state.end_offsets) if end}


def test_rebuild_under_load_swaps_in_a_table_equal_to_the_live_one(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        for n in range(2_000):
            publish(producer, n % 40, f"0x{n % 3:040x}", "strava", [{"n": n % 5}], occurred_at=n)
    live = Projector(settings, all_projections())
    live_worker = Background(live.run, live.stop.set)
    stop_feed = threading.Event()
    feed = threading.Thread(target=keep_publishing, args=(settings, stop_feed, 2_000), daemon=True)
    try:
        with psycopg.connect(settings.pg_dsn) as conn:
            wait_for(lambda: sum(load_offsets(conn, "lc-projector").values()) >= 2_000, what="live catch-up")
            # a wrong row in the live table: the rebuilt table must not carry it over
            conn.execute("UPDATE evidence SET evidence_hash = 'corrupted' WHERE challenge_id = 7")
            conn.commit()
        feed.start()
        time.sleep(1)
        result = rebuild(settings, timeout_s=240)
        assert result["schema"].startswith("lc_rebuild_")
        time.sleep(1)
    finally:
        stop_feed.set()
        feed.join(30)
    try:
        targets = end_offsets(settings)
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            wait_for(lambda: load_offsets(conn, "lc-projector") == targets, timeout=120,
                     what="the live projector to follow the swapped-in schema to the end")
            leftovers = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'lc_rebuild%'").fetchall()
        assert leftovers == []
        swapped_in = evidence_rows(settings.pg_dsn)
    finally:
        live_worker.stop()

    # the reference: a second, independent full projection of the same topics into its own schema
    migrate(settings.pg_dsn, "reference")
    reference = Projector(settings, all_projections(), schema="reference", group_id="reference")
    reference.run(until=lambda: reference.loop.positions() and all(
        reference.loop.positions().get((EVIDENCE, p), -1) >= v for (_t, p), v in targets.items()))
    expected = evidence_rows(settings.pg_dsn, "reference")
    assert len(expected) == 120
    assert swapped_in == expected
    assert all(row[4] != "corrupted" for row in swapped_in)
