"""A stage killed without leaving its group (SIGKILL, OOM, a lost host) and started again gets its
partitions back within 10 s: the broker's KIP-848 session timeout, which alone decides when a dead
member's partitions move, is 6 s in the stack `lc up` and compose start (devstack/kafka.py)."""

from __future__ import annotations

import ast
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kits.cli import LineReader, start_lc

from cli.settings import Settings
from devstack.kafka import KafkaCluster, free_node_addresses
from eventlog.admin import create_topics

ASSIGNED = re.compile(r"lc-evaluator assigned (\[.*\])")


@pytest.fixture
def private_kafka(stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A broker of this test's own, configured as `lc up` configures one (the shared one may predate it)."""
    addresses = free_node_addresses(1)
    # the stack's home for the runtime it already resolved; the node's files in this test's folder
    cluster = KafkaCluster(stack, 1, folder=tmp_path / "kafka", addresses=addresses)
    if not cluster.libs.is_dir():
        pytest.skip(f"no Kafka runtime at {cluster.libs}")
    settings = stack.replace(kafka_bootstrap=cluster.bootstrap, topic_prefix="")
    cluster.start()
    try:
        create_topics(settings)
        yield settings
    finally:
        cluster.stop()


def wait_assigned(output: LineReader, expected: int, timeout: float) -> None:
    """Until the stage's log says it owns `expected` partitions."""
    owned: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout
    while len(owned) < expected:
        line = output.next_line(deadline)
        if line is None:
            raise AssertionError(f"owned {len(owned)} of {expected} partitions after {timeout} s")
        match = ASSIGNED.search(line)
        if match:
            owned |= {tuple(tp) for tp in ast.literal_eval(match.group(1))}


@pytest.mark.slow
def test_a_killed_stage_started_again_owns_its_partitions_within_10_s(private_kafka: Settings) -> None:
    partitions = 2 * private_kafka.topic_partitions  # lc.evidence and lc.challenges.registered
    first = start_lc(private_kafka, "run", "evaluator")
    try:
        wait_assigned(LineReader(first), partitions, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)  # no LeaveGroup: the broker still counts it as a member
        first.wait(10)
    restarted_at = time.monotonic()
    second = start_lc(private_kafka, "run", "evaluator")
    try:
        wait_assigned(LineReader(second), partitions, timeout=30)
        took = time.monotonic() - restarted_at
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert took < 10, f"the restarted stage waited {took:.1f} s for its partitions"
