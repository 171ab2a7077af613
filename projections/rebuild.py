"""`lc rebuild`: replay every projected topic from offset zero into a fresh schema, then swap it in.

1. Migrate a new schema `lc_rebuild_<n>` with the same migration files.
2. Note the end offsets of every topic, then project from offset zero into the new schema.
3. Once it has consumed up to those end offsets, it keeps consuming until it is less than a batch
   behind what the live projector has stored. Then it takes the projectors' advisory lock
   exclusively (every live projector transaction holds it shared, first thing, so the live writer
   finishes its transaction and then waits: the live offsets stand still), consumes up to exactly
   those offsets (a bounded final catch-up: it lets go of the lock after FINAL_CATCH_UP_SECONDS and
   tries again later), and swaps in the same transaction: `public` becomes the old schema, the new
   one becomes `public`, and the old one is dropped. Readers see either the old tables or the
   complete new ones, never a half-built table nor an older state. Without the lock the rebuild
   would chase a live projector that is always a batch ahead somewhere while events keep coming.
4. The live projector's next batch finds that the stored offsets are not the ones it wrote (the
   offset fence), re-seeks to the rebuilt schema's offsets and carries on from there.
"""

from __future__ import annotations

import logging
import time

import psycopg
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


# The rebuild takes the lock once it is at most this many events behind the live projector, and gives
# it back if it has not caught up within FINAL_CATCH_UP_SECONDS (the live projector waits meanwhile).
FINAL_CATCH_UP_EVENTS = 5000
FINAL_CATCH_UP_SECONDS = 5.0


def rebuild(settings: CoreSettings, *, timeout_s: float = 3600.0) -> dict[str, object]:
    new_schema = f"lc_rebuild_{time.time_ns()}"
    migrate(settings.pg_dsn, new_schema)
    projections = all_projections()
    topics = sorted({t for p in projections for t in p.topics})
    targets = end_offsets(settings, topics)
    group = f"lc-projector-rebuild-{new_schema}"
    # its own transactions must not wait for the lock it takes itself for the final catch-up
    projector = Projector(settings, projections, schema=new_schema, group_id=group, swap_lock=False)
    gate = SwapGate(settings, projector.name)
    started = time.monotonic()

    def done() -> bool:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"rebuild did not catch up within {timeout_s:.0f} s")
        positions = projector.loop.positions()
        if not caught_up(positions, targets):
            return False
        if not gate.held:
            live = {(projector.loop.catalogue_topic(t), p): o for (t, p), o in gate.live_offsets().items()}
            if events_behind(positions, live) > FINAL_CATCH_UP_EVENTS:
                return False
            gate.hold()  # from here on the live offsets stand still
        live = {(projector.loop.catalogue_topic(t), p): o for (t, p), o in gate.live.items()}
        if not caught_up(positions, live):
            if gate.held_for() > FINAL_CATCH_UP_SECONDS:
                log.info("final catch-up took over %.0f s; the live projector goes on, the swap is tried again",
                         FINAL_CATCH_UP_SECONDS)
                gate.release()
            return False
        projector.drain()  # nothing of the rebuild may be written after the swap
        if gate.swap_in(new_schema):
            return True
        gate.release()
        return False

    try:
        projector.run(until=done)
    except BaseException:
        gate.release()
        _drop_schema(settings, new_schema)
        raise
    finally:
        gate.close()
    AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).delete_consumer_groups(
        [f"{settings.topic_prefix}{group}"]
    )
    return {"schema": new_schema, "events": sum(targets.values()), "seconds": round(time.monotonic() - started, 2),
            "live_held_seconds": round(gate.total_held, 3)}


def events_behind(positions: dict[tuple[str, int], int], live: dict[tuple[str, int], int]) -> int:
    """How many offsets the rebuild still has to consume to reach the live projector's."""
    return sum(max(0, offset - max(positions.get(key, 0), 0)) for key, offset in live.items())


class SwapGate:
    """The projectors' swap lock, held by the rebuild in an open transaction on its own connection
    for the final catch-up and the swap; `live` = the live projector's offsets, read under it."""

    def __init__(self, settings: CoreSettings, projector: str) -> None:
        self.settings = settings
        self.projector = projector
        self.conn = connect(settings.pg_dsn)
        self.live: dict[tuple[str, int], int] = {}
        self.held = False
        self._since = 0.0
        self.total_held = 0.0

    def live_offsets(self) -> dict[tuple[str, int], int]:
        return _offsets(self.conn, "public", self.projector)

    def hold(self) -> None:
        self.conn.execute("BEGIN")
        # waits for the live projector's open transaction; its next one waits for the swap's end
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SWAP_LOCK_KEY,))
        self.held, self._since = True, time.monotonic()
        self.live = self.live_offsets()

    def held_for(self) -> float:
        return time.monotonic() - self._since if self.held else 0.0

    def release(self) -> None:
        if self.held:
            self.total_held += self.held_for()
            self.held = False
            self.conn.execute("ROLLBACK")

    def swap_in(self, new_schema: str) -> bool:
        """Swap the rebuilt schema in, under the held lock, if it is at least as far as the live one."""
        rebuilt = _offsets(self.conn, new_schema, self.projector)
        if any(rebuilt.get(key, 0) < offset for key, offset in self.live.items()):
            return False
        swap_schemas(self.conn, new_schema)
        self.conn.execute("COMMIT")
        self.total_held += self.held_for()
        self.held = False
        log.info("rebuilt schema swapped in as public after %.3f s of final catch-up", self.total_held)
        return True

    def close(self) -> None:
        try:
            self.release()
        finally:
            self.conn.close()


def swap_schemas(conn: psycopg.Connection, new_schema: str) -> None:
    old_schema = f"{new_schema}_old"
    conn.execute(sql.SQL("ALTER SCHEMA public RENAME TO {}").format(sql.Identifier(old_schema)))
    conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO public").format(sql.Identifier(new_schema)))
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(old_schema)))


def _offsets(conn: psycopg.Connection, schema: str, projector: str) -> dict[tuple[str, int], int]:
    query = sql.SQL("SELECT topic, partition, next_offset FROM {}.projection_offsets WHERE projector = %s")
    return {(t, p): o for t, p, o in conn.execute(query.format(sql.Identifier(schema)), (projector,))}


def _drop_schema(settings: CoreSettings, schema: str) -> None:
    with connect(settings.pg_dsn) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
