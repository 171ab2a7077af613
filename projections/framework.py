"""The projector framework: topics in, PostgreSQL rows out, exactly once.

A `Projector` is one consumer group (`lc-projector`) hosting several `Projection`s. For every batch
it opens one database transaction, lets each projection apply the events of its topics, writes its
consumer offsets into `projection_offsets`, and commits. On assignment it seeks to the stored
offsets, so a crash at any point (kill -9 included) resumes exactly after the last committed batch.

The offsets write is fenced: it only succeeds if the stored offset is still the one this projector
last wrote (or read on assignment). If another writer moved it (a stale owner after a rebalance, or
`lc rebuild` swapping in a freshly built schema), the batch is rolled back and the projector
re-seeks to what is stored. That keeps rows and offsets in agreement under every interleaving.

A failed write is logged at once. A lost connection (or a serialization failure) is transient: the
batch's transaction rolled back, so the writer reconnects and writes it again, backing off, for a
bounded time. Any other database error (the data cannot be stored) stops the projector within one
poll, non-zero, so a supervisor restarts it; its offsets are not moved past the batch.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from confluent_kafka import TopicPartition

from eventlog import metrics
from eventlog.config import CoreSettings
from eventlog.consumer import ConsumerLoop, Received, Reject, StopFlag
from eventlog.processing.restore import FROM_THE_START

log = logging.getLogger(__name__)

PROJECTOR_GROUP = "lc-projector"
# Longest wait of a consume() for a full batch. While events arrive faster than they are written the
# batches fill up anyway; when they trickle in (or the last few of a burst), a long wait only adds
# latency: a batch short of `batch_size` waits this long before it is written.
POLL_SECONDS = 0.05
# Every projector transaction holds this advisory lock shared; `lc rebuild` takes it exclusively to
# swap schemas. Taken first, before any table, so the swap can never deadlock with a writer.
SWAP_LOCK_KEY = 0x1C_0002
# Waits before each new attempt at a batch whose connection was lost (about a minute in all); the
# batch is given up, and the projector stops, when the database is still unreachable after the last.
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class Projection(Protocol):
    """One table family, in two steps so decoding and writing overlap.

    `prepare` runs on the consumer thread: pure Python (validate, reject invalid input, reduce the
    batch); it returns what to write, or None. `write` runs on the writer thread inside the batch's
    transaction; it must not commit.
    """

    name: str
    topics: tuple[str, ...]

    def prepare(self, events: Sequence[Received], reject: Reject) -> Any: ...

    def write(self, conn: psycopg.Connection, prepared: Any) -> None: ...


class StaleOffsets(RuntimeError):
    """Someone else advanced this projector's stored offsets; the batch must be re-read."""


class StoppedWhileWaiting(Exception):
    """The projector was asked to stop while it waited for the database to come back. Not a failure:
    nothing of the batch at hand was committed, so the next start reads it again."""


@dataclass
class OffsetFence:
    """What this process believes is stored per (physical topic, partition): None = no row yet.

    Offsets are kept under the physical topic name (with the settings' prefix): offsets of one
    topic must never be applied to another that shares its catalogue name.
    """

    expected: dict[tuple[str, int], int | None] = field(default_factory=dict)


def connect(dsn: str, schema: str = "public") -> psycopg.Connection:
    return psycopg.connect(dsn, options=f"-c search_path={schema}", autocommit=True)


def load_offsets(conn: psycopg.Connection, projector: str) -> dict[tuple[str, int], int]:
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM projection_offsets WHERE projector = %s", (projector,)
    ).fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows}


def store_offsets(conn: psycopg.Connection, projector: str, fence: OffsetFence,
                  new_offsets: dict[tuple[str, int], int]) -> None:
    for (topic, partition), next_offset in new_offsets.items():
        expected = fence.expected.get((topic, partition))
        row = conn.execute(
            """INSERT INTO projection_offsets AS o (projector, topic, partition, next_offset, updated_at)
               VALUES (%s, %s, %s, %s, now())
               ON CONFLICT (projector, topic, partition) DO UPDATE
                   SET next_offset = EXCLUDED.next_offset, updated_at = now()
                   WHERE o.next_offset = %s
               RETURNING next_offset""",
            (projector, topic, partition, next_offset, -1 if expected is None else expected),
        ).fetchone()
        if row is None:
            raise StaleOffsets(f"{projector}: offsets of {topic}[{partition}] moved by another writer")


