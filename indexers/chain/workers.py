"""Range workers: the next block ranges are prepared (`prepare.prepare_range`) while the indexer publishes.

With `processes=0` one thread prepares ranges with the indexer's own node client: the node's time
overlaps the indexer's, the CPU work does not (one interpreter lock). With `processes=N`, N worker
processes (spawned, each with its own node client) prepare ranges in parallel, which is what lets a
backfill go at the node's pace: decoding and encoding a log costs more CPU than the node's answer
for it. Results come back in submission order through futures; the indexer alone publishes, in
chain order, and alone holds state.

A worker process that dies is replaced: its range fails with `RangeWorkerLost`, an RpcError, so the
indexer's loop retries it as it retries any failed fetch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from eventlog.process import tune_process
from indexers.chain.prepare import PreparedRange, RangeContext, prepare_range
from indexers.chain.rpc import ChainRpc, ChainSource, RpcError

log = logging.getLogger("lc.indexer.chain")


class RangeWorkerLost(RpcError):
    """A range worker process died while preparing a range; the range is retried on a fresh pool."""


class RangeWorkers:
    def __init__(self, source: ChainSource, context: RangeContext, *, processes: int = 0) -> None:
        self.source = source
        self.context = context
        self.processes = processes
        self._executor = self._start()

    def _start(self) -> Executor:
        if self.processes <= 0:
            return ThreadPoolExecutor(1, thread_name_prefix="chain-range")
        if not isinstance(self.source, ChainRpc):
            raise TypeError("range worker processes need a ChainRpc source (they open their own connection)")
        return ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(self.source.url, self.source.timeout, self.context, os.getpid()),
        )

    def submit(self, first: int, end: int, chunk_logs: int | None = None) -> Future[list[PreparedRange]]:
        if isinstance(self._executor, ThreadPoolExecutor):
            return self._executor.submit(prepare_range, self.source, self.context, first, end, chunk_logs)
        try:
            return self._executor.submit(_prepare_in_worker, first, end, chunk_logs)
        except BrokenProcessPool:
            self._restart()
            return self._executor.submit(_prepare_in_worker, first, end, chunk_logs)

    @staticmethod
    def result(future: Future[list[PreparedRange]]) -> list[PreparedRange]:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise RangeWorkerLost(f"a range worker process died: {exc}") from exc

    def recover(self) -> None:
        """After RangeWorkerLost: replace the broken pool (its pending ranges are lost; the caller resubmits)."""
        if isinstance(self._executor, ProcessPoolExecutor) and getattr(self._executor, "_broken", False):
            self._restart()

    def _restart(self) -> None:
        log.warning("range worker pool broken; starting %d new worker process(es)", self.processes)
        self._stop()
        self._executor = self._start()

    def warm_up(self) -> None:
        """Start every worker process now (spawning one takes 0.3 s or more) rather than on the first range."""
        if isinstance(self._executor, ProcessPoolExecutor):
            for future in [self._executor.submit(_ready) for _ in range(self.processes)]:
                future.result()

    def pids(self) -> list[int]:
        """Process ids of the live worker processes (none in thread mode)."""
        return [process.pid for process in self._processes() if process.is_alive()]

    def close(self) -> None:
        self._stop()

    def _stop(self) -> None:
        processes = self._processes()
        self._executor.shutdown(wait=False, cancel_futures=True)
        # Worker processes are ended, not waited for: one may be mid-range (its result is no longer
        # wanted), and after a sibling was killed while it held the task queue's lock, the others can
        # never read their stop message (the executor would then wait for them forever, even at exit).
        for process in processes:
            process.terminate()

    def _processes(self) -> list[multiprocessing.Process]:
        # the executor does not expose its processes; `_processes` has been its attribute since Python 3.2
        return list((getattr(self._executor, "_processes", None) or {}).values())


_worker: tuple[ChainRpc, RangeContext] | None = None


def _start_worker(url: str, timeout: float, context: RangeContext, indexer_pid: int) -> None:
    global _worker
    tune_process()
    threading.Thread(target=_exit_with, args=(indexer_pid,), name="indexer-watch", daemon=True).start()
    _worker = (ChainRpc(url, timeout=timeout), context)


def _exit_with(indexer_pid: int) -> None:
    """A killed indexer (kill -9 included) cannot stop its workers: each leaves when its parent is gone."""
    while os.getppid() == indexer_pid:
        time.sleep(0.5)
    os._exit(0)


def _prepare_in_worker(first: int, end: int, chunk_logs: int | None) -> list[PreparedRange]:
    assert _worker is not None, "worker process not initialised"
    source, context = _worker
    return prepare_range(source, context, first, end, chunk_logs)


def _ready() -> bool:
    return _worker is not None
