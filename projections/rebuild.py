"""`lc rebuild`: replay every projected topic from offset zero into a scratch schema, then swap the
owned tables in, one by one, in one transaction. Nothing the pipeline does not own is touched.

1. Apply pending migrations to the live schema (so both sides have the same tables), drop what
   interrupted rebuilds left behind, and mark a new scratch schema `lc_rebuild_<n>` as in use
   (`projections.scratch`: a session advisory lock, released by any death of this process or of the
   database session) before migrating it.
2. Refuse early, before the replay, if the web app built something on an owned table that cannot be
   carried over (`projections.swap.inspect`).
3. Note the end offsets of every topic, then project from offset zero into the scratch schema.
4. Once it has consumed up to those end offsets, it keeps consuming until it is less than a batch
   behind what the live projector has stored. Then it takes the projectors' advisory lock
   exclusively (every live projector transaction holds it shared, first thing, so the live writer
   finishes its transaction and then waits: the live offsets stand still), consumes up to exactly
   those offsets (a bounded final catch-up: it lets go of the lock after FINAL_CATCH_UP_SECONDS and
   tries again later), and swaps in the same transaction: each owned table moves out, its rebuilt
   twin moves in, the dependent views and foreign keys are recreated, the old tables are dropped
   (`projections.swap`). Readers see either the old tables or the complete new ones, never a
   half-built table nor an older state. The shared `notifications` and the kept tables (bookkeeping,
   delivered notifications) stay. Without the lock the rebuild would chase a live projector that is
   always a batch ahead somewhere while events keep coming (83 s instead of 5-9 s at 15,000 events/s).
5. The live projector's next batch finds that the stored offsets are not the ones it wrote (the
   offset fence), re-seeks to the rebuilt tables' offsets and carries on from there.

Stopped (SIGTERM) or failed before the swap, the rebuild drops its scratch schema and raises; killed
(SIGKILL) or cut off by a database restart, it leaves the schema for the next `lc migrate`, `lc up`
or `lc rebuild` to drop. The live tables are never half-changed: the swap is one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from eventlog.config import CoreSettings
from eventlog.consumer import StopFlag
from projections import scratch
from projections.framework import PROJECTOR_GROUP, SWAP_LOCK_KEY, Projector, connect
from projections.migrate import applied_migrations, migrate
from projections.ownership import LIVE_SCHEMA
from projections.registry import all_projections
from projections.swap import RebuildRefused, inspect, refusal_message, swap_in

log = logging.getLogger(__name__)

REBUILD_GROUP_PREFIX = f"{PROJECTOR_GROUP}-rebuild-"
SWAP_LOCK_TIMEOUT = "10s"  # a reader holding an owned table longer makes the swap try again later
# The rebuild takes the swap lock once it is at most this many events behind the live projector, and
# gives it back if it has not caught up within FINAL_CATCH_UP_SECONDS (the live projector waits meanwhile).
FINAL_CATCH_UP_EVENTS = 5000
FINAL_CATCH_UP_SECONDS = 5.0


class RebuildInterrupted(RuntimeError):
    """The rebuild stopped before its tables were swapped in; the live tables are unchanged."""


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


def rebuild(settings: CoreSettings, *, timeout_s: float = 3600.0, stop: StopFlag | None = None) -> dict[str, object]:
    migrate(settings.pg_dsn)  # pending migrations, shared tables, leftovers of interrupted rebuilds
    _delete_stale_groups(settings)
    new_schema = scratch.new_scratch_name()
    holder = scratch.ScratchHold(settings.pg_dsn, new_schema)  # marks the scratch schema as in use
    swapped = False
    started = time.monotonic()
    try:
        migrate(settings.pg_dsn, new_schema, scratch_schema=True)
        refuse_early(settings, new_schema)
        projections = all_projections()
        topics = sorted({t for p in projections for t in p.topics})
        targets = end_offsets(settings, topics)
        # its own transactions must not wait for the lock it takes itself for the final catch-up
        projector = Projector(settings, projections, schema=new_schema, group_id=REBUILD_GROUP_PREFIX + new_schema,
                              stop=stop, swap_lock=False)
        gate = SwapGate(settings, projector.name)

        def done() -> bool:
            nonlocal swapped
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"rebuild did not catch up within {timeout_s:.0f} s")
            holder.ensure()
            if projector.stop.is_set():
                gate.release()
                return False  # stopped: the loop ends without a swap
            positions = projector.loop.positions()
            if not caught_up(positions, targets):
                return False
            if not gate.held:
                if events_behind(positions, gate.live_offsets(projector.loop.catalogue_topic)) > FINAL_CATCH_UP_EVENTS:
                    return False
                gate.hold()  # from here on the live offsets stand still
            if not caught_up(positions, gate.live_positions(projector.loop.catalogue_topic)):
                if gate.held_for() > FINAL_CATCH_UP_SECONDS:
                    log.info("final catch-up took over %.0f s; the live projector goes on, the swap is tried again",
                             FINAL_CATCH_UP_SECONDS)
                    gate.release()
                return False
            projector.drain()  # nothing of the rebuild may be written after the swap
            if projector.stop.is_set():
                gate.release()
                return False
            swapped = gate.swap_in(new_schema)
            return swapped

        try:
            projector.run(until=done)
        finally:
            gate.close()
        if not swapped:
            raise RebuildInterrupted(f"rebuild stopped before its tables were swapped in; {LIVE_SCHEMA} is unchanged")
    except BaseException:
        _drop_schema(settings, new_schema)
        raise
    finally:
        holder.close()
        _delete_groups(settings, [REBUILD_GROUP_PREFIX + new_schema])
    return {"schema": new_schema, "events": sum(targets.values()), "seconds": round(time.monotonic() - started, 2),
            "live_held_seconds": round(gate.total_held, 3)}


def events_behind(positions: dict[tuple[str, int], int], live: dict[tuple[str, int], int]) -> int:
    """How many offsets the rebuild still has to consume to reach the live projector's."""
    return sum(max(0, offset - max(positions.get(key, 0), 0)) for key, offset in live.items())


