"""A changelog value longer than a record may be (real broker): stored in pieces in one transaction,
read back whole, and a shorter value or a removal leaves none of its pieces behind."""

from __future__ import annotations

import os

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from kits.background import wait_for
from kits.state import transactions_settled

from cli.settings import Settings
from eventlog.processing.changelog import CHUNK_BYTES, CHUNK_PREFIX, Changelog
from eventlog.processing.restore import reader
from eventlog.producer import EventProducer
from eventlog.topics import STATE_EVALUATOR


def _write(settings: Settings, entries: dict[str, bytes | None], changelog: Changelog | None = None) -> Changelog:
    changelog = changelog or Changelog(settings, STATE_EVALUATOR, "test")
    with EventProducer(settings, "test", transactional_id="test-pieces") as producer, producer.transaction():
        for key, value in entries.items():
            changelog.put(producer, 0, key, value)
    # a commit returns before the broker writes its markers; a read before them ends at the last stable
    # offset and misses this transaction (a restore then replays the inputs: correct, but not what is tested)
    wait_for(lambda: transactions_settled(settings, STATE_EVALUATOR), what="the changelog transaction settled")
    return changelog


def _live_keys(settings: Settings) -> dict[str, int]:
    """Every key of partition 0 whose newest record is not a tombstone, with its record's size."""
    consumer = reader(settings, "test-pieces", {"enable.partition.eof": True})
    consumer.assign([TopicPartition(settings.topic(STATE_EVALUATOR), 0, OFFSET_BEGINNING)])
    live: dict[str, int] = {}
    try:
        while True:
            messages = consumer.consume(1000, 2.0)
            for message in messages:
                if message.error() is not None:
                    assert message.error().code() == KafkaError._PARTITION_EOF
                    return live
                key = message.key().decode()
                if message.value() is None:
                    live.pop(key, None)
                else:
                    live[key] = len(message.value())
    finally:
        consumer.close()


def test_a_long_value_is_stored_in_pieces_and_read_back_whole(settings: Settings) -> None:
    long = os.urandom(3 * CHUNK_BYTES + 1000)  # incompressible: 4 records, each within the broker's limit
    changelog = _write(settings, {"s/1/0xaa": long, "s/1/0xbb": b"short"})
    stored = Changelog(settings, STATE_EVALUATOR, "test").read([0])[0]
    assert stored.values == {"s/1/0xaa": long, "s/1/0xbb": b"short"}
    assert stored.pieces == {"s/1/0xaa": 4}
    records = _live_keys(settings)
    assert sorted(records) == sorted(["s/1/0xaa", "s/1/0xbb", *(f"{CHUNK_PREFIX}{i}/s/1/0xaa" for i in (1, 2, 3))])
    assert max(records.values()) <= CHUNK_BYTES

    shorter = os.urandom(CHUNK_BYTES + 10)  # two pieces: the third and fourth are removed
    _write(settings, {"s/1/0xaa": shorter}, changelog)
    again = Changelog(settings, STATE_EVALUATOR, "test")  # as a new owner would read it
    assert again.read([0])[0].values == {"s/1/0xaa": shorter, "s/1/0xbb": b"short"}
    assert sorted(_live_keys(settings)) == ["@chunk/1/s/1/0xaa", "s/1/0xaa", "s/1/0xbb"]

    _write(settings, {"s/1/0xaa": None}, again)  # the new owner knows the pieces it read
    assert Changelog(settings, STATE_EVALUATOR, "test").read([0])[0].values == {"s/1/0xbb": b"short"}
    assert sorted(_live_keys(settings)) == ["s/1/0xbb"]
