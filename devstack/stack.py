"""`lc up`, `lc down`, `lc status`: the whole local stack."""

from __future__ import annotations

import time
from typing import TypeVar

from devstack.anvil import rpc_ready, rpc_reply, start_anvil
from devstack.kafka import REPLICAS, KafkaCluster, bootstrap_of, node_addresses, stop_local_kafka
from devstack.postgres import PostgresServer
from devstack.process import read_pid, stop_pid
from devstack.registry import DEFAULT_URL, SchemaRegistryServer
from eventlog.config import CoreSettings

ANVIL_BLOCK_TIME_S = 1.0
AnySettings = TypeVar("AnySettings", bound=CoreSettings)


def anvil_up(settings: CoreSettings) -> str:
    if rpc_ready(settings.rpc_url):
        return f"anvil already up on {settings.rpc_url}"
    port = int(settings.rpc_url.rsplit(":", 1)[1].split("/")[0])
    home = settings.home_path
    process = start_anvil(port, home / "logs" / "anvil.log", block_time=ANVIL_BLOCK_TIME_S,
                          extra_args=("--state", str(home / "anvil" / "state.json")))
    (home / "anvil").mkdir(parents=True, exist_ok=True)
    (home / "anvil" / "anvil.pid").write_text(str(process.pid))
    keep_clock_monotonic(settings.rpc_url)
    return f"anvil up on {settings.rpc_url} (block time {ANVIL_BLOCK_TIME_S:g} s)"


def keep_clock_monotonic(rpc_url: str) -> None:
    """anvil restores its blocks from --state but not the time moved forward by evm_increaseTime: its
    next blocks would be stamped with the wall clock, earlier than the last restored block. A real
    chain's time never goes back (the pipeline's chain time is the newest block's), so continue from
    the last restored block instead."""
    latest = rpc_reply(rpc_url, "eth_getBlockByNumber", ["latest", False])["result"]
    last_timestamp = int(latest["timestamp"], 16)
    if last_timestamp >= time.time():
        rpc_reply(rpc_url, "evm_setNextBlockTimestamp", [last_timestamp + 1])
        rpc_reply(rpc_url, "evm_mine")


def stack_settings(settings: AnySettings, *, brokers: int = 1, registry: bool = False) -> AnySettings:
    """The settings the stack runs with: on a cluster every node in the bootstrap list and topics
    replicated (3 replicas, 2 in sync) unless the environment says otherwise; with `registry`, its
    URL when none is set."""
    changes: dict[str, object] = {}
    from_env = settings.sources
    if brokers > 1:
        changes["kafka_bootstrap"] = bootstrap_of(node_addresses(settings.kafka_bootstrap, brokers))
        if "topic_replication_factor" not in from_env:
            changes["topic_replication_factor"] = min(brokers, REPLICAS)
        if "topic_min_insync_replicas" not in from_env:
            changes["topic_min_insync_replicas"] = max(1, min(brokers, REPLICAS) - 1)
    if registry and not settings.schema_registry_url:
        changes["schema_registry_url"] = DEFAULT_URL
    return settings.replace(**changes) if changes else settings


def up(settings: CoreSettings, *, brokers: int = 1, registry: bool = False) -> list[str]:
    lines = [KafkaCluster(settings, brokers).start()]
    if registry:
        lines.append(SchemaRegistryServer(settings).start())
    return [*lines, PostgresServer(settings).start(), anvil_up(settings)]


def down(settings: CoreSettings) -> list[str]:
    home = settings.home_path
    return [
        f"anvil {'stopped' if stop_pid(home / 'anvil' / 'anvil.pid') else 'was not running'}",
        f"PostgreSQL {'stopped' if PostgresServer(settings).stop() else 'was not running'}",
        f"schema registry {'stopped' if SchemaRegistryServer(settings).stop() else 'was not running'}",
        f"Kafka {'stopped' if stop_local_kafka(settings) else 'was not running'}",
    ]


def status(settings: CoreSettings) -> list[tuple[str, bool, str]]:
    home = settings.home_path
    kafka = KafkaCluster(settings, len(settings.kafka_bootstrap.split(",")))
    brokers = kafka.brokers_up()
    rows = [
        ("kafka", brokers > 0, f"{settings.kafka_bootstrap} ({brokers} broker{'' if brokers == 1 else 's'})"),
        ("postgres", PostgresServer(settings).is_ready(), settings.pg_dsn),
        ("anvil", rpc_ready(settings.rpc_url), settings.rpc_url),
        ("anvil pid", read_pid(home / "anvil" / "anvil.pid") is not None, str(home / "anvil" / "anvil.pid")),
    ]
    if settings.schema_registry_url:
        rows.append(("registry", SchemaRegistryServer(settings).is_ready(), settings.schema_registry_url))
    return rows
