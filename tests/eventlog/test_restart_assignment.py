"""A stage killed without leaving its group (SIGKILL, OOM, a lost host) and started again gets its
partitions back within 10 s: the broker's KIP-848 session timeout, which alone decides when a dead
member's partitions move, is 6 s in the stack `lc up` and compose start (devstack/kafka.py)."""

from __future__ import annotations

import ast
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kits.cli import start_lc

from cli.settings import Settings
from devstack.anvil import free_port
from devstack.kafka import KafkaBroker
from eventlog.admin import create_topics

ASSIGNED = re.compile(r"lc-evaluator assigned (\[.*\])")


@pytest.fixture
def private_kafka(stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A broker of this test's own, configured as `lc up` configures one (the shared one may predate it)."""
    port = free_port()
    settings = stack.replace(home=str(tmp_path / "home"), kafka_bootstrap=f"127.0.0.1:{port}", topic_prefix="")
    broker = KafkaBroker(settings)
    broker.libs = KafkaBroker(stack).libs  # the runtime already resolved for the shared stack
    if not broker.libs.is_dir():
        pytest.skip(f"no Kafka runtime at {broker.libs}")
    broker.start()
    try:
        create_topics(settings)
        yield settings
    finally:
        broker.stop()


class StageLog:
    """Reads a stage's stderr in a thread; `wait_assigned` returns when it owns every expected partition."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        assert process.stderr is not None
        threading.Thread(target=lambda: [self.lines.put(line) for line in process.stderr], daemon=True).start()

    def wait_assigned(self, expected: int, timeout: float) -> None:
        owned: set[tuple[str, int]] = set()
        deadline = time.monotonic() + timeout
        while len(owned) < expected:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"owned {len(owned)} of {expected} partitions after {timeout} s") from None
            match = ASSIGNED.search(line)
            if match:
                owned |= {tuple(tp) for tp in ast.literal_eval(match.group(1))}


@pytest.mark.slow
def test_a_killed_stage_started_again_owns_its_partitions_within_10_s(private_kafka: Settings) -> None:
    partitions = 2 * private_kafka.topic_partitions  # lc.evidence and lc.challenges.registered
    first = start_lc(private_kafka, "run", "evaluator")
    try:
        StageLog(first).wait_assigned(partitions, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)  # no LeaveGroup: the broker still counts it as a member
        first.wait(10)
    restarted_at = time.monotonic()
    second = start_lc(private_kafka, "run", "evaluator")
    try:
        StageLog(second).wait_assigned(partitions, timeout=30)
        took = time.monotonic() - restarted_at
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert took < 10, f"the restarted stage waited {took:.1f} s for its partitions"
