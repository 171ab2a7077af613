"""A three-node Kafka cluster and a schema registry of this session's own (tests/kits/cluster.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kits.chain import wait_for_leaders
from kits.cluster import running_cluster, running_registry

from cli.settings import Settings
from devstack.kafka import KafkaCluster
from devstack.registry import SchemaRegistryServer
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.topics import CATALOGUE


@pytest.fixture(scope="session")
def cluster(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    with running_cluster(stack, tmp_path_factory.mktemp("kafka-cluster")) as started:
        yield started


@pytest.fixture
def cluster_settings(settings: Settings, cluster: KafkaCluster) -> Iterator[Settings]:
    """This test's settings (own topic prefix and database) on the cluster: 3 replicas, 2 in sync."""
    on_cluster = settings.replace(kafka_bootstrap=cluster.bootstrap, topic_replication_factor=3,
                                  topic_min_insync_replicas=2)
    create_topics(on_cluster)
    wait_for_leaders(on_cluster, tuple(CATALOGUE))
    yield on_cluster
    delete_prefixed_topics(on_cluster)


@pytest.fixture(scope="session")
def registry(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchemaRegistryServer]:
    with running_registry(stack, tmp_path_factory.mktemp("registry")) as started:
        yield started
