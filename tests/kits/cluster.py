"""A three-node Kafka cluster and a schema registry of a test session's own, from the devstack code.

Both start on free ports in a temporary folder, reuse the runtimes the local stack resolved into its
cache (`<LC_HOME>/cache`), and never touch the shared stack. Tests that need them are skipped, with
the reason, when Java or Maven is missing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from cli.settings import Settings
from devstack.anvil import free_port
from devstack.kafka import KafkaCluster, free_node_addresses
from devstack.registry import CCOMPAT_PATH, SchemaRegistryServer

NODES = 3


def require_java_and_maven(what: str) -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{what} needs {' and '.join(missing)} on PATH (Java 17 runs it, Maven fetches it)")


@contextmanager
def running_cluster(settings: Settings, folder: Path) -> Iterator[KafkaCluster]:
    require_java_and_maven("a three-node Kafka cluster")
    cluster = KafkaCluster(settings, NODES, folder=folder, addresses=free_node_addresses(NODES))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@contextmanager
def running_registry(settings: Settings, folder: Path) -> Iterator[SchemaRegistryServer]:
    require_java_and_maven("the schema registry (Apicurio)")
    server = SchemaRegistryServer(settings, url=f"http://127.0.0.1:{free_port()}{CCOMPAT_PATH}", folder=folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def partition_replicas(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], tuple[int, list[int], list[int]]]:
    """(topic, partition) -> (leader, replicas, in-sync replicas) of every partition of `topics`."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return {(name, p.id): (p.leader, list(p.replicas), list(p.isrs))
            for name in topics for p in metadata.topics[name].partitions.values()}


def wait_fully_replicated(bootstrap: str, topics: list[str], replicas: int, timeout: float = 180) -> None:
    """Until every partition of `topics` has all `replicas` in sync again."""
    deadline = time.monotonic() + timeout
    lagging: list[tuple[str, int]] = []
    while time.monotonic() < deadline:
        state = partition_replicas(bootstrap, topics)
        lagging = [tp for tp, (_leader, _replicas, isr) in state.items() if len(isr) < replicas]
        if not lagging:
            return
        time.sleep(0.5)
    raise AssertionError(f"{len(lagging)} partitions still short of {replicas} in-sync replicas: {lagging[:5]}")
