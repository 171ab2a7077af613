"""A dead letter always fits on lc.dlq: a bounded excerpt of the refused bytes, with their size and
SHA-256, and bounded reason and key (real broker)."""

from __future__ import annotations

import hashlib
import os

from kits.processors import read_all

from cli.settings import Settings
from eventlog.producer import DEAD_LETTER_EXCERPT_BYTES, EventProducer
from eventlog.topics import DLQ


def test_a_refused_message_of_any_size_makes_a_small_dead_letter(settings: Settings) -> None:
    original = os.urandom(5 * 1024 * 1024)  # incompressible, five times the topic's limit
    with EventProducer(settings, "test") as producer:
        producer.dead_letter(stage="test", reason="r" * 100_000, source_topic="lc.evidence", source_partition=2,
                             source_offset=9, source_key="k" * 100_000, original=original)
        producer.dead_letter(stage="test", reason="no bytes", source_topic="uploads")

    big, empty = read_all(settings, DLQ)
    letter = big.event.payload
    assert len(big.raw) < DEAD_LETTER_EXCERPT_BYTES + 16 * 1024
    assert letter["original"] == original[:DEAD_LETTER_EXCERPT_BYTES]
    assert letter["original_size"] == len(original)
    assert letter["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == ("lc.evidence", 2, 9)
    assert len(letter["reason"]) == 4000 and len(letter["source_key"]) == 1000
    assert big.event.schema_version == 2
    assert (empty.event.payload["original"], empty.event.payload["original_size"]) == (None, -1)
