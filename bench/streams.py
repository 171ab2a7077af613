"""Evaluator throughput and latency against a bare consume-and-produce loop, in the same run.

1. Throughput: `lc run evaluator` processes (one, then two in the group) evaluate evidence events
   (fitness records, 20 subjects per challenge) of a fresh topic prefix into lc.verdicts; a bare loop
   (confluent-kafka consume -> produce the same bytes -> flush -> commit, same batch size) copies the
   same events. Each is first warmed up (started, joined, WARM_UP events processed), then N events are
   published at once: the rate runs from the first publish to the commit of the last input, and the
   CPU per event is what the loop's processes used in that time (and, printed beside it, what the local
   stack's Kafka broker used: on a small machine the broker shares the CPUs with the loop).
2. Latency: with the evaluator(s) running and caught up, evidence is published at a steady rate and
   lc.verdicts is read live with read_committed; a verdict's latency is when it arrived there minus
   its evidence's publish time (the verdict envelope's occurred_at).

    .venv/bin/python bench/streams.py [--events 100000] [--rate 1000] [--seconds 30]   (stack up: ./lc up)

Targets: evaluator >= 0.5 x the bare loop; p99 < 250 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place, so the packages also win over the test folders named like them
# (tests/indexers, ...) once tests/ is on the path for the kits, in spawned worker processes too
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from cli.settings import Settings
from devstack.kafka import local_node_pids
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import EVIDENCE, VERDICTS

BATCH = 500
WARM_UP = 5000  # events a loop processes before it is timed
WARM_UP_IDS = 10_000_000  # evidence ids from here on only warm the stage up


def evidence_payloads(n: int, offset: int = 0) -> Iterator[tuple[int, str, dict[str, object]]]:
    for i in range(offset, offset + n):
        challenge, subject = 1 + i // 20 % 5000, f"0x{i % 20:040x}"
        records = [{"dateTime": f"2025-03-{1 + i % 28:02d}", "value": 1000 + i % 9000}]
        yield challenge, f"bench:{i}", {
            "challenge_id": challenge, "subject": subject, "provider": "fitbit",
            "records_json": json.dumps(records, separators=(",", ":")), "evidence_hash": f"0x{i:064x}",
            "raw_ref": None,
        }


def fresh(base: Settings, tag: str) -> Settings:
    settings = base.replace(topic_prefix=f"bench{uuid.uuid4().hex[:6]}{tag}.")
    create_topics(settings)
    return settings


def encoded(settings: Settings, n: int, offset: int = 0) -> list[tuple[bytes, bytes]]:
    """(key, value) of n evidence events, encoded as the stages' producer encodes them."""
    serde, physical = EventSerde(settings.schema_registry_url), settings.topic(EVIDENCE)
    return [(str(challenge).encode(),
             serde.encode(physical, "EvidenceSubmitted",
                          {"event_id": event_id, "occurred_at": 1_740_787_200_000, "producer": "bench"}, payload))
            for challenge, event_id, payload in evidence_payloads(n, offset)]


def publish_encoded(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 20, "compression.type": "lz4"})
    topic = settings.topic(EVIDENCE)
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush()


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system, every thread) the running processes have used so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Throughput(NamedTuple):
    rate: float  # events/s from the first publish to the commit of the last input
    cpu: float  # CPU µs per event of the loop's processes over that time
    broker_cpu: float | None  # and of the local stack's Kafka node(s); None when the broker is not local


def timed_throughput(settings: Settings, group: str, pids: list[int], n: int,
                     ready: Callable[[], bool] = lambda: True) -> Throughput:
    """Warm the loop up with WARM_UP events (process start, group join, first use of every code path), then
    publish n events at once and measure (`Throughput`)."""
    progress = Progress(settings, group)
    try:
        publish_encoded(settings, encoded(settings, WARM_UP, offset=WARM_UP_IDS))
        while progress.processed() < WARM_UP or not ready():
            time.sleep(0.1)
        timed = encoded(settings, n)
        brokers = local_node_pids(settings)
        cpu, broker_cpu, started = process_cpu(pids), process_cpu(brokers), time.perf_counter()
        publish_encoded(settings, timed)
        while progress.processed() < WARM_UP + n:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        return Throughput(n / elapsed, (process_cpu(pids) - cpu) / n * 1e6,
                          (process_cpu(brokers) - broker_cpu) / n * 1e6 if brokers else None)
    finally:
        progress.close()


