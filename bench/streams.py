"""Evaluator throughput and latency against a bare consume-and-produce loop, in the same run.

1. Throughput: N evidence events (fitness records, 20 subjects per challenge) are published to a
   fresh topic prefix, then evaluated by `lc run evaluator` processes (one, then two in the group)
   into lc.verdicts; and a bare loop (confluent-kafka consume → produce the same bytes → flush →
   commit, same batch size) copies the same events. Rates are timed from the first output to the
   last, so process start-up and the group join are left out.
2. Latency: with the evaluator(s) running and caught up, evidence is published at a steady rate;
   lc.verdicts of that prefix uses LogAppendTime, so a verdict's Kafka timestamp is when it was
   published, and its envelope's occurred_at is its evidence's publish time.

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
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place, so the packages also win over the test folders named like them
# (tests/indexers, ...) once tests/ is on the path for the kits, in spawned worker processes too
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from cli.settings import Settings
from eventlog.admin import create_topics
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import EVIDENCE, VERDICTS

BATCH = 500
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


def drop_topics(settings: Settings) -> None:
    """Delete a run's topics: the shared broker has a file-descriptor budget per partition."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    for future in (admin.delete_topics(mine, operation_timeout=30).values() if mine else []):
        future.result()


def publish_all(settings: Settings, n: int) -> None:
    with EventProducer(settings, "bench", extra_config={"linger.ms": 20}) as producer:
        for challenge, event_id, payload in evidence_payloads(n):
            producer.publish(EVIDENCE, str(challenge), "EvidenceSubmitted", payload, event_id=event_id,
                             occurred_at=1_740_787_200_000)


class Watch:
    """End offsets of one topic, read with one long-lived consumer (cheap to poll)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.physical = settings.topic(topic)
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "bench-watch"})
        self.partitions = list(self.consumer.list_topics(self.physical, timeout=10).topics[self.physical].partitions)

    def total(self) -> int:
        return sum(self.consumer.get_watermark_offsets(TopicPartition(self.physical, p), timeout=10)[1]
                   for p in self.partitions)

    def close(self) -> None:
        self.consumer.close()


def end_offsets(settings: Settings, topic: str) -> int:
    watch = Watch(settings, topic)
    try:
        return watch.total()
    finally:
        watch.close()


def timed_until(settings: Settings, topic: str, total: int) -> float:
    """Outputs/s from the first observed output to the last."""
    watch = Watch(settings, topic)
    try:
        while (first := watch.total()) == 0:
            time.sleep(0.05)
        started = time.perf_counter()
        while (done := watch.total()) < total:
            time.sleep(0.1)
        return (done - first) / (time.perf_counter() - started)
    finally:
        watch.close()


def stage(settings: Settings, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, env_name("kafka_bootstrap"): settings.kafka_bootstrap,
           env_name("topic_prefix"): settings.topic_prefix, env_name("log_level"): "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run", name], cwd=PROJECT_ROOT, env=env)


def stop(processes: list[subprocess.Popen[bytes]]) -> float:
    """SIGTERM, reap, and return the CPU seconds (user + system, all threads) the processes used."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    return sum(reap(process) for process in processes)


def reap(process: subprocess.Popen[bytes]) -> float:
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def evaluator_rate(base: Settings, n: int, instances: int) -> tuple[float, float]:
    """(events/s, CPU µs per event including process start-up)."""
    settings = fresh(base, f"e{instances}")
    publish_all(settings, n)
    processes = [stage(settings, "evaluator") for _ in range(instances)]
    try:
        rate = timed_until(settings, VERDICTS, n)
    finally:
        cpu = stop(processes)
        drop_topics(settings)
    return rate, cpu / n * 1e6


def bare_loop(settings: Settings, n: int) -> None:
    """Consume lc.evidence, produce the same bytes to lc.verdicts, flush and commit per batch."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{settings.topic_prefix}bare",
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


def bare_rate(base: Settings, n: int) -> tuple[float, float]:
    settings = fresh(base, "bare")
    publish_all(settings, n)
    process = subprocess.Popen([sys.executable, __file__, "--bare-loop", settings.topic_prefix, str(n)],
                               cwd=PROJECT_ROOT, env=os.environ.copy())
    try:
        rate = timed_until(settings, VERDICTS, n)
    finally:
        cpu = reap(process)
        drop_topics(settings)
    return rate, cpu / n * 1e6


def serving(admin: AdminClient, settings: Settings) -> int:
    """Members of the evaluator group that hold partitions (so no rebalance is pending)."""
    group = f"{settings.topic_prefix}lc-evaluator"
    description = admin.describe_consumer_groups([group])[group].result(30)
    return sum(1 for m in description.members if m.assignment and m.assignment.topic_partitions)


def latency(base: Settings, instances: int, rate: int, seconds: int) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, max ms, verdicts) at a steady `rate` evidence events/s."""
    settings = fresh(base, f"l{instances}")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    resource = ConfigResource("topic", settings.topic(VERDICTS), incremental_configs=[
        ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result()
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
                while end_offsets(settings, VERDICTS) < len(warm) or serving(admin, settings) < instances:
                    time.sleep(0.1)
            total = rate * seconds
            started = time.perf_counter()
            for k, (challenge, event_id, payload) in enumerate(evidence_payloads(total)):
                due = started + k / rate
                while (now := time.perf_counter()) < due:
                    time.sleep(min(due - now, 0.001))
                producer.publish(EVIDENCE, str(challenge), "EvidenceSubmitted", payload, event_id=event_id,
                                 occurred_at=int(time.time() * 1000))
        while end_offsets(settings, VERDICTS) < len(warm) + total:
            time.sleep(0.1)
        lags = read_latencies(settings)
    finally:
        stop(processes)
        drop_topics(settings)
    lags.sort()
    return lags[len(lags) // 2], lags[int(len(lags) * 0.99)], lags[-1], len(lags)


def read_latencies(settings: Settings) -> list[float]:
    """Verdict publish time (LogAppendTime) minus its evidence's publish time (occurred_at), in ms."""
    serde = EventSerde(settings.schema_registry_url)
    physical = settings.topic(VERDICTS)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench-read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    lags: list[float] = []
    try:
        partitions = consumer.list_topics(physical, timeout=10).topics[physical].partitions
        total = sum(consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)[1] for p in partitions)
        consumer.assign([TopicPartition(physical, p, 0) for p in partitions])
        seen = 0
        while seen < total:
            for m in consumer.consume(1000, 1.0):
                if m.error() is not None:
                    continue
                seen += 1
                event = serde.decode(m.value())
                if int(event.payload["trigger_event_id"].split(":")[1]) < WARM_UP_IDS:  # not a warm-up event
                    lags.append(m.timestamp()[1] - event.occurred_at)
        return lags
    finally:
        consumer.close()


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
    bare, bare_cpu = bare_rate(base, args.events)
    print(f"  bare loop: {bare:,.0f} events/s, {bare_cpu:.0f} CPU µs/event", flush=True)
    for instances in args.instances:
        rate, cpu = evaluator_rate(base, args.events, instances)
        print(f"evaluator x{instances}: {rate:,.0f} events/s = {rate / bare:.2f} x bare loop; "
              f"{cpu:.0f} CPU µs/event (bare/evaluator CPU = {bare_cpu / cpu:.2f})", flush=True)
    print(f"machine load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    for instances in args.instances:
        p50, p99, worst, count = latency(base, instances, args.rate, args.seconds)
        print(f"latency x{instances} at {args.rate}/s for {args.seconds}s ({count} verdicts): "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
