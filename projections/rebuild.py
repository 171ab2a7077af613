"""`lc rebuild`: replay every projected topic from offset zero into a fresh schema, then swap it in.

1. Migrate a new schema `lc_rebuild_<n>` with the same migration files.
2. Note the end offsets of every topic, then project from offset zero into the new schema.
3. Once it has consumed up to those end offsets and also as far as the live projector has got,
   swap in one transaction that holds the projectors' advisory lock exclusively (every projector
   transaction holds it shared, first thing, so the swap neither deadlocks with a writer nor lets one
   commit while it compares offsets): `public` becomes the old
   schema, the new one becomes `public`, and the old one is dropped. Readers see either the old
   tables or the complete new ones, never a half-built table nor an older state.
4. The live projector's next batch finds that the stored offsets are not the ones it wrote (the
   offset fence), re-seeks to the rebuilt schema's offsets and carries on from there.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from eventlog.config import CoreSettings
from projections.framework import SWAP_LOCK_KEY, Projector, connect
from projections.migrate import migrate
from projections.registry import all_projections

log = logging.getLogger(__name__)



def end_offsets(settings: CoreSettings, topics: list[str]) -> dict[tuple[str, int], int]:
    """High watermarks of every partition of the catalogue topics, keyed by catalogue name."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "lc-end-offsets",
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10)
        ends = {}
        for topic in topics:
            physical = settings.topic(topic)
            for partition in metadata.topics[physical].partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(physical, partition), timeout=10)
                ends[(topic, partition)] = high
        return ends
    finally:
        consumer.close()


def caught_up(positions: dict[tuple[str, int], int], targets: dict[tuple[str, int], int]) -> bool:
    """Every partition that had data at the start has been consumed up to its end offset then."""
    return all(target == 0 or positions.get(key, -1) >= target for key, target in targets.items())


def rebuild(settings: CoreSettings, *, timeout_s: float = 3600.0) -> dict[str, object]:
    new_schema = f"lc_rebuild_{time.time_ns()}"
    migrate(settings.pg_dsn, new_schema)
    projections = all_projections()
    topics = sorted({t for p in projections for t in p.topics})
    targets = end_offsets(settings, topics)
    group = f"lc-projector-rebuild-{new_schema}"
    projector = Projector(settings, projections, schema=new_schema, group_id=group)
    started = time.monotonic()

    def done() -> bool:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"rebuild did not catch up within {timeout_s:.0f} s")
        if not caught_up(projector.loop.positions(), targets):
            return False
        projector.drain()  # nothing of the rebuild may be written after the swap
        return try_swap_in(settings, new_schema, projector.name)

    try:
        projector.run(until=done)
    except BaseException:
        _drop_schema(settings, new_schema)
        raise
    AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).delete_consumer_groups(
        [f"{settings.topic_prefix}{group}"]
    )
    return {"schema": new_schema, "events": sum(targets.values()), "seconds": round(time.monotonic() - started, 2)}


def try_swap_in(settings: CoreSettings, new_schema: str, projector: str) -> bool:
    """Swap the rebuilt schema in if it is at least as far as the live one; False = not yet.

    Only the topics under the settings' prefix are compared: after a re-index into fresh topics (another
    prefix) the live schema's offsets of the old topics say nothing about the rebuilt one."""
    old_schema = f"{new_schema}_old"
    ours = {settings.topic(t) for p in all_projections() for t in p.topics}
    with connect(settings.pg_dsn) as conn, conn.transaction():
        # waits for the projectors' open transactions and holds off new ones until the swap is decided
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SWAP_LOCK_KEY,))
        live = dict(((t, p), o) for t, p, o in conn.execute(
            "SELECT topic, partition, next_offset FROM public.projection_offsets WHERE projector = %s", (projector,)))
        rebuilt = dict(((t, p), o) for t, p, o in conn.execute(
            sql.SQL("SELECT topic, partition, next_offset FROM {}.projection_offsets WHERE projector = %s").format(
                sql.Identifier(new_schema)), (projector,)))
        if any(rebuilt.get(key, 0) < offset for key, offset in live.items() if key[0] in ours):
            return False
        conn.execute(sql.SQL("ALTER SCHEMA public RENAME TO {}").format(sql.Identifier(old_schema)))
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO public").format(sql.Identifier(new_schema)))
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(old_schema)))
    log.info("rebuilt schema swapped in as public")
    return True


def _drop_schema(settings: CoreSettings, schema: str) -> None:
    with connect(settings.pg_dsn) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
