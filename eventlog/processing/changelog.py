"""A stateful stage's changelog: a compacted topic holding its state, key -> current value, partition p
of the changelog holding the state of input partition p (as Kafka Streams keeps a store's changelog).

Written in step with the outputs and the offsets: every commit of a stage is one Kafka transaction
holding the outputs it published, the changelog entries it changed (a tombstone for a removed key),
one `@meta` entry per partition it touched (the state format version, the input offsets the state
covers, and what the stage keeps per partition), and the group's input offsets. A crash at any point
leaves either the whole commit or none of it, so the changelog is never ahead of or behind the
committed offsets; readers of the changelog read `read_committed`.

On assignment the stage reads its partitions of the changelog (proportional to the state: compaction
keeps one value per key), loads the values, and reads its inputs only from the covered offsets on.

A value longer than CHUNK_BYTES (evidence records can reach 20 MiB) is stored in pieces: the key holds
the first piece with a `lc-chunks` header naming how many there are, and `@chunk/<i>/<key>` the others,
all in the same transaction, so a reader sees all of them or none. Each record then stays within the
broker's default message size and the state topics' 1 MiB segments (a record batch larger than a
segment is refused), which keep what a restore reads close to the state's size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from eventlog.config import CoreSettings
from eventlog.processing.restore import FROM_THE_START, READ_TO_END, committed_positions, reader
from eventlog.producer import EventProducer

log = logging.getLogger(__name__)

META_KEY = "@meta"  # state keys of a stage never start with "@"
META_FORMAT = 1
CHUNK_PREFIX = "@chunk/"
CHUNKS_HEADER = "lc-chunks"
CHUNK_BYTES = 512 * 1024  # two pieces and their framing fit one producer batch (batch.size 1,000,000)


def chunk_key(index: int, key: str) -> str:
    return f"{CHUNK_PREFIX}{index}/{key}"


@dataclass(frozen=True)
class Meta:
    """What one changelog partition's state covers."""

    version: int  # the stage's state format (`state_version`)
    offsets: dict[str, int]  # catalogue input topic -> next input offset the state has applied
    extra: dict[str, Any] = field(default_factory=dict)  # kept per partition by the stage and its kit

    def encode(self) -> bytes:
        return json.dumps({"format": META_FORMAT, "version": self.version, "offsets": self.offsets,
                           "extra": self.extra}, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Meta | None:
        """None for a format this code does not know (the state is then rebuilt from the inputs)."""
        value = json.loads(data)
        if value.get("format") != META_FORMAT:
            return None
        return cls(int(value["version"]), {t: int(o) for t, o in value["offsets"].items()}, value.get("extra") or {})


@dataclass
class StoredPartition:
    """One changelog partition as read back: its meta entry and the newest value of every live key."""

    meta: Meta | None = None
    values: dict[str, bytes] = field(default_factory=dict)
    pieces: dict[str, int] = field(default_factory=dict)  # key of a value stored in pieces -> how many
    rest: dict[str, bytes] = field(default_factory=dict)  # chunk key -> a further piece

    def assemble(self) -> None:
        """Join each value stored in pieces (its pieces were committed together)."""
        for key, count in self.pieces.items():
            missing = [i for i in range(1, count) if chunk_key(i, key) not in self.rest]
            if missing:
                raise RuntimeError(f"changelog value {key!r}: pieces {missing} of {count} are missing")
            self.values[key] = b"".join([self.values[key], *(self.rest[chunk_key(i, key)] for i in range(1, count))])
        self.rest.clear()


class Changelog:
    def __init__(self, settings: CoreSettings, topic: str, purpose: str) -> None:
        self.settings = settings
        self.topic = topic  # catalogue name
        self.purpose = purpose
        self.pieces: dict[tuple[int, str], int] = {}  # (partition, key) -> pieces stored, for those with more than one

    def read(self, partitions: Iterable[int]) -> dict[int, StoredPartition]:
        """Every committed entry of the partitions, to their end, folded to the newest value per key."""
        wanted = sorted(set(partitions))
        stored = {p: StoredPartition() for p in wanted}
        if not wanted:
            return stored
        physical = self.settings.topic(self.topic)
        consumer = reader(self.settings, f"{self.purpose}-changelog", {"enable.partition.eof": True, **READ_TO_END})
        try:
            metadata = consumer.list_topics(physical, timeout=10).topics.get(physical)
            if metadata is None or metadata.error is not None:
                raise KafkaException(metadata.error if metadata is not None else
                                     KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"no topic {physical}"))
            missing = [p for p in wanted if p not in metadata.partitions]
            if missing:
                raise RuntimeError(f"{physical} has {len(metadata.partitions)} partitions, the inputs have more "
                                   f"(no changelog partition {missing}); create it with as many as the inputs")
            consumer.assign([TopicPartition(physical, p, FROM_THE_START) for p in wanted])
            reading = set(wanted)
            while reading:
                for message in consumer.consume(1000, 0.05):  # waits the whole timeout unless 1000 arrive
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            reading.discard(message.partition())
                            continue
                        raise KafkaException(error)
                    key = (message.key() or b"").decode()
                    value = message.value()
                    partition = stored[message.partition()]
                    if key == META_KEY:
                        partition.meta = Meta.decode(value) if value is not None else None
                    elif key.startswith(CHUNK_PREFIX):
                        if value is None:
                            partition.rest.pop(key, None)
                        else:
                            partition.rest[key] = value
                    elif value is None:
                        partition.values.pop(key, None)
                        partition.pieces.pop(key, None)
                    else:
                        partition.values[key] = value
                        count = _pieces(message.headers())
                        if count > 1:
                            partition.pieces[key] = count
                        else:
                            partition.pieces.pop(key, None)
        finally:
            consumer.close()
        for p, partition in stored.items():
            partition.assemble()
            self.pieces.update({(p, key): count for key, count in partition.pieces.items()})
        return stored

    def put(self, producer: EventProducer, partition: int, key: str, value: bytes | None) -> None:
        """One entry (None: the key is removed) in the producer's open transaction, in pieces when long;
        the pieces a longer value of the key left are removed."""
        before = self.pieces.pop((partition, key), 1)
        count = 1
        if value is None or len(value) <= CHUNK_BYTES:
            producer.publish_raw(self.topic, partition, key, value)
        else:
            count = -(-len(value) // CHUNK_BYTES)
            producer.publish_raw(self.topic, partition, key, value[:CHUNK_BYTES], headers={CHUNKS_HEADER: str(count)})
            for i in range(1, count):
                producer.publish_raw(self.topic, partition, chunk_key(i, key), value[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES])
            self.pieces[(partition, key)] = count
        for i in range(count, before):
            producer.publish_raw(self.topic, partition, chunk_key(i, key), None)

    def forget(self, partition: int) -> None:
        self.pieces = {(p, key): count for (p, key), count in self.pieces.items() if p != partition}

    def put_meta(self, producer: EventProducer, partition: int, meta: Meta) -> None:
        producer.publish_raw(self.topic, partition, META_KEY, meta.encode())


def _pieces(headers: list[tuple[str, bytes]] | None) -> int:
    for name, value in headers or ():
        if name == CHUNKS_HEADER:
            return int(value)
    return 1


def covered(meta: Meta | None, version: int, inputs: Iterable[str]) -> Mapping[str, int] | None:
    """The input offsets a stored state covers, or None when it cannot be used (absent, another format)."""
    if meta is None or meta.version != version:
        return None
    return {topic: meta.offsets.get(topic, 0) for topic in inputs}


@dataclass(frozen=True)
class Restored:
    """What an assignment restored (logged; read by tests and the benchmark)."""

    partitions: int
    entries: int  # state entries loaded from the changelog
    replayed: int  # input events read and applied to catch up
    rebuilt: int  # partitions rebuilt from offset 0


@dataclass
class PartitionPlan:
    """How one newly assigned partition is restored: from its stored state (`values`), or from offset 0
    (`values` None), then by replaying each input from `starts` up to `ends`, where it resumes."""

    partition: int
    values: dict[str, bytes] | None
    extra: dict[str, Any]
    starts: dict[str, int]
    ends: dict[str, int]
    stale: set[str]  # keys stored now; a rebuild removes those its state no longer has

    @property
    def rebuilt(self) -> bool:
        return self.values is None


class StageChangelog:
    """The changelog side of one instance of a stage: what to restore on assignment, what each commit
    writes. The stage folds, publishes and tells this object which state keys it changed."""

    def __init__(self, settings: CoreSettings, topic: str, group: str, inputs: tuple[str, ...], version: int,
                 *, from_zero: bool = False) -> None:
        self.changelog = Changelog(settings, topic, group)
        self.inputs = inputs
        self.version = version
        self.from_zero = from_zero
        self.positions: dict[tuple[str, int], int] = {}  # next input offset the state of a partition covers
        self._dirty: dict[int, set[str]] = {}
        self._touched: set[int] = set()

    def plan_assignment(self, consumer: Consumer, partitions: list[TopicPartition],
                        to_catalogue: Callable[[str], str]) -> list[PartitionPlan]:
        """The plans of newly assigned partitions: the group's committed offsets first (read_committed:
        a transaction still open on them is waited for), then the changelog."""
        committed = {(to_catalogue(tp.topic), tp.partition): tp.offset
                     for tp in committed_positions(consumer, partitions)}
        return self.plan({tp.partition for tp in partitions}, committed)

    def plan(self, partitions: Iterable[int], committed: Mapping[tuple[str, int], int]) -> list[PartitionPlan]:
        """`committed`: the group's committed offset per (input topic, partition), negative when none."""
        stored = self.changelog.read(partitions)
        plans = []
        for p, found in sorted(stored.items()):
            usable = None if self.from_zero else covered(found.meta, self.version, self.inputs)
            starts = dict(usable) if usable is not None else dict.fromkeys(self.inputs, 0)
            # resume where both the group and the state have got to: a group behind the state (its offsets
            # expired) must not publish again what the state's own commits published
            ends = {t: max(committed.get((t, p), 0), starts[t]) for t in self.inputs}
            plans.append(PartitionPlan(
                p, found.values if usable is not None else None,
                found.meta.extra if usable is not None and found.meta is not None else {},
                starts, ends, set(found.values) if usable is None else set(),
            ))
        return plans

    def assigned(self, plan: PartitionPlan, keys: Iterable[str]) -> None:
        """The partition is restored (state loaded and replayed to `plan.ends`, where it resumes and below
        which nothing is ever committed). A rebuilt one is written whole in the next commit, with the stale
        keys removed."""
        for topic, offset in plan.ends.items():
            self.positions[(topic, plan.partition)] = offset
        if plan.rebuilt:
            current = set(keys)
            self._dirty.setdefault(plan.partition, set()).update(current | plan.stale)
            self._touched.add(plan.partition)

    @staticmethod
    def resume_at(plans: list[PartitionPlan], partitions: list[TopicPartition],
                  to_catalogue: Callable[[str], str]) -> list[TopicPartition]:
        """The assigned partitions positioned where their plans end."""
        ends = {(plan.partition, topic): offset for plan in plans for topic, offset in plan.ends.items()}
        return [TopicPartition(tp.topic, tp.partition, ends[(tp.partition, to_catalogue(tp.topic))])
                for tp in partitions]

    @staticmethod
    def report(group: str, plans: list[PartitionPlan], entries: int, replayed: int) -> Restored:
        restored = Restored(len(plans), entries, replayed, sum(plan.rebuilt for plan in plans))
        log.info("%s restored %d partitions: %d state entries loaded, %d input events replayed, %d rebuilt from "
                 "offset 0", group, restored.partitions, entries, replayed, restored.rebuilt)
        return restored

    def changed(self, partition: int, key: str) -> None:
        dirty = self._dirty.get(partition)
        if dirty is None:
            dirty = self._dirty[partition] = set()
        dirty.add(key)

    def touched(self, partition: int) -> None:
        """Something the meta entry holds changed (offsets, or the stage's per-partition `extra`)."""
        self._touched.add(partition)

    def advanced(self, topic: str, partition: int, next_offset: int) -> int:
        """Inputs processed up to `next_offset`; returns the offset to commit (never below the position)."""
        key = (topic, partition)
        if next_offset > self.positions.get(key, 0):
            self.positions[key] = next_offset
            self._touched.add(partition)
        return self.positions[key]

    @property
    def pending(self) -> bool:
        return bool(self._dirty or self._touched)

    def write(self, producer: EventProducer, encoded: Callable[[int, str], bytes | None],
              extra: Callable[[int], dict[str, Any]]) -> int:
        """Put every changed entry and the meta entry of every touched partition in the producer's open
        transaction. `encoded(partition, key)` -> bytes, or None when the key is gone; `extra(partition)`
        -> the stage's per-partition values. Returns the number of entries written."""
        written = 0
        for p in sorted(self._touched | set(self._dirty)):
            for key in sorted(self._dirty.get(p, ())):
                self.changelog.put(producer, p, key, encoded(p, key))
                written += 1
            offsets = {t: self.positions.get((t, p), 0) for t in self.inputs}
            self.changelog.put_meta(producer, p, Meta(self.version, offsets, extra(p)))
        self._dirty.clear()
        self._touched.clear()
        return written

    def forget(self, partition: int) -> None:
        self.changelog.forget(partition)
        self._dirty.pop(partition, None)
        self._touched.discard(partition)
        for topic in self.inputs:
            self.positions.pop((topic, partition), None)
