"""Plain data the indexer passes between its layers: raw logs and headers in, messages out.

The per-log types are named tuples: a backfill builds one of each per log, and a frozen dataclass's
__init__ costs about twice as much (every field goes through object.__setattr__).
"""

from __future__ import annotations

from typing import Any, NamedTuple

_new_tuple = tuple.__new__


class RawLog(NamedTuple):
    """One log as eth_getLogs returns it, hex fields already parsed."""

    address: str  # lowercase 0x-hex
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: str  # lowercase 0x-hex
    tx_hash: str
    tx_index: int
    log_index: int

    @classmethod
    def from_rpc(cls, entry: dict[str, Any]) -> RawLog:
        fromhex = bytes.fromhex
        return _new_tuple(cls, (  # positional: a backfill builds one per log, keywords cost ~40% more
            entry["address"].lower(),
            tuple([fromhex(topic[2:]) for topic in entry["topics"]]),
            fromhex(entry["data"][2:]),
            int(entry["blockNumber"], 16),
            entry["blockHash"].lower(),
            entry["transactionHash"].lower(),
            int(entry["transactionIndex"], 16),
            int(entry["logIndex"], 16),
        ))


class BlockHeader(NamedTuple):
    number: int
    hash: str  # lowercase 0x-hex
    parent_hash: str
    timestamp: int  # seconds

    @classmethod
    def from_rpc(cls, block: dict[str, Any]) -> BlockHeader:
        return cls(
            number=int(block["number"], 16),
            hash=block["hash"].lower(),
            parent_hash=block["parentHash"].lower(),
            timestamp=int(block["timestamp"], 16),
        )


class DecodedLog(NamedTuple):
    """A pipeline contract's log decoded against its ABI; `args` values are Python-native and Avro-ready."""

    contract: str  # the address role, e.g. "ChallengePay"
    event: str  # the event name, e.g. "Joined"
    args: dict[str, Any]
    log: RawLog


class OutMessage:
    """One Kafka message the indexer publishes (topic is a catalogue name, without prefix).

    A chain event carries its encoded Avro `value` (the bytes that get published). One a range worker
    encoded has no payload object: it is decoded from the value on first use, which only a reorg's
    retraction (or a test) needs. Messages are not modified after creation.
    """

    __slots__ = ("topic", "key", "event_type", "event_id", "occurred_at", "headers", "value", "_payload")

    def __init__(self, topic: str, key: str, event_type: str, event_id: str, occurred_at: int,
                 payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                 value: bytes | None = None) -> None:
        if payload is None and value is None:
            raise ValueError(f"message {event_id} has neither a payload nor an encoded value")
        self.topic = topic
        self.key = key
        self.event_type = event_type
        self.event_id = event_id
        self.occurred_at = occurred_at  # epoch milliseconds (block time)
        self.headers = headers if headers is not None else {}
        self.value = value
        self._payload = payload

    @property
    def payload(self) -> dict[str, Any]:
        if self._payload is None:
            from indexers.chain.codec import read_payload  # codec builds on this module

            self._payload = read_payload(self.value or b"")
        return self._payload

    def encoded(self, value: bytes) -> OutMessage:
        """The same message carrying its encoded value."""
        return OutMessage(self.topic, self.key, self.event_type, self.event_id, self.occurred_at, self._payload,
                          self.headers, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutMessage):
            return NotImplemented
        return (self.topic, self.key, self.event_type, self.event_id, self.occurred_at, self.headers) == \
            (other.topic, other.key, other.event_type, other.event_id, other.occurred_at, other.headers) \
            and self.payload == other.payload

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OutMessage({self.topic!r}, key={self.key!r}, {self.event_type}, id={self.event_id!r})"
