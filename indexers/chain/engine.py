"""The indexing loop: confirmed ranges in, decoded events and headers out, reorgs rolled back.

Each step publishes, through a `Sink`, one atomic batch: either the chain events of one block range
with the headers of their blocks and the header that closes the range, or the retractions and
BlockReverted of a rollback. The reorg window changes only after the sink accepted the batch, and
what the keyer learnt while building a batch is undone if the sink refuses it; after a sink failure
the caller may also rebuild all state from the published output (run_indexer does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from indexers.chain.catalogue import DecoderTable
from indexers.chain.keying import ChainKeyer
from indexers.chain.messages import block_confirmed, block_reverted, chain_event, retraction
from indexers.chain.model import BlockHeader, OutMessage, RawLog
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.reorg import PublishedBlock, ReorgWindow
from indexers.chain.rpc import RangeTooLarge, RpcError

log = logging.getLogger("lc.indexer.chain")


class ChainMoved(RpcError):
    """The node's answers disagree with each other (a reorg during the fetch); retry the range."""


class Sink(Protocol):
    def publish(self, messages: Sequence[OutMessage]) -> None:
        """Publish all messages atomically, in order, or raise."""


class ChainSource(Protocol):
    def block_number(self) -> int: ...

    def headers(self, numbers: Sequence[int] | set[int]) -> dict[int, BlockHeader | None]: ...

    def get_logs(self, from_block: int, to_block: int, addresses: Sequence[str],
                 topic0s: Sequence[str]) -> list[dict[str, Any]]: ...


_Fetched = tuple[list[RawLog], dict[int, BlockHeader | None]]