def refuse_early(settings: CoreSettings, new_schema: str) -> None:
    """Raise RebuildRefused before the replay when the swap could not carry the dependents over."""
    with connect(settings.pg_dsn) as conn, conn.transaction():
        conn.execute("SELECT set_config('search_path', '', true)")
        found = inspect(conn, LIVE_SCHEMA, new_schema)
    if found.refused:
        raise RebuildRefused(refusal_message(found))


class SwapGate:
    """The projectors' swap lock, held by the rebuild in an open transaction on its own connection for
    the final catch-up and the swap. Only the topics under the settings' prefix count: after a re-index
    into fresh topics (another prefix) the live schema's offsets of the old topics say nothing about the
    rebuilt one."""

    def __init__(self, settings: CoreSettings, projector: str) -> None:
        self.projector = projector
        self.ours = {settings.topic(t) for p in all_projections() for t in p.topics}
        self.conn = connect(settings.pg_dsn)
        self.live: dict[tuple[str, int], int] = {}  # read under the lock
        self.held = False
        self._since = 0.0
        self.total_held = 0.0

    def live_offsets(self, catalogue: Callable[[str], str]) -> dict[tuple[str, int], int]:
        """The live projector's stored offsets now, by (catalogue topic, partition)."""
        return {(catalogue(t), p): o for (t, p), o in _offsets(self.conn, LIVE_SCHEMA, self.projector).items()
                if t in self.ours}

    def live_positions(self, catalogue: Callable[[str], str]) -> dict[tuple[str, int], int]:
        return {(catalogue(t), p): o for (t, p), o in self.live.items()}

    def hold(self) -> None:
        self.conn.execute("BEGIN")
        # waits for the live projector's open transaction; its next one waits until this one ends
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SWAP_LOCK_KEY,))
        self.conn.execute("SELECT set_config('lock_timeout', %s, true)", (SWAP_LOCK_TIMEOUT,))
        self.held, self._since = True, time.monotonic()
        self.live = {key: o for key, o in _offsets(self.conn, LIVE_SCHEMA, self.projector).items()
                     if key[0] in self.ours}

    def held_for(self) -> float:
        return time.monotonic() - self._since if self.held else 0.0

    def release(self) -> None:
        if self.held:
            self.total_held += self.held_for()
            self.held = False
            self.conn.execute("ROLLBACK")

    def swap_in(self, new_schema: str) -> bool:
        """Swap the rebuilt tables in, under the held lock, if they are at least as far as the live
        ones; False = not yet (the lock is given back)."""
        try:
            rebuilt = _offsets(self.conn, new_schema, self.projector)
            if any(rebuilt.get(key, 0) < offset for key, offset in self.live.items()):
                self.release()
                return False
            if applied_migrations(self.conn, LIVE_SCHEMA) != applied_migrations(self.conn, new_schema):
                raise RebuildRefused(f"{LIVE_SCHEMA} and {new_schema} have different migrations applied "
                                     "(lc migrate ran during the rebuild?): rebuild again")
            carried = swap_in(self.conn, LIVE_SCHEMA, new_schema)
            self.conn.execute("COMMIT")
        except psycopg.errors.LockNotAvailable:
            log.info("an owned table is busy; the swap is tried again")
            self.release()
            return False
        self.total_held += self.held_for()
        self.held = False
        log.info("rebuilt tables swapped into %s after %.3f s of final catch-up; carried over: %s", LIVE_SCHEMA,
                 self.total_held, carried.describe())
        return True

    def close(self) -> None:
        try:
            self.release()
        except psycopg.Error:
            pass
        finally:
            self.conn.close()


def _offsets(conn: psycopg.Connection, schema: str, projector: str) -> dict[tuple[str, int], int]:
    query = sql.SQL("SELECT topic, partition, next_offset FROM {}.projection_offsets WHERE projector = %s")
    return {(t, p): o for t, p, o in conn.execute(query.format(sql.Identifier(schema)), (projector,))}


def _drop_schema(settings: CoreSettings, schema: str) -> None:
    """Best effort: when the database is unreachable the next migrate drops it (projections.scratch)."""
    try:
        with connect(settings.pg_dsn) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except psycopg.Error as exc:
        log.warning("could not drop %s now (%s); the next lc migrate drops it", schema, exc)


def _delete_stale_groups(settings: CoreSettings) -> None:
    """Consumer groups of rebuilds whose scratch schema is gone (a SIGKILL leaves the group behind)."""
    try:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
        prefix = f"{settings.topic_prefix}{REBUILD_GROUP_PREFIX}"
        groups = [g.group_id for g in listed.valid if g.group_id.startswith(prefix)]
        if not groups:
            return
        with connect(settings.pg_dsn) as conn:
            schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
        stale = [g for g in groups if g.removeprefix(prefix) not in schemas]
        _delete_groups(settings, stale, prefixed=True)
    except (KafkaException, TimeoutError, psycopg.Error) as exc:
        log.warning("stale rebuild consumer groups not cleaned: %s", exc)


def _delete_groups(settings: CoreSettings, groups: list[str], *, prefixed: bool = False) -> None:
    if not groups:
        return
    names = groups if prefixed else [f"{settings.topic_prefix}{g}" for g in groups]
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.delete_consumer_groups(names, request_timeout=10).values():
        try:
            future.result(timeout=15)
        except (KafkaException, TimeoutError) as exc:  # never worth holding the rebuild for
            log.info("consumer group not deleted: %s", exc)
