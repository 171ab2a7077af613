"""Evaluator restart cost against the length of its history (issue 15 §1).

For each history length H (default 100,000 and 1,000,000 evidence events over the same state: 5,000
challenges x 20 subjects, each with a registered rule), the events are published to a fresh topic
prefix and evaluated once by `lc run evaluator` (which writes its changelog). Then, R times in a
row: one new evidence event is published, a fresh `lc run evaluator` is started, and the bench times
from the process start to that event's verdict being visible (read_committed), and records the
process's peak RSS (VmHWM) and CPU; then the process is stopped (SIGTERM). The same is measured once
per H with `--restore-from-zero` (the state replayed from offset 0, applied while read: its time grows
with H, its memory must not).

Between building a history and the restarts the bench waits --settle seconds (default 45) for the
broker's log cleaner: the changelog was just written H times, and the cleaner runs every 15 s
(log.cleaner.backoff.ms) and needs a pass to compact it. A running evaluator's changelog is in that
settled state most of the time; `--settle 0` measures a restart right after the burst of writes
(the worst case: it reads what the cleaner has not compacted yet).

    .venv/bin/python bench/restore.py [--histories 100000 1000000] [--runs 3] [--from-zero-runs 1] [--settle 45]

Targets: the 1M restart within 1.5x the 100k one and under 5 s; peak RSS within 1.5x, for both paths.
Machine load (1-minute average) is printed with every run; the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place (as in the other bench scripts)
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from confluent_kafka import Consumer, TopicPartition

from cli.settings import Settings
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.producer import EventProducer
from eventlog.topics import CHALLENGES_REGISTERED, EVIDENCE, VERDICTS

CHALLENGES, SUBJECTS = 5000, 20
T0_MS = 1_740_787_200_000
RULE = json.dumps({"rules": {"type": "fitness", "metric": "steps", "threshold": 5000, "period": "total"}})
TIMELINE = json.dumps({"startsAt": 1_740_787_200, "endsAt": 1_743_379_200, "proofDeadline": 1_744_243_200})
RESTORED = re.compile(r"restored (\d+) partitions: (\d+) state entries loaded, (\d+) input events replayed, "
                      r"(\d+) rebuilt")


@dataclass(frozen=True)
class Restart:
    seconds: float  # process start -> the new event's verdict visible
    peak_rss_mib: float
    cpu_seconds: float
    load: float
    restored: str  # the stage's own account: entries loaded, events replayed


def evidence(i: int) -> tuple[int, str, dict[str, object]]:
    challenge, subject = 1 + i // SUBJECTS % CHALLENGES, f"0x{i % SUBJECTS:040x}"
    records = json.dumps([{"dateTime": f"2025-03-{1 + i % 28:02d}", "value": 1000 + i % 9000}], separators=(",", ":"))
    return challenge, f"bench:{i}", {"challenge_id": challenge, "subject": subject, "provider": "fitbit",
                                     "records_json": records, "evidence_hash": f"0x{i:064x}", "raw_ref": None}


def publish_history(settings: Settings, events: int) -> None:
    with EventProducer(settings, "bench", extra_config={"linger.ms": 20}) as producer:
        for challenge in range(1, CHALLENGES + 1):
            producer.publish(CHALLENGES_REGISTERED, str(challenge), "ChallengeRegistered", {
                "challenge_id": challenge, "subject": "0x" + "c0" * 20, "model_id": "fitness.steps@1",
                "params_json": RULE, "timeline_json": TIMELINE, "mode": "threshold", "top_n": 1, "source": "cli",
            }, event_id=f"reg:{challenge}", occurred_at=T0_MS)
        for i in range(events):
            challenge, event_id, payload = evidence(i)
            producer.publish(EVIDENCE, str(challenge), "EvidenceSubmitted", payload, event_id=event_id,
                             occurred_at=T0_MS + 1)


def evaluator(settings: Settings, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, env_name("kafka_bootstrap"): settings.kafka_bootstrap,
           env_name("topic_prefix"): settings.topic_prefix, env_name("log_level"): "INFO"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "cli.main", "run", "evaluator", *extra], cwd=PROJECT_ROOT,
                                env=env, stderr=out)


def stop(process: subprocess.Popen[bytes]) -> float:
    """SIGTERM, reap; the CPU seconds (user + system, all threads) it used."""
    process.send_signal(signal.SIGTERM)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Outputs:
    """A read_committed reader of lc.verdicts from its current end: sees the next verdict when committed."""

    def __init__(self, settings: Settings) -> None:
        physical = settings.topic(VERDICTS)
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                                  "enable.auto.commit": False, "isolation.level": "read_committed"})
        partitions = self.consumer.list_topics(physical, timeout=10).topics[physical].partitions
        ends = [self.consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)[1] for p in partitions]
        self.total = sum(ends)
        self.consumer.assign([TopicPartition(physical, p, end) for p, end in zip(partitions, ends, strict=True)])

    def wait_first(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(m.error() is None for m in self.consumer.consume(100, 0.005)):
                return True
        return False

    def close(self) -> None:
        self.consumer.close()


def build(base: Settings, events: int, log: Path) -> Settings:
    settings = base.replace(topic_prefix=f"benchr{uuid.uuid4().hex[:6]}.")
    create_topics(settings)
    started = time.perf_counter()
    publish_history(settings, events)
    published = time.perf_counter()
    process = evaluator(settings, log)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "bench-watch"})
    physical = settings.topic(VERDICTS)
    partitions = consumer.list_topics(physical, timeout=10).topics[physical].partitions
    try:
        while sum(consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)[1]
                  for p in partitions) < events:
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        consumer.close()
        stop(process)
    print(f"  history of {events:,} evidence events: published in {published - started:.1f} s, evaluated in "
          f"{time.perf_counter() - published:.1f} s", flush=True)
    return settings


def restart(settings: Settings, log: Path, n: int, *extra: str) -> Restart:
    challenge, event_id, payload = evidence(n)
    outputs = Outputs(settings)
    with EventProducer(settings, "bench") as producer:
        producer.publish(EVIDENCE, str(challenge), "EvidenceSubmitted", payload, event_id=f"new:{event_id}",
                         occurred_at=T0_MS + 2)
    load = os.getloadavg()[0]
    lines_before = len(log.read_text().splitlines()) if log.exists() else 0
    started = time.perf_counter()
    process = evaluator(settings, log, *extra)
    try:
        if not outputs.wait_first(600):
            raise RuntimeError("no verdict within 600 s")
        seconds = time.perf_counter() - started
        rss = peak_rss_mib(process.pid)
    finally:
        outputs.close()
        cpu = stop(process)
    found = [m for line in log.read_text().splitlines()[lines_before:] if (m := RESTORED.search(line))]
    restored = (f"{sum(int(m.group(2)) for m in found):,} entries loaded, {sum(int(m.group(3)) for m in found):,} "
                f"events replayed" if found else "?")
    return Restart(seconds, rss, cpu, load, restored)


def show(label: str, events: int, run: Restart) -> None:
    print(f"  {label}: {run.seconds:.2f} s to the first new verdict, peak RSS {run.peak_rss_mib:.0f} MiB, "
          f"CPU {run.cpu_seconds:.2f} s ({run.cpu_seconds / events * 1e6:.1f} µs per history event), "
          f"load {run.load:.2f}; {run.restored}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--histories", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3, help="restarts from the changelog per history")
    parser.add_argument("--from-zero-runs", type=int, default=1, help="restarts with --restore-from-zero")
    parser.add_argument("--settle", type=float, default=45.0,
                        help="seconds to wait for the log cleaner after each history is built")
    parser.add_argument("--log", type=Path, default=Path("/tmp/bench-restore-evaluator.log"))
    args = parser.parse_args()
    base = Settings.from_env()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at the start", flush=True)
    results: dict[int, tuple[list[Restart], list[Restart]]] = {}
    for events in args.histories:
        print(f"history {events:,} ({CHALLENGES:,} challenges x {SUBJECTS} subjects of state):", flush=True)
        settings = build(base, events, args.log)
        if args.settle:
            print(f"  waiting {args.settle:.0f} s for the log cleaner to compact the changelog", flush=True)
            time.sleep(args.settle)
        try:
            changelog = [restart(settings, args.log, events + k) for k in range(args.runs)]
            for k, run in enumerate(changelog, start=1):
                show(f"restart {k} from the changelog", events, run)
            from_zero = [restart(settings, args.log, events + args.runs + k, "--restore-from-zero")
                         for k in range(args.from_zero_runs)]
            for k, run in enumerate(from_zero, start=1):
                show(f"restart {k} from offset 0  ", events, run)
            results[events] = (changelog, from_zero)
        finally:
            delete_prefixed_topics(settings)
    if len(results) >= 2:
        small, large = min(results), max(results)
        for k, (a, b) in enumerate(zip(results[small][0], results[large][0], strict=False), start=1):
            print(f"run {k}: {large:,} / {small:,} events: time {b.seconds / a.seconds:.2f}x ({b.seconds:.2f} s), "
                  f"peak RSS {b.peak_rss_mib / a.peak_rss_mib:.2f}x (loads {a.load:.2f}, {b.load:.2f})")
        for a, b in zip(results[small][1], results[large][1], strict=False):
            print(f"from offset 0: time {b.seconds / a.seconds:.2f}x, peak RSS {b.peak_rss_mib / a.peak_rss_mib:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
