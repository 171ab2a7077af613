"""One block range made ready to publish: fetched, decoded, keyed and encoded, apart from the indexer's state.

This is the indexer's work per log. It needs only the node and the catalogue, so range workers
(other processes, see `workers`) do it for the next ranges while the indexer publishes the current
one. What depends on the indexer's state stays with the indexer: facts the keyer learns from (AIVM
events and task bindings) come back decoded, to be keyed there in chain order; every other fact
comes back finished, as an `EncodedEvent` carrying its Avro bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from indexers.chain.catalogue import DecoderTable
from indexers.chain.codec import ChainEventWriter
from indexers.chain.keying import contract_key, learns_from
from indexers.chain.model import BlockHeader, DecodedLog, RawLog
from indexers.chain.rpc import ChainMoved, ChainSource


@dataclass(frozen=True)
class RangeContext:
    """What preparing a range needs besides the node (sent once to each worker process)."""

    chain_id: int
    table: DecoderTable
    writer: ChainEventWriter
    challenge_pay_address: str


# A finished chain event as a plain tuple (pickled per log: a tuple costs a fraction of an object):
# (key, event id, Avro value, event name, log index); `messages.encoded_chain_event` makes it a message.
EncodedEvent = tuple[str, str, bytes, str, int]


class PreparedBlock(NamedTuple):
    number: int
    items: list[EncodedEvent | DecodedLog]  # in log order: finished events, and decoded facts to key


class PreparedRange(NamedTuple):
    first: int
    end: int
    headers: dict[int, BlockHeader | None]  # of `first`, `end` and every block in `blocks`
    blocks: list[PreparedBlock]  # the blocks with pipeline logs, ascending
    logs: int


def prepare_range(source: ChainSource, context: RangeContext, first: int, end: int,
                  chunk_logs: int | None = None) -> list[PreparedRange]:
    """The range [first, end], as one prepared range or, with `chunk_logs`, as consecutive chunks of
    whole blocks holding about that many logs each (a block is never split). The range's size was a
    guess from the blocks before it; chunks keep each Kafka transaction near the budget when the
    guess was low, without fetching anything twice."""
    table = context.table
    entries = source.get_logs(first, end, table.addresses, table.topic0s)
    logs = sorted(map(RawLog.from_rpc, entries), key=_chain_position)
    bounds = _chunk_bounds(logs, first, end, chunk_logs)
    headers = source.headers({n for bound in bounds for n in bound} | {raw.block_number for raw in logs})
    encode_log = context.writer.encode_log
    blocks: list[PreparedBlock] = []
    items: list[EncodedEvent | DecodedLog] = []
    for raw in logs:
        decoder = table.decoder_for(raw.address, raw.topics[0] if raw.topics else b"")
        if decoder is None:
            continue  # another event of a pipeline contract (the filter is address list x topic list)
        header = headers.get(raw.block_number)
        if header is None or header.hash != raw.block_hash:
            raise ChainMoved(f"log {raw.tx_hash}#{raw.log_index} is in block {raw.block_hash}, "
                             f"the node's block {raw.block_number} is {header.hash if header else None}")
        if not blocks or blocks[-1].number != header.number:
            items = []
            blocks.append(PreparedBlock(header.number, items))
        decoded = decoder.decode(raw)
        if learns_from(decoded.contract, decoded.event):
            items.append(decoded)
        else:
            key = contract_key(decoded, context.challenge_pay_address)
            event_id, value = encode_log(context.chain_id, decoded, key.challenge_id, header.timestamp)
            items.append((key.key, event_id, value, decoded.event, raw.log_index))
    chunks = []
    for chunk_first, chunk_end in bounds:
        chunk_blocks = [block for block in blocks if chunk_first <= block.number <= chunk_end]
        chunk_headers = {n: headers[n] for n in {chunk_first, chunk_end} | {block.number for block in chunk_blocks}}
        chunks.append(PreparedRange(chunk_first, chunk_end, chunk_headers, chunk_blocks,
                                    sum(len(block.items) for block in chunk_blocks)))
    return chunks


def _chunk_bounds(logs: list[RawLog], first: int, end: int, chunk_logs: int | None) -> list[tuple[int, int]]:
    """[first, end] cut after whole blocks so that each part holds about `chunk_logs` logs (at least one block)."""
    if chunk_logs is None or len(logs) <= chunk_logs:
        return [(first, end)]
    bounds = []
    start, count, block = first, 0, -1
    for raw in logs:
        if raw.block_number != block:
            if count >= chunk_logs:
                bounds.append((start, block))
                start, count = block + 1, 0
            block = raw.block_number
        count += 1
    bounds.append((start, end))
    return bounds


def _chain_position(raw: RawLog) -> tuple[int, int]:
    return raw.block_number, raw.log_index
