"""ChainEvent Avro bytes without fastavro's generic writer, and the payload read back from them.

A backfill encodes one ChainEvent per log; fastavro's schema-driven writer spends about 9 µs on
one (a 27-branch union, 20 fields looked up by name). `ChainEventWriter` is compiled once from the
committed schema: it writes the fields in schema order with the framing `EventSerde` would use, and
reuses the encoded bytes of the values that repeat from one log to the next (producer, contract and
event, block, transaction), about 2 µs a message. Its output is byte-identical to `EventSerde.encode` (a test
checks every union branch), so readers cannot tell the two apart.

`read_payload` is the inverse, used when a message published from bytes is needed as a payload
again (a retraction after a reorg, a test looking at what was published).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from fastavro import schemaless_reader

from eventlog.serde import SchemaVersion, default_catalogue, frame_length
from indexers.chain.messages import CHAIN_EVENT, args_branch, chain_event_id
from indexers.chain.model import DecodedLog

# the order ChainEventWriter writes; the schema must list exactly these (checked at construction)
_ENVELOPE = ("event_id", "event_type", "occurred_at", "producer", "schema_version")
_FIELDS = ("envelope", "chain_id", "contract", "address", "event", "block_number", "block_hash", "block_timestamp",
           "tx_hash", "tx_index", "log_index", "removed", "challenge_id", "args", "rekeyed_from")
_FALSE, _TRUE = b"\x00", b"\x01"
_NULL, _PRESENT = b"\x00", b"\x02"  # union index 0 (null) / 1 (string), zigzag-encoded
_CACHE_LIMIT = 4096


def _varint(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 127:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_TABLE_SIZE = 4096
_LONGS = [_varint(n) for n in range(_TABLE_SIZE)]  # indexes, counts and string lengths are mostly small


def avro_long(value: int) -> bytes:
    """Avro int/long: zigzag, then little-endian base-128 varint."""
    if 0 <= value < _TABLE_SIZE:
        return _LONGS[value]
    return _varint(value)


def avro_string(value: str) -> bytes:
    data = value.encode()
    size = len(data)
    return (_LONGS[size] if size < _TABLE_SIZE else _varint(size)) + data


def _avro_boolean(value: bool) -> bytes:
    return _TRUE if value else _FALSE


_PRIMITIVE_WRITERS: dict[str, Callable[[Any], bytes]] = {
    "string": avro_string, "int": avro_long, "long": avro_long, "boolean": _avro_boolean,
}


class SchemaMismatch(ValueError):
    """The ChainEvent schema no longer has the layout this writer was written for."""


class ChainEventWriter:
    """Encodes ChainEvent payloads (as `messages.chain_event` builds them) into framed Avro bytes.

    `frame`: the bytes before the Avro body, as `EventSerde.frame` gives them for the topic.
    """

    def __init__(self, frame: bytes, producer: str, version: SchemaVersion | None = None) -> None:
        self.frame = frame
        self.producer = producer
        self.version = version or default_catalogue().latest(CHAIN_EVENT)
        fields = self.version.schema["fields"]
        names = tuple(f["name"] for f in fields)
        envelope = tuple(f["name"] for f in fields[0]["type"]["fields"])
        if names != _FIELDS or envelope != _ENVELOPE:
            raise SchemaMismatch(f"ChainEvent v{self.version.version} fields {names} / envelope {envelope}; "
                                 f"ChainEventWriter writes {_FIELDS} / {_ENVELOPE}")
        self._branches: dict[str, tuple[bytes, tuple[tuple[str, Callable[[Any], bytes]], ...]]] = {}
        for index, branch in enumerate(fields[_FIELDS.index("args")]["type"]):
            writers = tuple((f["name"], _PRIMITIVE_WRITERS[f["type"]]) for f in branch["fields"])
            self._branches[branch["name"]] = (avro_long(index), writers)
        self._event_type = avro_string(CHAIN_EVENT)
        self._producer_and_version = avro_string(producer) + avro_long(self.version.version)
        # encoded bytes of values that repeat from one log to the next
        self._times: dict[tuple[int, int], bytes] = {}
        self._emitters: dict[tuple[str, str, str], bytes] = {}
        self._blocks: dict[tuple[int, str, int], bytes] = {}
        self._tx_hash, self._tx_hash_bytes = "", b""

    def __reduce__(self) -> tuple[Any, ...]:
        # range workers get the writer by pickle; the catalogue is re-read there
        return (ChainEventWriter, (self.frame, self.producer))

    def encode(self, event_id: str, occurred_at: int, payload: dict[str, Any]) -> bytes:
        branch, args = payload["args"]
        return self._write(
            event_id, occurred_at, payload["chain_id"], payload["contract"], payload["address"], payload["event"],
            payload["block_number"], payload["block_hash"], payload["block_timestamp"], payload["tx_hash"],
            payload["tx_index"], payload["log_index"], payload["removed"], payload["challenge_id"], branch, args,
            payload["rekeyed_from"],
        )

    def encode_log(self, chain_id: int, decoded: DecodedLog, challenge_id: str | None,
                   block_timestamp: int) -> tuple[str, bytes]:
        """(event id, Avro bytes) of the ChainEvent `messages.chain_event` would build, without building it."""
        log = decoded.log
        event_id = chain_event_id(chain_id, log.block_hash, log.tx_hash, log.log_index)
        return event_id, self._write(
            event_id, block_timestamp * 1000, chain_id, decoded.contract, log.address, decoded.event,
            log.block_number, log.block_hash, block_timestamp, log.tx_hash, log.tx_index, log.log_index, False,
            challenge_id, args_branch(decoded.contract, decoded.event), decoded.args, None,
        )

    def _write(self, event_id: str, occurred_at: int, chain_id: int, contract: str, address: str, event: str,
               block_number: int, block_hash: str, block_timestamp: int, tx_hash: str, tx_index: int,
               log_index: int, removed: bool, challenge_id: str | None, branch: str, args: dict[str, Any],
               rekeyed_from: str | None) -> bytes:
        index, arg_writers = self._branches[branch]
        times = (occurred_at, chain_id)
        time_and_chain = self._times.get(times)
        if time_and_chain is None:
            time_and_chain = _remember(self._times, times,
                                       avro_long(occurred_at) + self._producer_and_version + avro_long(chain_id))
        emitter = (contract, address, event)
        emitter_bytes = self._emitters.get(emitter)
        if emitter_bytes is None:
            emitter_bytes = _remember(self._emitters, emitter, b"".join(map(avro_string, emitter)))
        block = (block_number, block_hash, block_timestamp)
        block_bytes = self._blocks.get(block)
        if block_bytes is None:
            block_bytes = _remember(self._blocks, block,
                                    avro_long(block_number) + avro_string(block_hash) + avro_long(block_timestamp))
        if tx_hash != self._tx_hash:  # consecutive logs often come from one transaction
            self._tx_hash, self._tx_hash_bytes = tx_hash, avro_string(tx_hash)
        parts = [
            self.frame, avro_string(event_id), self._event_type, time_and_chain, emitter_bytes, block_bytes,
            self._tx_hash_bytes, avro_long(tx_index), avro_long(log_index), _TRUE if removed else _FALSE,
            _NULL if challenge_id is None else _PRESENT + avro_string(challenge_id),
            index,
        ]
        for name, write in arg_writers:
            parts.append(write(args[name]))
        parts.append(_NULL if rekeyed_from is None else _PRESENT + avro_string(rekeyed_from))
        return b"".join(parts)


def _remember(cache: dict[Any, bytes], key: Any, fragment: bytes) -> bytes:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = fragment
    return fragment


def read_payload(value: bytes) -> dict[str, Any]:
    """The payload of a ChainEvent this process's writer encoded (args as a (branch, record) tuple)."""
    version = default_catalogue().latest(CHAIN_EVENT)
    body = io.BytesIO(value[frame_length(value):])
    record = schemaless_reader(body, version.plain, None, return_record_name=True)
    record.pop("envelope")
    return record