class Progress:
    """How far a consumer group has got: the input offsets it committed.

    Counted on the input side: a transactional stage's output partitions also hold commit markers, so
    their end offsets run ahead of the records in them; committed input offsets count events exactly
    (the bare loop commits after its flush, the evaluator with its outputs)."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
        self.inputs = partitions_of(self.consumer, settings.topic(EVIDENCE))

    def processed(self) -> int:
        return sum(max(tp.offset, 0) for tp in self.consumer.committed(self.inputs, timeout=10))

    def close(self) -> None:
        self.consumer.close()


def partitions_of(consumer: Consumer, physical: str) -> list[TopicPartition]:
    return [TopicPartition(physical, p) for p in consumer.list_topics(physical, timeout=10).topics[physical].partitions]


def stage(settings: Settings, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, env_name("kafka_bootstrap"): settings.kafka_bootstrap,
           env_name("topic_prefix"): settings.topic_prefix, env_name("log_level"): "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run", name], cwd=PROJECT_ROOT, env=env)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait()


def evaluator_rate(base: Settings, n: int, instances: int) -> Throughput:
    """The throughput of `instances` evaluators."""
    settings = fresh(base, f"e{instances}")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    processes = [stage(settings, "evaluator") for _ in range(instances)]
    try:
        return timed_throughput(settings, evaluator_group(settings), [p.pid for p in processes], n,
                                ready=lambda: serving(admin, settings) == instances)
    finally:
        stop(processes)
        delete_prefixed_topics(settings)


def bare_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}bare"


def evaluator_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}lc-evaluator"


def bare_loop(settings: Settings, n: int) -> None:
    """Consume lc.evidence, produce the same bytes to lc.verdicts, flush and commit per batch."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": bare_group(settings),
                         "group.protocol": "consumer", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "compression.type": "lz4"})
    out = settings.topic(VERDICTS)
    consumer.subscribe([settings.topic(EVIDENCE)])
    copied = 0
    try:
        while copied < n:
            messages = consumer.consume(BATCH, 0.02)
            data = [m for m in messages if m.error() is None]
            for m in data:
                producer.produce(out, m.value(), m.key())
                producer.poll(0)
            if data:
                producer.flush()
                consumer.commit(asynchronous=False)
                copied += len(data)
    finally:
        consumer.close()


def bare_rate(base: Settings, n: int) -> Throughput:
    settings = fresh(base, "bare")
    process = subprocess.Popen([sys.executable, __file__, "--bare-loop", settings.topic_prefix, str(WARM_UP + n)],
                               cwd=PROJECT_ROOT, env=os.environ.copy())
    try:
        return timed_throughput(settings, bare_group(settings), [process.pid], n)
    finally:
        process.wait()
        delete_prefixed_topics(settings)


def serving(admin: AdminClient, settings: Settings) -> int:
    """Members of the evaluator group that hold partitions (so no rebalance is pending)."""
    group = evaluator_group(settings)
    description = admin.describe_consumer_groups([group])[group].result(30)
    return sum(1 for m in description.members if m.assignment and m.assignment.topic_partitions)


