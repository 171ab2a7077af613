"""Plain data the indexer passes between its layers: raw logs and headers in, messages out.

The per-log types are named tuples: a backfill builds one of each per log, and a frozen dataclass's
__init__ costs about twice as much (every field goes through object.__setattr__).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


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
        return cls(
            address=entry["address"].lower(),
            topics=tuple(bytes.fromhex(t[2:]) for t in entry["topics"]),
            data=bytes.fromhex(entry["data"][2:]),
            block_number=int(entry["blockNumber"], 16),
            block_hash=entry["blockHash"].lower(),
            tx_hash=entry["transactionHash"].lower(),
            tx_index=int(entry["transactionIndex"], 16),
            log_index=int(entry["logIndex"], 16),
        )


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


@dataclass(frozen=True)
class OutMessage:
    """One Kafka message the indexer publishes (topic is a catalogue name, without prefix)."""

    topic: str
    key: str
    event_type: str
    event_id: str
    occurred_at: int  # epoch milliseconds (block time)
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