@dataclass(frozen=True)
class PreparedBatch:
    generation: int
    writes: list[tuple[Projection, Any]]
    new_offsets: dict[tuple[str, int], int]


class Projector:
    """Consumes batches on the calling thread and writes them, in order, on one writer thread.

    While batch N is written to PostgreSQL, batch N+1 is consumed, decoded and prepared; the queue
    between them holds one batch. Rebalances and re-seeks first drain the writer, and a batch
    prepared before a re-seek (an older generation) is dropped unwritten.
    """

    def __init__(
        self,
        settings: CoreSettings,
        projections: Sequence[Projection],
        *,
        schema: str = "public",
        group_id: str = PROJECTOR_GROUP,
        stop: StopFlag | None = None,
        batch_size: int = 5000,
        swap_lock: bool = True,
    ) -> None:
        """`swap_lock=False`: this projector's transactions do not take the swap lock. Only for `lc
        rebuild`'s own projector, which writes a scratch schema no swap touches, and which must go on
        writing while its rebuild holds the lock (the final catch-up before the swap)."""
        self.settings = settings
        self.swap_lock = swap_lock
        self.projections = list(projections)
        self.name = PROJECTOR_GROUP  # offsets rows are keyed by the projector, not by a rebuild's group
        self.schema = schema
        # one connection per thread: the consumer thread reads the stored offsets, the writer writes batches
        self._offsets_db = ReconnectingConnection(settings.pg_dsn, schema, self.name, "offsets reader", self.stop_wait)
        self._writer_db = ReconnectingConnection(settings.pg_dsn, schema, self.name, "writer", self.stop_wait)
        self.fence = OffsetFence()
        self.by_topic: dict[str, list[Projection]] = defaultdict(list)
        for projection in self.projections:
            for topic in projection.topics:
                self.by_topic[topic].append(projection)
        self.loop = ConsumerLoop(
            settings, group_id, sorted(self.by_topic), stop=stop, on_assign=self._on_assign,
            on_revoke=self._on_revoke, batch_size=batch_size, commit_to_kafka=False, poll_timeout=POLL_SECONDS,
        )
        self._generation = 0
        self._queue: queue.Queue[PreparedBatch | None] = queue.Queue(maxsize=1)
        self._stale = threading.Event()
        self._writer_error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_batches, name=f"{self.name}-writer", daemon=True)

    @property
    def stop(self) -> StopFlag:
        return self.loop.stop

    def stop_wait(self, seconds: float) -> bool:
        return self.loop.stop.wait(seconds)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        def done() -> bool:  # a failed writer ends the loop at its next poll; drain() then raises
            return self._writer_error is not None or (until is not None and until())

        self._writer.start()
        try:
            self.loop.run(self.handle, done)
            self.drain()
        except StoppedWhileWaiting as exc:  # while reading the stored offsets for an assignment
            log.info("%s; the stored offsets are where the next start resumes", exc)
        finally:
            self._queue.put(None)
            self._writer.join(60)
            self._offsets_db.close()

    def handle(self, batch: Sequence[Received], reject: Reject) -> None:
        # every message the batch read, dead letters included, so they are not read (and refused) again
        new_offsets = {(self.settings.topic(topic), partition): offset
                       for (topic, partition), offset in self.loop.batch_positions.items()}
        by_projection: dict[int, list[Received]] = defaultdict(list)
        for received in batch:
            for projection in self.by_topic.get(received.topic, ()):
                by_projection[id(projection)].append(received)
        writes = []
        for projection in self.projections:
            events = by_projection.get(id(projection))
            if events:
                prepared = projection.prepare(events, reject)
                if prepared is not None:
                    writes.append((projection, prepared))
        self._submit(PreparedBatch(self._generation, writes, new_offsets))

    def drain(self) -> None:
        """Wait until every submitted batch is written (or dropped); re-seek if one found stale offsets."""
        self._queue.join()
        self._raise_writer_error()
        if self._stale.is_set():
            self._reseek()

    def _submit(self, batch: PreparedBatch) -> None:
        self._raise_writer_error()
        if self._stale.is_set():
            self.drain()
            return  # prepared against positions that were just abandoned; it is read again
        self._queue.put(batch)

    def _raise_writer_error(self) -> None:
        if self._writer_error is not None:
            raise RuntimeError(f"{self.name} writer failed") from self._writer_error

    def _write_batches(self) -> None:
        stopped = False
        try:
            while True:
                batch = self._queue.get()
                try:
                    if batch is None:
                        return
                    if batch.generation == self._generation and not self._stale.is_set() \
                            and self._writer_error is None and not stopped:
                        self._writer_db.run("writing the batch", lambda conn, b=batch: self._write(conn, b))
                except StaleOffsets as exc:
                    log.warning("%s; re-reading from the stored offsets", exc)
                    self._stale.set()
                except StoppedWhileWaiting as exc:  # no later batch may be written without this one
                    log.info("%s; this batch and those after it are written by the next start", exc)
                    stopped = True
                except BaseException as exc:
                    log.error("%s: a batch could not be written, the projector stops: %s: %s", self.name,
                              type(exc).__name__, exc)
                    self._writer_error = exc
                finally:
                    self._queue.task_done()
        finally:
            self._writer_db.close()

    def _write(self, conn: psycopg.Connection, batch: PreparedBatch) -> None:
        with conn.transaction():
            if self.swap_lock:
                conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (SWAP_LOCK_KEY,))
            for projection, prepared in batch.writes:
                projection.write(conn, prepared)
            store_offsets(conn, self.name, self.fence, batch.new_offsets)
        self.fence.expected.update(batch.new_offsets)

    def _on_assign(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        self.drain()
        stored = self._offsets_db.run("reading the stored offsets", lambda conn: load_offsets(conn, self.name))
        positioned = []
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            self.fence.expected[(tp.topic, tp.partition)] = offset
            positioned.append(TopicPartition(tp.topic, tp.partition, FROM_THE_START if offset is None else offset))
        return positioned

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.drain()
        for tp in partitions:
            self.fence.expected.pop((tp.topic, tp.partition), None)

    def _reseek(self) -> None:
        self._generation += 1
        self._stale.clear()
        stored = self._offsets_db.run("reading the stored offsets", lambda conn: load_offsets(conn, self.name))
        for (topic, partition) in list(self.fence.expected):
            offset = stored.get((topic, partition))
            self.fence.expected[(topic, partition)] = offset
            self.loop.consumer.seek(TopicPartition(topic, partition, FROM_THE_START if offset is None else offset))


class ReconnectingConnection:
    """A connection of one projector thread, made again when it was lost: the work is tried again after each
    of RECONNECT_DELAYS (every attempt logged) while the failure is transient (`_transient`), then given up."""

    def __init__(self, dsn: str, schema: str, projector: str, role: str, wait: Callable[[float], bool]) -> None:
        self.dsn, self.schema, self.projector, self.role, self.wait = dsn, schema, projector, role, wait
        self.conn: psycopg.Connection | None = None

    def run(self, what: str, work: Callable[[psycopg.Connection], Any]) -> Any:
        for attempt, delay in enumerate((0.0, *RECONNECT_DELAYS)):
            if delay:
                log.warning("%s: %s again in %.1f s (attempt %d of %d)", self.projector, what, delay, attempt + 1,
                            len(RECONNECT_DELAYS) + 1)
                if self.wait(delay):
                    break
            try:
                if self.conn is None or self.conn.closed:
                    lost = self.conn is not None
                    self.conn = connect(self.dsn, self.schema)
                    if lost:
                        metrics.DATABASE_RECONNECTS.labels(self.projector).inc()
                        log.warning("%s: the %s connected to the database again", self.projector, self.role)
                return work(self.conn)
            except psycopg.Error as exc:
                if not _transient(exc, self.conn) or attempt == len(RECONNECT_DELAYS):
                    raise
                log.warning("%s: database connection lost or transaction rolled back while %s: %s: %s",
                            self.projector, what, type(exc).__name__, str(exc).strip())
                if self.conn is not None and self.conn.broken:
                    self.conn.close()
        raise StoppedWhileWaiting(f"{self.projector}: stopped while waiting for the database")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _transient(exc: psycopg.Error, conn: psycopg.Connection | None) -> bool:
    """A lost or refused connection, or a transaction the server rolled back for a conflict: the
    batch can be written again as it is. Anything else is an error in what is being written."""
    if conn is None or conn.broken or conn.closed:
        return isinstance(exc, psycopg.OperationalError)
    return isinstance(exc, psycopg.errors.TransactionRollback)
