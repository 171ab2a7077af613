"""What `lc up --brokers N --registry` derives from the settings (pure: no services started), and which
running Kafka nodes a benchmark counts, by their pid files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cli.settings import Settings
from devstack.kafka import NodeAddress, local_node_pids, node_addresses
from devstack.registry import DEFAULT_URL
from devstack.stack import stack_settings
from eventlog.admin import create_topics
from eventlog.config import ConfigError


def test_cluster_nodes_take_every_second_port_or_the_listed_addresses() -> None:
    assert node_addresses("127.0.0.1:9092", 3) == [NodeAddress("127.0.0.1", p) for p in (9092, 9094, 9096)]
    assert [a.controller_port for a in node_addresses("127.0.0.1:9092", 3)] == [9093, 9095, 9097]
    listed = "127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092"
    assert [a.port for a in node_addresses(listed, 3)] == [19092, 29092, 39092]
    assert node_addresses(listed, 1) == [NodeAddress("127.0.0.1", 19092)]


def test_a_cluster_replicates_unless_the_environment_says_otherwise() -> None:
    one = stack_settings(Settings.from_env({}))
    assert (one.topic_replication_factor, one.topic_min_insync_replicas, one.kafka_bootstrap) == (1, 1, "127.0.0.1:9092")
    three = stack_settings(Settings.from_env({}), brokers=3)
    assert (three.topic_replication_factor, three.topic_min_insync_replicas) == (3, 2)
    assert three.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    chosen = stack_settings(Settings.from_env({"LC_TOPIC_MIN_INSYNC_REPLICAS": "3"}), brokers=3)
    assert (chosen.topic_replication_factor, chosen.topic_min_insync_replicas) == (3, 3)


def test_the_registry_url_defaults_to_the_local_registry_only_when_asked_for() -> None:
    assert stack_settings(Settings.from_env({})).schema_registry_url == ""
    assert stack_settings(Settings.from_env({}), registry=True).schema_registry_url == DEFAULT_URL
    mine = "http://127.0.0.1:18081/apis/ccompat/v7"
    assert stack_settings(Settings.from_env({"LC_SCHEMA_REGISTRY_URL": mine}), registry=True).schema_registry_url == mine


def test_more_replicas_in_sync_than_replicas_is_refused_before_any_topic_is_made() -> None:
    with pytest.raises(ConfigError, match="LC_TOPIC_MIN_INSYNC_REPLICAS=2"):
        create_topics(Settings.from_env({"LC_TOPIC_MIN_INSYNC_REPLICAS": "2"}))


def test_the_local_nodes_are_the_pid_files_of_running_processes(tmp_path: Path) -> None:
    settings = Settings.from_env({"LC_HOME": str(tmp_path)})
    assert local_node_pids(settings) == []
    ended = subprocess.Popen(["true"])
    ended.wait()
    for folder, pid in ((tmp_path / "kafka", os.getpid()), (tmp_path / "kafka-cluster" / "node-1", ended.pid),
                        (tmp_path / "kafka-cluster" / "node-2", os.getppid())):
        folder.mkdir(parents=True)
        (folder / "broker.pid").write_text(f"{pid}\n")
    assert local_node_pids(settings) == [os.getpid(), os.getppid()]  # the ended process is not counted
