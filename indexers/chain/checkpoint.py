"""The chain indexer's checkpoint in lc.chain.checkpoints (compacted, one partition, keys per chain), so a
start reads what the indexer's state is, not everything it ever published.

- `<chain>/window`: the reorg window's headers, oldest first, whether it was ever pruned, and for each
  block a lower bound of the lc.chain.events offsets its messages have (the partitions' end offsets
  just before the batch that published it). JSON: {"format": 1, "complete": bool, "blocks": [[number,
  hash, parent hash, timestamp, vector index], ...], "vectors": [[offset of partition 0, 1, ...], ...]}.
- `<chain>/fact/<event id>`: every live fact the keyer learns from (task bindings and AIVM facts), as the
  very chain event message published (its Avro bytes; its key and headers as Kafka headers); a
  retraction publishes a tombstone.

Both are written in the transaction of the batch they describe (`Checkpoint.after` computes them from
the batch itself, as the read-back replays the blocks topic), so the checkpoint is exactly what is
published. A start reads the checkpoint, then lc.chain.events from the oldest window block's offsets
on for the messages of the window's blocks; without a checkpoint (or with `--restore-from-zero`) it
reads everything back (`kafka.read_back`) and writes the checkpoint whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from eventlog.config import CoreSettings
from eventlog.processing.restore import READ_TO_END, reader
from eventlog.topics import CHAIN_CHECKPOINTS
from indexers.chain.keying import KEYER_EVENTS, learns_from
from indexers.chain.messages import BLOCK_CONFIRMED, BLOCK_REVERTED, CHAIN_EVENT
from indexers.chain.model import BlockHeader, OutMessage
from indexers.chain.reorg import ReorgWindow

FORMAT = 1
KEY_HEADER = "lc-key"  # a fact's message key, carried as a header of its checkpoint entry
Vector = tuple[int, ...]  # lc.chain.events offset per partition


def window_key(chain_id: int) -> str:
    return f"{chain_id}/window"


def fact_key(chain_id: int, event_id: str) -> str:
    return f"{chain_id}/fact/{event_id}"


def is_fact(message: OutMessage) -> bool:
    """Whether the keyer learns from this chain event (its original, not a re-keyed copy)."""
    if message.event_type != CHAIN_EVENT or message.headers.get("lc-event") not in KEYER_EVENTS:
        return False
    payload = message.payload
    return learns_from(payload["contract"], payload["event"]) and not payload.get("rekeyed_from")


@dataclass
class Checkpoint:
    """The window's headers (as published) and the events offsets below which none of its blocks' messages lie."""

    window: ReorgWindow
    vectors: dict[str, Vector] = field(default_factory=dict)  # block hash -> offsets before its batch

    @classmethod
    def empty(cls, rollback_cap: int) -> Checkpoint:
        return cls(ReorgWindow(rollback_cap))

    def after(self, batch: Sequence[OutMessage], before: Vector) -> Checkpoint:
        """The checkpoint once `batch` is published (`before`: the events partitions' end offsets now)."""
        window = self.window.copy()
        vectors = dict(self.vectors)
        for message in batch:
            if message.event_type == BLOCK_CONFIRMED:
                p = message.payload
                window.add(BlockHeader(p["number"], p["hash"], p["parent_hash"], p["timestamp"]))
                vectors[p["hash"]] = before
            elif message.event_type == BLOCK_REVERTED:
                window.revert(message.payload["number"], message.payload["hash"])
        kept = {entry.hash for entry in window.entries}
        return Checkpoint(window, {h: v for h, v in vectors.items() if h in kept})

    def events_from(self) -> Vector | None:
        """Where the window's messages start in each events partition (None: nothing published)."""
        found = [self.vectors[entry.hash] for entry in self.window.entries if entry.hash in self.vectors]
        if not found:
            return None
        return tuple(min(offsets) for offsets in zip(*found, strict=True))

    def encode(self) -> bytes:
        vectors: list[Vector] = []
        index: dict[Vector, int] = {}
        blocks = []
        for entry in self.window.entries:
            vector = self.vectors.get(entry.hash, ())
            if vector not in index:
                index[vector] = len(vectors)
                vectors.append(vector)
            h = entry.header
            blocks.append([h.number, h.hash, h.parent_hash, h.timestamp, index[vector]])
        return json.dumps({"format": FORMAT, "complete": self.window.complete, "blocks": blocks,
                           "vectors": vectors}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes, rollback_cap: int) -> Checkpoint | None:
        """None for a format this code does not know (the state is then read back from the topics)."""
        value = json.loads(data)
        if value.get("format") != FORMAT:
            return None
        vectors = [tuple(v) for v in value["vectors"]]
        headers = [BlockHeader(n, h, parent, ts) for n, h, parent, ts, _v in value["blocks"]]
        window = ReorgWindow.restored(rollback_cap, headers, complete=value["complete"])
        return cls(window, {b[1]: vectors[b[4]] for b in value["blocks"] if vectors[b[4]]})


@dataclass
class StoredCheckpoint:
    """What lc.chain.checkpoints holds for one chain."""

    window: bytes | None = None
    facts: dict[str, tuple[bytes, str, dict[str, str]]] = field(default_factory=dict)  # key -> (value, msg key, headers)


def read_checkpoint(settings: CoreSettings, chain_id: int) -> StoredCheckpoint:
    """Every committed entry of this chain, newest per key (tombstones remove a fact)."""
    stored = StoredCheckpoint()
    prefix = f"{chain_id}/"
    consumer = reader(settings, f"chain-checkpoint-{chain_id}", {"enable.partition.eof": True, **READ_TO_END})
    try:
        # offset 0 (the log start where compaction removed it: auto.offset.reset): see Changelog.read
        consumer.assign([TopicPartition(settings.topic(CHAIN_CHECKPOINTS), 0, 0)])
        while True:
            messages = consumer.consume(1000, 0.05)  # returns at the timeout unless 1000 arrived: keep it short
            if any(m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF for m in messages):
                messages = [m for m in messages if m.error() is None]
                done = True
            else:
                done = False
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                key = (message.key() or b"").decode()
                if not key.startswith(prefix):
                    continue
                if key == window_key(chain_id):
                    stored.window = message.value()
                elif message.value() is None:
                    stored.facts.pop(key, None)
                else:
                    headers = {k: v.decode() for k, v in message.headers() or []}
                    stored.facts[key] = (message.value(), headers.pop(KEY_HEADER, ""), headers)
            if done:
                return stored
    finally:
        consumer.close()


def fact_entry(chain_id: int, message: OutMessage, value: bytes) -> tuple[str, bytes | None, dict[str, str]]:
    """(checkpoint key, value or None for a retraction, headers) of a keyer fact just published."""
    key = fact_key(chain_id, message.event_id)
    if message.payload.get("removed"):
        return key, None, {}
    return key, value, {**message.headers, KEY_HEADER: message.key}


def rewrite_entries(chain_id: int, facts: Iterable[tuple[OutMessage, bytes]],
                    stored_keys: Iterable[str]) -> list[tuple[str, bytes | None, dict[str, str]]]:
    """Every live fact, and a tombstone for each fact key stored that is no longer live."""
    entries = [fact_entry(chain_id, message, value) for message, value in facts]
    live = {key for key, _value, _headers in entries}
    return entries + [(key, None, {}) for key in sorted(set(stored_keys) - live)]
