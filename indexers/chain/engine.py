"""The indexing loop: confirmed ranges in, decoded events and headers out, reorgs rolled back.

Each step publishes, through a `Sink`, one atomic batch: either the chain events of one block range
with the headers of their blocks and the header that closes the range, or the retractions and
BlockReverted of a rollback. The reorg window changes only after the sink accepted the batch, and
what the keyer learnt while building a batch is undone if the sink refuses it; after a sink failure
the caller may also rebuild all state from the published output (run_indexer does).

The next ranges are prepared ahead (`workers`): up to `workers + 1` ranges are in flight, and the
engine takes them strictly in chain order; any surprise (a rollback, a failed range, a shorter
chain) drops what was prepared ahead and starts again from the next unpublished block.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from eventlog import metrics
from indexers.chain.catalogue import DecoderTable
from indexers.chain.codec import ChainEventWriter
from indexers.chain.keying import ChainKeyer
from indexers.chain.messages import (
    block_confirmed,
    block_reverted,
    chain_event,
    encoded_chain_event,
    retraction,
)
from indexers.chain.model import BlockHeader, DecodedLog, OutMessage
from indexers.chain.prepare import PreparedRange, RangeContext
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.reorg import PublishedBlock, ReorgWindow
from indexers.chain.rpc import ChainMoved, ChainSource, RangeTooLarge, RpcError
from indexers.chain.workers import RangeWorkers

log = logging.getLogger("lc.indexer.chain")


class Sink(Protocol):
    writer: ChainEventWriter  # how this sink's chain events are encoded; they reach `publish` encoded

    def publish(self, messages: Sequence[OutMessage]) -> None:
        """Publish all messages atomically, in order, or raise."""


class StopSignal(Protocol):
    """threading.Event or eventlog.consumer.StopFlag."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


def _completed(chunks: list[PreparedRange]) -> Future[list[PreparedRange]]:
    future: Future[list[PreparedRange]] = Future()
    future.set_result(chunks)
    return future


class Step(Enum):
    PUBLISHED = "published"
    IDLE = "idle"
    ROLLED_BACK = "rolled back"


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    _next: float = 0.0

    def delay(self) -> float:
        self._next = self.initial if self._next == 0 else min(self.maximum, self._next * 2)
        return self._next

    def reset(self) -> None:
        self._next = 0.0


@dataclass
class Timings:
    """Where the published ranges' time went (seconds): waiting for the node, decoding, publishing."""

    fetch_wait: float = 0.0
    decode: float = 0.0
    publish: float = 0.0
    logs: int = 0

    def add(self, fetch_wait: float, decode: float, publish: float, logs: int) -> None:
        self.fetch_wait += fetch_wait
        self.decode += decode
        self.publish += publish
        self.logs += logs