class StopSignal(Protocol):
    """threading.Event or eventlog.consumer.StopFlag."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


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
        prefetch: bool = True,
    ) -> None:
        self.chain_id = chain_id
        self.source = source
        self.table = table
        self.sink = sink
        self.keyer = keyer
        self.window = window
        self.ranges = ranges
        self.confirmations = confirmations
        self.start_block = start_block
        self._addresses = table.addresses
        self._topic0s = table.topic0s
        # while one range is decoded and published, the next one is fetched (backfill overlaps RPC and CPU)
        self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="chain-prefetch") if prefetch else None
        self._prefetch: tuple[tuple[int, int], Future[_Fetched]] | None = None
        self.timings = Timings()

    @property
    def next_block(self) -> int:
        last = self.window.last
        return last.number + 1 if last else self.start_block

    def step(self) -> Step:
        safe_head = self.source.block_number() - self.confirmations
        span = self.ranges.span(self.next_block, safe_head)
        last = self.window.last
        if span is None:
            if last is not None and not self._still_canonical(last):
                self.roll_back()
                return Step.ROLLED_BACK
            return Step.IDLE
        first, end = span
        started = time.perf_counter()
        logs, headers = self._fetch(first, end)
        fetched = time.perf_counter()
        first_header = headers.get(first)
        if first_header is None:
            raise ChainMoved(f"block {first} vanished while its range was fetched")
        if not self.window.extends(first_header):
            log.warning("block %d's parent %s is not the published block %d %s: reorg",
                        first, first_header.parent_hash, last.number if last else -1, last.hash if last else "")
            self.roll_back()
            return Step.ROLLED_BACK
        batch, blocks, observed = self._range_batch(logs, headers, end)
        built = time.perf_counter()
        try:
            self.sink.publish(batch)
        except BaseException:
            self._forget(observed)
            raise
        self.timings.add(fetched - started, built - fetched, time.perf_counter() - built, len(logs))
        for header, messages in blocks:
            self.window.add(header, messages)
        self.ranges.succeeded(end - first + 1)
        if logs:
            log.info("published blocks %d..%d: %d chain events", first, end, len(logs))
        following = self.ranges.span(end + 1, safe_head)
        if following is not None and self._prefetcher is not None:
            self._prefetch = (following, self._prefetcher.submit(self._fetch_now, *following))
        return Step.PUBLISHED

    def _fetch(self, first: int, end: int) -> _Fetched:
        """The range's logs and headers, from the prefetch made while the previous range was published."""
        pending, self._prefetch = self._prefetch, None
        if pending is not None:
            span, future = pending
            if span == (first, end):
                try:
                    return future.result()
                except Exception:  # fetched again below, where the error is handled and logged
                    pass
            else:
                future.cancel()
        return self._fetch_now(first, end)

    def _fetch_now(self, first: int, end: int) -> _Fetched:
        entries = self.source.get_logs(first, end, self._addresses, self._topic0s)
        logs = [RawLog.from_rpc(entry) for entry in entries]
        headers = self.source.headers({first, end} | {raw.block_number for raw in logs})
        return logs, headers

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.shutdown(wait=False, cancel_futures=True)

    def _range_batch(
        self, logs: list[RawLog], headers: dict[int, BlockHeader | None], end: int
    ) -> tuple[list[OutMessage], list[tuple[BlockHeader, list[OutMessage]]], list[OutMessage]]:
        batch: list[OutMessage] = []
        blocks: list[tuple[BlockHeader, list[OutMessage]]] = []
        current: BlockHeader | None = None
        events: list[OutMessage] = []

        def close_block() -> None:
            if current is not None:
                batch.extend(events)
                batch.append(block_confirmed(self.chain_id, current, len(events)))
                blocks.append((current, list(events)))

        observed: list[OutMessage] = []
        try:
            for raw in sorted(logs, key=lambda entry: (entry.block_number, entry.log_index)):
                header = headers.get(raw.block_number)
                if header is None or header.hash != raw.block_hash:
                    raise ChainMoved(f"log {raw.tx_hash}#{raw.log_index} is in block {raw.block_hash}, "
                                     f"the node's block {raw.block_number} is {header.hash if header else None}")
                decoder = self.table.decoder_for(raw.address, raw.topics[0] if raw.topics else b"")
                if decoder is None:
                    continue  # another event of a pipeline contract (the filter is address list x topic list)
                if current is None or current.number != header.number:
                    close_block()
                    current, events = header, []
                decoded = decoder.decode(raw)
                key = self.keyer.key_for(decoded)
                message = chain_event(self.chain_id, decoded, key.key, key.challenge_id, header.timestamp)
                if decoded.event == "BindingRecorded":
                    events.extend(self.keyer.rekeyed_copies(message))
                events.append(message)
                self.keyer.published(message)
                observed.append(message)
        except BaseException:
            self._forget(observed)
            raise
        close_block()
        closing = headers.get(end)
        if closing is None:
            raise ChainMoved(f"block {end} vanished while its range was fetched")
        if not blocks or blocks[-1][0].number != end:
            batch.append(block_confirmed(self.chain_id, closing, 0))
            blocks.append((closing, []))
        return batch, blocks, observed

    def _forget(self, observed: list[OutMessage]) -> None:
        for message in reversed(observed):
            self.keyer.retracted(message)

    def _still_canonical(self, entry: PublishedBlock) -> bool:
        header = self.source.headers([entry.number]).get(entry.number)
        return header is not None and header.hash == entry.hash

    def roll_back(self) -> None:
        """Walk back to the newest published block still canonical; retract everything above it."""
        if self._prefetch is not None:
            self._prefetch[1].cancel()
            self._prefetch = None
        numbers = self.window.numbers()
        canonical = {n: (h.hash if h else None) for n, h in self.source.headers(numbers).items()}
        plan = self.window.plan_rollback(canonical)  # raises ReorgTooDeep beyond the cap
        batch: list[OutMessage] = []
        for entry in plan.orphaned:
            batch.extend(retraction(message) for message in reversed(entry.messages))
            batch.append(block_reverted(self.chain_id, entry.header, plan.ancestor))
        self.sink.publish(batch)
        for entry in plan.orphaned:
            for message in reversed(entry.messages):
                self.keyer.retracted(message)
        self.window.apply_rollback(plan)
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
