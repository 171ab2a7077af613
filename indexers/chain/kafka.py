"""Kafka side of the chain indexer: the transactional sink, and the state read back from its own output.

The checkpoint is never stored apart from the facts: on start the indexer replays lc.chain.blocks
(its BlockConfirmed and BlockReverted for this chain) into the reorg window, whose newest block is
the last one published, and reads lc.chain.events back for the binding facts of the keyer and the
messages of the blocks still in the window (needed to retract them after a reorg). Reading is
`read_committed`, so an aborted or half-written range does not count as published.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS
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


def transactional_id(chain_id: int) -> str:
    """One writer per chain: a second instance fences the first (its transactions abort)."""
    return f"lc-chain-indexer-{chain_id}"


class KafkaSink:
    """Publishes each batch in one Kafka transaction; chain events arrive encoded by `writer`."""

    def __init__(self, producer: EventProducer) -> None:
        self.producer = producer
        frame = producer.serde.frame(producer.settings.topic(CHAIN_EVENTS), CHAIN_EVENT)
        self.writer = ChainEventWriter(frame, producer.producer_name)

    def publish(self, messages: Sequence[OutMessage]) -> None:
        producer = self.producer
        with producer.transaction():
            for message in messages:
                if message.value is not None:
                    producer.publish_encoded(message.topic, message.key, message.value,
                                             headers=message.headers or None)
                else:
                    producer.publish(
                        message.topic, message.key, message.event_type, message.payload,
                        event_id=message.event_id, occurred_at=message.occurred_at, headers=message.headers or None,
                    )


@dataclass
class PublishedState:
    window: ReorgWindow
    keyer: ChainKeyer
    blocks_read: int
    events_read: int


def read_back(settings: ChainIndexerSettings, chain_id: int, rollback_cap: int, challenge_pay_address: str) -> PublishedState:
    serde = EventSerde(settings.schema_registry_url)
    window = ReorgWindow(rollback_cap)
    chain_key = str(chain_id).encode()
    blocks_read = 0
    for message in read_topic(settings, CHAIN_BLOCKS):
        if message.key() != chain_key:
            continue
        event = serde.decode(message.value())
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
    events_read = 0
    for message in read_topic(settings, CHAIN_EVENTS):
        headers = {k: v.decode() for k, v in message.headers() or []}
        in_window = window_floor is not None and int(headers.get("lc-block", "-1")) >= window_floor
        # beyond the window only what the keyer needs: bindings, and AIVM facts that may still be re-keyed
        if headers.get("lc-event") not in KEYER_EVENTS and not in_window:
            continue
        event = serde.decode(message.value())
        payload = event.payload
        if event.event_type != CHAIN_EVENT or payload["chain_id"] != chain_id:
            continue
        events_read += 1
        published = OutMessage(
            topic=CHAIN_EVENTS, key=(message.key() or b"").decode(), event_type=CHAIN_EVENT,
            event_id=event.event_id, occurred_at=event.occurred_at,
            payload={**payload, "args": (args_branch(payload["contract"], payload["event"]), payload["args"])},
            headers=headers,
        )
        if payload["removed"]:
            keyer.retracted(published)
        else:
            keyer.published(published)
        newest[event.event_id] = published
    by_block: dict[str, list[OutMessage]] = {}
    for published in newest.values():
        if not published.payload["removed"]:
            by_block.setdefault(published.headers["lc-block-hash"], []).append(published)
    for entry in window.entries:
        # publish order: a block's events by log index, re-keyed copies right before their binding
        entry.messages = sorted(by_block.get(entry.hash, []), key=_publish_order)
    return PublishedState(window, keyer, blocks_read, events_read)


def read_topic(settings: ChainIndexerSettings, topic: str) -> Iterator[Message]:
    """Every committed message of a catalogue topic, partition by partition, up to the end at call time."""
    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
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
            if high <= low:
                continue
            consumer.assign([TopicPartition(physical, partition, OFFSET_BEGINNING)])
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