class ChainIndexer:
    def __init__(
        self,
        *,
        chain_id: int,
        source: ChainSource,
        table: DecoderTable,
        sink: Sink,
        keyer: ChainKeyer,
        window: ReorgWindow,
        ranges: AdaptiveRange,
        confirmations: int,
        start_block: int = 0,
        workers: int = 0,
    ) -> None:
        """`workers`: range worker processes (0: one thread; see indexers.chain.workers)."""
        self.chain_id = chain_id
        self.source = source
        self.sink = sink
        self.keyer = keyer
        self.window = window
        self.ranges = ranges
        self.confirmations = confirmations
        self.start_block = start_block
        self.writer = sink.writer
        context = RangeContext(chain_id, table, self.writer, keyer.challenge_pay_address)
        self.workers = RangeWorkers(source, context, processes=workers)
        # ranges being prepared ahead, in chain order: ((first, end), future)
        self._ahead: deque[tuple[tuple[int, int], Future[list[PreparedRange]]]] = deque()
        self._depth = max(2, workers + 1)
        self.timings = Timings()
        self._head_gauge = metrics.CHAIN_HEAD.labels(str(chain_id))
        self._indexed_gauge = metrics.CHAIN_INDEXED.labels(str(chain_id))

    @property
    def next_block(self) -> int:
        last = self.window.last
        return last.number + 1 if last else self.start_block

    def step(self) -> Step:
        head = self.source.block_number()
        self._head_gauge.set(head)
        safe_head = head - self.confirmations
        first = self.next_block
        last = self.window.last
        if first > safe_head:
            if last is not None and not self._still_canonical(last):
                self.roll_back()
                return Step.ROLLED_BACK
            return Step.IDLE
        started = time.perf_counter()
        prepared = self._take(first, safe_head)
        fetched = time.perf_counter()
        first_header = prepared.headers.get(first)
        if first_header is None:
            raise ChainMoved(f"block {first} vanished while its range was fetched")
        if not self.window.extends(first_header):
            log.warning("block %d's parent %s is not the published block %d %s: reorg",
                        first, first_header.parent_hash, last.number if last else -1, last.hash if last else "")
            self.roll_back()
            return Step.ROLLED_BACK
        batch, blocks, observed = self._range_batch(prepared)
        built = time.perf_counter()
        try:
            self.sink.publish(batch)
        except BaseException:
            self._forget(observed)
            self._drop_ahead()
            raise
        self.timings.add(fetched - started, built - fetched, time.perf_counter() - built, prepared.logs)
        for header, messages in blocks:
            self.window.add(header, messages)
        self._indexed_gauge.set(prepared.end)
        self.ranges.succeeded(prepared.end - first + 1, prepared.logs)
        if prepared.logs:
            log.info("published blocks %d..%d: %d chain events", first, prepared.end, prepared.logs)
        self._fill(prepared.end + 1, safe_head)
        return Step.PUBLISHED

    def _take(self, first: int, safe_head: int) -> PreparedRange:
        """The range starting at `first`, prepared ahead if it was; the queue is topped up first."""
        if self._ahead and (self._ahead[0][0][0] != first or self._ahead[-1][0][1] > safe_head):
            self._drop_ahead()  # a rollback, a failed range or a shorter chain changed what comes next
        self._fill(first, safe_head)
        _span, future = self._ahead.popleft()
        try:
            chunks = self.workers.result(future)
        except BaseException:
            self._drop_ahead()
            self.workers.recover()
            raise
        for chunk in reversed(chunks[1:]):  # a range denser than its guess came back in chunks
            self._ahead.appendleft(((chunk.first, chunk.end), _completed([chunk])))
        return chunks[0]

    def _fill(self, start: int, safe_head: int) -> None:
        cursor = self._ahead[-1][0][1] + 1 if self._ahead else start
        while len(self._ahead) < self._depth:
            span = self.ranges.span(cursor, safe_head)
            if span is None:
                return
            self._ahead.append((span, self.workers.submit(*span, self.ranges.log_budget)))
            cursor = span[1] + 1

    def _drop_ahead(self) -> None:
        while self._ahead:
            self._ahead.popleft()[1].cancel()

    def close(self) -> None:
        self._drop_ahead()
        self.workers.close()

    def _range_batch(
        self, prepared: PreparedRange
    ) -> tuple[list[OutMessage], list[tuple[BlockHeader, list[OutMessage]]], list[OutMessage]]:
        """The range's messages in publish order, each block's events closed by its BlockConfirmed."""
        headers = prepared.headers
        batch: list[OutMessage] = []
        blocks: list[tuple[BlockHeader, list[OutMessage]]] = []
        observed: list[OutMessage] = []  # what the keyer learnt, to be undone if the batch is not published
        try:
            for block in prepared.blocks:
                header = headers[block.number]
                assert header is not None  # prepare_range checked every log against its block's header
                events: list[OutMessage] = []
                for item in block.items:
                    if not isinstance(item, DecodedLog):
                        key_text, event_id, value, event, log_index = item
                        events.append(encoded_chain_event(key_text, event_id, value, event, header, log_index))
                        continue
                    key = self.keyer.key_for(item)
                    message = self._encoded(chain_event(self.chain_id, item, key.key, key.challenge_id,
                                                        header.timestamp))
                    if item.event == "BindingRecorded":
                        events.extend(self._encoded(copy) for copy in self.keyer.rekeyed_copies(message))
                    events.append(message)
                    self.keyer.published(message)
                    observed.append(message)
                batch.extend(events)
                batch.append(block_confirmed(self.chain_id, header, len(events)))
                blocks.append((header, events))
        except BaseException:
            self._forget(observed)
            raise
        closing = headers.get(prepared.end)
        if closing is None:
            self._forget(observed)
            raise ChainMoved(f"block {prepared.end} vanished while its range was fetched")
        if not blocks or blocks[-1][0].number != prepared.end:
            batch.append(block_confirmed(self.chain_id, closing, 0))
            blocks.append((closing, []))
        return batch, blocks, observed

    def _encoded(self, message: OutMessage) -> OutMessage:
        return message.encoded(self.writer.encode(message.event_id, message.occurred_at, message.payload))

    def _forget(self, observed: list[OutMessage]) -> None:
        for message in reversed(observed):
            self.keyer.retracted(message)

    def _still_canonical(self, entry: PublishedBlock) -> bool:
        header = self.source.headers([entry.number]).get(entry.number)
        return header is not None and header.hash == entry.hash

    def roll_back(self) -> None:
        """Walk back to the newest published block still canonical; retract everything above it."""
        self._drop_ahead()
        numbers = self.window.numbers()
        canonical = {n: (h.hash if h else None) for n, h in self.source.headers(numbers).items()}
        plan = self.window.plan_rollback(canonical)  # raises ReorgTooDeep beyond the cap
        batch: list[OutMessage] = []
        for entry in plan.orphaned:
            batch.extend(self._encoded(retraction(message)) for message in reversed(entry.messages))
            batch.append(block_reverted(self.chain_id, entry.header, plan.ancestor))
        self.sink.publish(batch)
        for entry in plan.orphaned:
            for message in reversed(entry.messages):
                self.keyer.retracted(message)
        self.window.apply_rollback(plan)
        self._indexed_gauge.set(self.next_block - 1)
        log.warning(
            "reorg: retracted %d published block(s) %s with %d chain event(s); ancestor %s; resuming at %d",
            len(plan.orphaned), [entry.number for entry in plan.orphaned],
            sum(len(entry.messages) for entry in plan.orphaned),
            f"{plan.ancestor.number} {plan.ancestor.hash}" if plan.ancestor else "none", self.next_block,
        )

    def run(self, stop: StopSignal, *, poll_seconds: float = 1.0, backoff: Backoff | None = None) -> None:
        """Index until `stop` is set. RPC failures are logged and retried (never skipped); other errors raise."""
        backoff = backoff or Backoff()
        try:
            self._run(stop, poll_seconds, backoff)
        finally:
            self.close()

    def _run(self, stop: StopSignal, poll_seconds: float, backoff: Backoff) -> None:
        while not stop.is_set():
            try:
                step = self.step()
            except RangeTooLarge as exc:
                if self.ranges.at_minimum:
                    log.warning("node refused a 1-block range (%s); retrying", exc)
                    stop.wait(backoff.delay())
                else:
                    self.ranges.shrink()
                    log.warning("block range too large (%s); shrinking to %d blocks", exc, self.ranges.size)
                continue
            except RpcError as exc:
                delay = backoff.delay()
                log.warning("RPC failure at block %d (%s); retrying in %.1f s", self.next_block, exc, delay)
                stop.wait(delay)
                continue
            backoff.reset()
            if step is Step.IDLE:
                stop.wait(poll_seconds)