def latency(base: Settings, instances: int, rate: int, seconds: int) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, max ms, verdicts) at a steady `rate` evidence events/s."""
    settings = fresh(base, f"l{instances}")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    reader = VerdictReader(settings)
    processes = [stage(settings, "evaluator") for _ in range(instances)]
    try:
        with EventProducer(settings, "bench", extra_config={"linger.ms": 0}) as producer:
            # every partition gets warm-up events, twice: the second round runs after the last rebalance
            # (a partition that moves is restored from its inputs first), so no instance is cold while timed
            warm: list[tuple[int, str, dict[str, object]]] = []
            for round_ in range(2):
                batch = list(evidence_payloads(3000, offset=WARM_UP_IDS + round_ * 3000))
                for challenge, event_id, payload in batch:
                    producer.publish(EVIDENCE, str(challenge), "EvidenceSubmitted", payload, event_id=event_id)
                producer.flush()
                warm += batch
                while reader.seen < len(warm) or serving(admin, settings) < instances:
                    time.sleep(0.1)
            total = rate * seconds
            started = time.perf_counter()
            for k, (challenge, event_id, payload) in enumerate(evidence_payloads(total)):
                due = started + k / rate
                while (now := time.perf_counter()) < due:
                    time.sleep(min(due - now, 0.001))
                producer.publish(EVIDENCE, str(challenge), "EvidenceSubmitted", payload, event_id=event_id,
                                 occurred_at=int(time.time() * 1000))
        while reader.seen < len(warm) + total:
            time.sleep(0.1)
    finally:
        reader.close()
        stop(processes)
        delete_prefixed_topics(settings)
    lags = sorted(reader.lags)
    return lags[len(lags) // 2], lags[int(len(lags) * 0.99)], lags[-1], len(lags)


class VerdictReader:
    """Reads lc.verdicts live, as a downstream reader does (read_committed: a verdict counts once its
    transaction is committed), and keeps, for each verdict of a timed event, the time it arrived minus
    its evidence's publish time (its envelope's occurred_at), in ms."""

    def __init__(self, settings: Settings) -> None:
        self.serde = EventSerde(settings.schema_registry_url)
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                                  "group.id": f"bench-read-{uuid.uuid4().hex}", "enable.auto.commit": False,
                                  "isolation.level": "read_committed", "fetch.wait.max.ms": 5})
        physical = settings.topic(VERDICTS)
        self.consumer.assign([TopicPartition(tp.topic, tp.partition, 0) for tp in partitions_of(self.consumer, physical)])
        self.seen = 0
        self.lags: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            messages = self.consumer.consume(1000, 0.05)
            arrived = time.time() * 1000
            for m in messages:
                if m.error() is not None:
                    continue
                event = self.serde.decode(m.value())
                if int(event.payload["trigger_event_id"].split(":")[1]) < WARM_UP_IDS:  # not a warm-up event
                    self.lags.append(arrived - event.occurred_at)
                self.seen += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.consumer.close()


def broker_note(measured: Throughput) -> str:
    if measured.broker_cpu is None:
        return " (the Kafka broker is not a local dev-stack process: its CPU not counted)"
    return f"; the Kafka broker {measured.broker_cpu:.0f} CPU µs/event"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--bare-loop", nargs=2, metavar=("PREFIX", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    base = Settings.from_env()
    if args.bare_loop:
        bare_loop(base.replace(topic_prefix=args.bare_loop[0]), int(args.bare_loop[1]))
        return 0
    print(f"bare consume-and-produce loop over {args.events} events ...", flush=True)
    bare = bare_rate(base, args.events)
    print(f"  bare loop: {bare.rate:,.0f} events/s, {bare.cpu:.0f} CPU µs/event{broker_note(bare)}", flush=True)
    for instances in args.instances:
        evaluator = evaluator_rate(base, args.events, instances)
        print(f"evaluator x{instances}: {evaluator.rate:,.0f} events/s = {evaluator.rate / bare.rate:.2f} x bare loop; "
              f"{evaluator.cpu:.0f} CPU µs/event (bare/evaluator CPU = {bare.cpu / evaluator.cpu:.2f})"
              f"{broker_note(evaluator)}", flush=True)
    print(f"machine load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    for instances in args.instances:
        p50, p99, worst, count = latency(base, instances, args.rate, args.seconds)
        print(f"latency x{instances} at {args.rate}/s for {args.seconds}s ({count} verdicts): "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
