"""Kafka side of the chain indexer: the transactional sink, and the state read back on start.

The checkpoint is never stored apart from the facts: each batch's transaction carries, with the
batch, the checkpoint entries it implies (indexers/chain/checkpoint.py): the reorg window's headers
and the facts the keyer learns from. On start the indexer reads that checkpoint and, for the
messages of the blocks still in the window (needed to retract them after a reorg), lc.chain.events
from the window's oldest offsets on. `read_back` is the reference path it replaces: it replays
lc.chain.blocks (BlockConfirmed and BlockReverted of this chain) into the window and reads all of
lc.chain.events for the keyer's facts and the window's messages; it runs when there is no
checkpoint yet and with `--restore-from-zero`, and the checkpoint is then written whole. Reading is
`read_committed`, so an aborted or half-written range does not count as published.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from eventlog.admission import Inadmissible, admit, halt_at
from eventlog.config import CoreSettings
from eventlog.failures import client_config
from eventlog.producer import EventProducer
from eventlog.serde import Event, EventSerde
from eventlog.topics import CHAIN_BLOCKS, CHAIN_CHECKPOINTS, CHAIN_EVENTS
from indexers.chain.checkpoint import (
    Checkpoint,
    Vector,
    fact_entry,
    is_fact,
    read_checkpoint,
    rewrite_entries,
    window_key,
)
from indexers.chain.codec import ChainEventWriter
from indexers.chain.keying import KEYER_EVENTS, ChainKeyer
from indexers.chain.messages import (
    BLOCK_CONFIRMED,
    BLOCK_REVERTED,
    CHAIN_EVENT,
    args_branch,
)
from indexers.chain.model import BlockHeader, OutMessage
from indexers.chain.reorg import ReorgWindow
from indexers.chain.settings import ChainIndexerSettings

log = logging.getLogger("lc.indexer.chain")

CheckpointEntry = tuple[str, bytes | None, dict[str, str]]
ENDS_PATIENCE_SECONDS = 60.0  # longer than a partition leader election after a node's loss


def transactional_id(chain_id: int) -> str:
    """One writer per chain: a second instance fences the first (its transactions abort)."""
    return f"lc-chain-indexer-{chain_id}"


class EndOffsets:
    """The current end offset of every lc.chain.events partition (one ListOffsets request).

    The high watermarks (read_uncommitted), not the last stable offsets: just after a commit the
    broker may not have written the transaction's markers yet, so the stable offset can still lie
    before the batch just committed, and a start would read that batch again for nothing. The messages
    of the next batch are appended after either, so both are lower bounds."""

    def __init__(self, settings: CoreSettings) -> None:
        self.topic = settings.topic(CHAIN_EVENTS)
        self.consumer = Consumer({**client_config(settings.kafka_bootstrap, "lc-chain-indexer-ends"),
                                  "group.id": f"lc-chain-indexer-ends-{uuid.uuid4().hex}",
                                  "isolation.level": "read_uncommitted"})
        metadata = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        self.partitions = len(metadata.partitions)

    def now(self) -> Vector:
        """Asked again for up to ENDS_PATIENCE_SECONDS while a node is lost and its partitions' leaders move
        (a failure here would make the indexer re-read its state for what the cluster heals by itself)."""
        deadline = time.monotonic() + ENDS_PATIENCE_SECONDS
        while True:
            try:
                found = self.consumer.offsets_for_times(
                    [TopicPartition(self.topic, p, -1) for p in range(self.partitions)], timeout=30)
                failed = next((tp.error for tp in found if tp.error is not None), None)
                if failed is not None:
                    raise KafkaException(failed)
                return tuple(tp.offset for tp in sorted(found, key=lambda tp: tp.partition))
            except KafkaException as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("end offsets of %s not available yet (%s); asking again", self.topic, exc)
                time.sleep(0.5)

    def close(self) -> None:
        self.consumer.close()


class KafkaSink:
    """Publishes each batch in one Kafka transaction, with the checkpoint entries the batch implies;
    chain events arrive encoded by `writer`."""

    def __init__(self, producer: EventProducer, chain_id: int, checkpoint: Checkpoint) -> None:
        self.producer = producer
        self.chain_id = chain_id
        self.checkpoint = checkpoint
        frame = producer.serde.frame(producer.settings.topic(CHAIN_EVENTS), CHAIN_EVENT)
        self.writer = ChainEventWriter(frame, producer.producer_name)
        self.ends = EndOffsets(producer.settings)

    def publish(self, messages: Sequence[OutMessage], *, also: Sequence[CheckpointEntry] = ()) -> None:
        """`also`: further checkpoint entries for the same transaction (a rewrite after a read-back)."""
        producer = self.producer
        after = self.checkpoint.after(messages, self.ends.now())
        with producer.transaction():
            for message in messages:
                value = message.value
                if value is not None:
                    producer.publish_encoded(message.topic, message.key, value, headers=message.headers or None)
                else:
                    producer.publish(
                        message.topic, message.key, message.event_type, message.payload,
                        event_id=message.event_id, occurred_at=message.occurred_at, headers=message.headers or None,
                    )
                if is_fact(message):
                    self._put(*fact_entry(self.chain_id, message, value or self.writer.encode(
                        message.event_id, message.occurred_at, message.payload)))
            for entry in also:
                self._put(*entry)
            self._put(window_key(self.chain_id), after.encode(), {})
        self.checkpoint = after

    def _put(self, key: str, value: bytes | None, headers: dict[str, str]) -> None:
        self.producer.publish_raw(CHAIN_CHECKPOINTS, 0, key, value, headers=dict(headers) or None)

    def close(self) -> None:
        self.ends.close()


@dataclass
class PublishedState:
    window: ReorgWindow
    keyer: ChainKeyer
    blocks_read: int
    events_read: int  # messages of lc.chain.events read (every one for a read-back)
    checkpoint: Checkpoint  # what the sink continues from
    facts: list[tuple[OutMessage, bytes]] = field(default_factory=list)  # live keyer facts (read back)
    from_checkpoint: bool = False
    rewrite: list[CheckpointEntry] = field(default_factory=list)  # fact entries to write with the next batch


def restore(settings: ChainIndexerSettings, chain_id: int, rollback_cap: int, challenge_pay_address: str, *,
            from_zero: bool = False) -> PublishedState:
    """The published state from the checkpoint, or read back from the topics (and the checkpoint to write)."""
    stored = read_checkpoint(settings, chain_id)
    checkpoint = None
    if stored.window is not None and not from_zero:
        checkpoint = Checkpoint.decode(stored.window, rollback_cap)
    if checkpoint is None:
        state = read_back(settings, chain_id, rollback_cap, challenge_pay_address)
        state.rewrite = rewrite_entries(chain_id, state.facts, stored.facts)
        return state
    serde = EventSerde(settings.schema_registry_url)
    keyer = ChainKeyer(challenge_pay_address)
    for value, key, headers in stored.facts.values():
        try:
            _key, fact = admit(serde, CHAIN_EVENTS, key.encode(), value)
        except Inadmissible as exc:  # (state, not a fact: the facts are still on lc.chain.events)
            log.warning("chain %d: a checkpoint fact cannot be read (%s); reading the topics back instead",
                        chain_id, exc)
            state = read_back(settings, chain_id, rollback_cap, challenge_pay_address)
            state.rewrite = rewrite_entries(chain_id, state.facts, stored.facts)
            return state
        keyer.published(_published(fact, key, headers, value))
    window = ReorgWindow.restored(rollback_cap, [entry.header for entry in checkpoint.window.entries],
                                  complete=checkpoint.window.complete)
    hashes = {entry.hash for entry in window.entries}
    newest: dict[str, OutMessage] = {}
    start = checkpoint.events_from()
    events_read = 0
    if start is not None:
        for message in read_topic(settings, CHAIN_EVENTS, start=dict(enumerate(start))):
            events_read += 1
            headers = {k: v.decode() for k, v in message.headers() or []}
            if headers.get("lc-block-hash") not in hashes:
                continue
            event = _admitted(serde, CHAIN_EVENTS, message)
            if event.event_type != CHAIN_EVENT or event.payload["chain_id"] != chain_id:
                continue
            newest[event.event_id] = _published(event, (message.key() or b"").decode(), headers)
    _attach(window, newest)
    return PublishedState(window, keyer, len(window.entries), len(stored.facts) + events_read,
                          Checkpoint(window.copy(), checkpoint.vectors), from_checkpoint=True)


def read_back(settings: ChainIndexerSettings, chain_id: int, rollback_cap: int, challenge_pay_address: str) -> PublishedState:
    """Everything published, read again from offset 0: the reference path (see the module docstring)."""
    serde = EventSerde(settings.schema_registry_url)
    window = ReorgWindow(rollback_cap)
    chain_key = str(chain_id).encode()
    blocks_read = 0
    for message in read_topic(settings, CHAIN_BLOCKS):
        event = _admitted(serde, CHAIN_BLOCKS, message)
        if message.key() != chain_key:
            continue
        payload = event.payload
        if event.event_type == BLOCK_CONFIRMED:
            window.add(BlockHeader(payload["number"], payload["hash"], payload["parent_hash"], payload["timestamp"]))
        elif event.event_type == BLOCK_REVERTED:
            window.revert(payload["number"], payload["hash"], payload.get("ancestor_number"),
                          payload.get("ancestor_hash"))
        blocks_read += 1

    keyer = ChainKeyer(challenge_pay_address)
    window_floor = window.entries[0].number if window.entries else None
    newest: dict[str, OutMessage] = {}  # event id -> newest message, for the keyer and the window
    facts: dict[str, tuple[OutMessage, bytes]] = {}  # event id -> newest keyer fact and its bytes
    lowest: dict[int, int] = {}  # events partition -> offset of its first message of a window block
    ends: dict[int, int] = {}
    events_read = 0
    for message in read_topic(settings, CHAIN_EVENTS, ends=ends):
        events_read += 1
        headers = {k: v.decode() for k, v in message.headers() or []}
        in_window = window_floor is not None and int(headers.get("lc-block", "-1")) >= window_floor
        # beyond the window only what the keyer needs: bindings, and AIVM facts that may still be re-keyed
        if headers.get("lc-event") not in KEYER_EVENTS and not in_window:
            continue
        event = _admitted(serde, CHAIN_EVENTS, message)
        if event.event_type != CHAIN_EVENT or event.payload["chain_id"] != chain_id:
            continue
        if in_window:
            lowest.setdefault(message.partition(), message.offset())
        published = _published(event, (message.key() or b"").decode(), headers)
        if published.payload["removed"]:
            keyer.retracted(published)
        else:
            keyer.published(published)
        newest[event.event_id] = published
        if is_fact(published):
            facts[event.event_id] = (published, message.value())
    _attach(window, newest)
    start = tuple(lowest.get(p, end) for p, end in sorted(ends.items()))
    checkpoint = Checkpoint(window.copy(), {entry.hash: start for entry in window.entries})
    live = [fact for fact in facts.values() if not fact[0].payload["removed"]]
    return PublishedState(window, keyer, blocks_read, events_read, checkpoint, live)


def _admitted(serde: EventSerde, topic: str, message: Message) -> Event:
    """The event of a published chain fact read back; one no stage could read halts the indexer, as it
    halts every stage that reads it (`eventlog.admission`)."""
    try:
        return admit(serde, topic, message.key(), message.value())[1]
    except Inadmissible as exc:
        raise halt_at(topic, message.partition(), message.offset(), f"chain indexer: {exc}") from None


def _published(event: Event, key: str, headers: dict[str, str], value: bytes | None = None) -> OutMessage:
    payload = event.payload
    return OutMessage(
        topic=CHAIN_EVENTS, key=key, event_type=CHAIN_EVENT, event_id=event.event_id, occurred_at=event.occurred_at,
        payload={**payload, "args": (args_branch(payload["contract"], payload["event"]), payload["args"])},
        headers=headers, value=value,
    )


def _attach(window: ReorgWindow, newest: Mapping[str, OutMessage]) -> None:
    """Give each window block its live messages, in publish order."""
    by_block: dict[str, list[OutMessage]] = {}
    for published in newest.values():
        if not published.payload["removed"]:
            by_block.setdefault(published.headers["lc-block-hash"], []).append(published)
    for entry in window.entries:
        # publish order: a block's events by log index, re-keyed copies right before their binding
        entry.messages = sorted(by_block.get(entry.hash, []), key=_publish_order)


def read_topic(settings: CoreSettings, topic: str, *, start: Mapping[int, int] | None = None,
               ends: dict[int, int] | None = None) -> Iterator[Message]:
    """Every committed message of a catalogue topic, partition by partition, from `start` (default: the
    beginning) up to the end at call time; `ends` is filled with each partition's end offset."""
    consumer = Consumer({
        **client_config(settings.kafka_bootstrap, "lc-chain-indexer-readback"),
        "group.id": f"lc-chain-indexer-readback-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })
    try:
        physical = settings.topic(topic)
        metadata = consumer.list_topics(physical, timeout=10).topics[physical]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(physical, partition), timeout=10)
            if ends is not None:
                ends[partition] = high
            first = max(low, (start or {}).get(partition, OFFSET_BEGINNING))
            if high <= first:
                continue
            consumer.assign([TopicPartition(physical, partition, first)])
            while True:
                batch = consumer.consume(1000, timeout=0.05)  # returns at the timeout unless 1000 arrived
                done = False
                for message in batch:
                    if message.error() is not None:
                        if message.error().code() == KafkaError._PARTITION_EOF:
                            done = True
                            break
                        raise KafkaException(message.error())
                    yield message
                if done or (not batch and consumer.position(
                        [TopicPartition(physical, partition)])[0].offset >= high):
                    break
            consumer.unassign()
    finally:
        consumer.close()


def _publish_order(message: OutMessage) -> tuple[int, int, int]:
    # a re-keyed copy carries its binding's place and goes right before it
    copy = 0 if message.payload.get("rekeyed_from") else 1
    return (int(message.headers["lc-block"]), int(message.headers["lc-log-index"]), copy)
