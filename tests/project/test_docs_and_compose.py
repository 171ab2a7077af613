"""The README documents every setting; compose.yaml agrees with the code."""

from __future__ import annotations

import re

import yaml

from cli.settings import documented_settings
from cli.stages import STAGES
from eventlog.config import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
COMPOSE = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())
CLUSTER = yaml.safe_load((PROJECT_ROOT / "compose.cluster.yaml").read_text())


def test_readme_documents_every_setting_with_its_default() -> None:
    for section, name, default, _doc in documented_settings():
        assert re.search(rf"^\| {section} \| `{name}` \| `{re.escape(default)}` \|", README, re.MULTILINE), name


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["./lc demo", "./lc test"]


def test_ci_runs_the_readme_test_command() -> None:
    assert "./lc test" in (PROJECT_ROOT / ".ci" / "run").read_text()


def test_compose_runs_every_stage_and_only_known_settings() -> None:
    services = COMPOSE["services"]
    known = {name for _section, name, _default, _doc in documented_settings()}
    for required in ("kafka", "schema-registry", "postgres", "anvil", "kafka-ui", "setup"):
        assert required in services
    for stage in STAGES:
        assert services[stage]["command"] == ["lc", "run", stage], stage
        assert "container_name" not in services[stage], f"{stage} must stay scalable with --scale"
    for name, service in services.items():
        for variable in service.get("environment", {}):
            if variable.startswith("LC_"):
                assert variable in known, f"{name}: {variable} is not a setting"
    ui = services["kafka-ui"]["environment"]
    assert ui["KAFKA_CLUSTERS_0_SCHEMAREGISTRY"] == services["setup"]["environment"]["LC_SCHEMA_REGISTRY_URL"]
    assert ui["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == services["setup"]["environment"]["LC_KAFKA_BOOTSTRAP"]


def test_compose_publishes_the_default_ports_of_the_settings() -> None:
    ports = {p.split(":")[1] for s in COMPOSE["services"].values() for p in s.get("ports", [])}
    defaults = {name: default for _section, name, default, _doc in documented_settings()}
    assert defaults["LC_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1] in ports
    assert defaults["LC_PG_DSN"].rsplit(":", 1)[1].split("/")[0] in ports
    assert defaults["LC_RPC_URL"].rsplit(":", 1)[1] in ports


def test_the_cluster_override_gives_three_nodes_and_replicated_topics_to_every_service() -> None:
    """compose.cluster.yaml laid over compose.yaml (environment maps merge key by key, as compose does)."""
    services = {name: {**COMPOSE["services"].get(name, {}), **CLUSTER["services"][name]} for name in CLUSTER["services"]}
    environment = {name: {**COMPOSE["services"].get(name, {}).get("environment", {}),
                          **CLUSTER["services"][name].get("environment", {})} for name in CLUSTER["services"]}
    nodes = ["kafka", "kafka-2", "kafka-3"]
    bootstrap = ",".join(f"{node}:19092" for node in nodes)
    voters = ",".join(f"{n}@{node}:9093" for n, node in enumerate(nodes, start=1))
    host_ports = []
    for n, node in enumerate(nodes, start=1):
        env = environment[node]
        assert (env["KAFKA_NODE_ID"], env["KAFKA_CONTROLLER_QUORUM_VOTERS"]) == (n, voters)
        assert env["CLUSTER_ID"] == environment["kafka"]["CLUSTER_ID"]
        for setting in ("DEFAULT_REPLICATION_FACTOR", "OFFSETS_TOPIC_REPLICATION_FACTOR",
                        "TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
            assert env[f"KAFKA_{setting}"] == 3, (node, setting)
        assert (env["KAFKA_MIN_INSYNC_REPLICAS"], env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == (2, 2)
        host, internal = env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert internal == f"INTERNAL://{node}:19092"
        port = host.rsplit(":", 1)[1]
        assert f"127.0.0.1:{port}:9092" in services[node]["ports"]
        host_ports.append(int(port))
    assert host_ports == [9092, 9094, 9096]  # as `lc up --brokers 3` (devstack/kafka.py node_addresses)
    known = {name for _section, name, _default, _doc in documented_settings()}
    for name, service in COMPOSE["services"].items():
        if "LC_KAFKA_BOOTSTRAP" in service.get("environment", {}):
            assert environment.get(name, {}).get("LC_KAFKA_BOOTSTRAP") == bootstrap, name
            assert (environment[name]["LC_TOPIC_REPLICATION_FACTOR"],
                    environment[name]["LC_TOPIC_MIN_INSYNC_REPLICAS"]) == ("3", "2"), name
            assert {v for v in environment[name] if v.startswith("LC_")} <= known
    assert environment["kafka-ui"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == bootstrap
    assert environment["schema-registry"]["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == bootstrap
    assert set(COMPOSE["services"]["setup"]["depends_on"]) | set(services["setup"]["depends_on"]) >= set(nodes)
