"""Prometheus metrics of every stage (prometheus-client), served on `LC_METRICS_PORT` (0 = off).

The shared machinery is instrumented once, so every stage built on it reports the same series: the
consumer loop (events in, dead letters, batch time, event age, consumer lag), the producer helper
(events out), the chain indexer (head and last indexed block), the chain writers (transactions
sent and failed, wallet balance) and the projector (job states, database reconnects). README.md
("Metrics") lists the names; docs/operations.md says what each alert means.

Values read from elsewhere on each scrape (a wallet's balance, job counts in PostgreSQL) are
`CallbackGauge`s: the stage registers a function, a scrape calls it, a failing read leaves the
series out of that scrape instead of failing it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

Samples = Iterable[tuple[Sequence[str], float]]

EVENTS_CONSUMED = Counter("lc_events_consumed", "events a stage consumed, per consumer group and topic",
                          ["group", "topic"])
EVENTS_PUBLISHED = Counter("lc_events_published", "events a producer handed to Kafka, per producer and topic",
                           ["producer", "topic"])
DEAD_LETTERS = Counter("lc_dead_letters", "input a stage sent to lc.dlq, per stage and source topic",
                       ["stage", "topic"])
BATCH_SECONDS = Histogram("lc_batch_processing_seconds", "time a stage's handler took for one batch",
                          ["group"], buckets=(0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
EVENT_AGE_SECONDS = Histogram(
    "lc_event_age_seconds", "age (now minus Kafka timestamp) of the newest event of each batch when processed",
    ["group"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600))
CONSUMER_LAG = Gauge("lc_consumer_lag", "messages between a stage's position and the end of a partition",
                     ["group", "topic", "partition"])
CHAIN_HEAD = Gauge("lc_chain_head_block", "newest block number the node reports", ["chain_id"])
CHAIN_INDEXED = Gauge("lc_chain_last_indexed_block", "newest block the chain indexer published", ["chain_id"])
TRANSACTIONS_SENT = Counter("lc_transactions_sent", "transactions a chain writer broadcast, per wallet and function",
                            ["wallet", "function"])
TRANSACTIONS_FAILED = Counter("lc_transactions_failed", "transactions (or their gas estimates) that reverted "
                              "or failed, per wallet, function and reason", ["wallet", "function", "reason"])
CLIENT_ERRORS = Counter("lc_kafka_client_errors", "errors librdkafka reported (unreachable broker, ...)", ["kind"])
DATABASE_RECONNECTS = Counter("lc_database_reconnects", "times a stage lost PostgreSQL and connected again",
                              ["stage"])


class CallbackGauge:
    """A gauge whose samples are read on each scrape from registered functions."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self._sources: dict[str, Callable[[], Samples]] = {}
        self._lock = threading.Lock()
        REGISTRY.register(self)

    def set_source(self, key: str, read: Callable[[], Samples]) -> None:
        """Register (or replace) one source of samples: `read()` -> [(label values, value), ...]."""
        with self._lock:
            self._sources[key] = read

    def remove_source(self, key: str) -> None:
        with self._lock:
            self._sources.pop(key, None)

    def describe(self) -> list[Metric]:
        return []  # nothing read at registration

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            sources = list(self._sources.items())
        for key, read in sources:
            try:
                for labels, value in read():
                    family.add_metric(list(labels), value)
            except Exception as exc:  # a scrape must not fail because one source is down
                log.debug("metrics source %s of %s failed: %s", key, self.name, exc)
        yield family


JOBS = CallbackGauge("lc_jobs", "AIVM jobs per state (aivm_jobs, read by the projector on each scrape)", ["state"])
WALLET_BALANCE = CallbackGauge("lc_wallet_balance_wei", "balance of a chain writer's wallet (read on each scrape)",
                               ["wallet"])


def count_transaction(wallet: str, function: str, sent: bool, failure: str | None) -> None:
    """The chain client's transaction observer: one sent when it was broadcast, one failed (with the reason:
    a revert's error name, or the exception) when it or its gas estimate failed."""
    if sent:
        TRANSACTIONS_SENT.labels(wallet, function).inc()
    if failure is not None:
        TRANSACTIONS_FAILED.labels(wallet, function, failure[:60]).inc()


def serve(port: int, host: str = "127.0.0.1") -> Any:
    """Serve /metrics on host:port in a daemon thread; returns the HTTP server (its port when 0 was asked)."""
    server, _thread = start_http_server(port, addr=host)
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server


class BatchTimer:
    """What the consumer loop records per batch: events in per topic, the handler's time, the newest age."""

    __slots__ = ("_age", "_consumed", "_group", "_seconds")

    def __init__(self, group: str) -> None:
        self._group = group
        self._consumed: dict[str, Any] = {}  # topic -> counter child, created on first use
        self._seconds = BATCH_SECONDS.labels(group)
        self._age = EVENT_AGE_SECONDS.labels(group)

    def count(self, topic: str, events: int) -> None:
        child = self._consumed.get(topic)
        if child is None:
            child = self._consumed[topic] = EVENTS_CONSUMED.labels(self._group, topic)
        child.inc(events)

    def handled(self, started: float, newest_timestamp_ms: int) -> None:
        self._seconds.observe(time.perf_counter() - started)
        if newest_timestamp_ms > 0:
            self._age.observe(max(time.time() - newest_timestamp_ms / 1000, 0.0))
