"""The README documents every setting; compose.yaml agrees with the code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cli.settings import documented_settings
from cli.stages import STAGES
from eventlog.config import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
COMPOSE = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())


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


# ---------------------------------------------------------------- compose.yaml as a Docker user meets it

COMPOSE_TEXT = (PROJECT_ROOT / "compose.yaml").read_text()
PIPELINE_SERVICES = {name: s for name, s in COMPOSE["services"].items() if s.get("image") == "lightchallenge-pipeline"}
# each chain writer's key setting and the devchain role whose account signs for it
WRITER_KEYS = {"aivm-worker": ("LC_PRIVATE_KEY", "worker"), "finalizer": ("LC_FINALIZER_PRIVATE_KEY", "finalizer"),
               "registry-writer": ("LC_REGISTRY_PRIVATE_KEY", "admin")}


def _compose_command() -> list[str]:
    """A compose implementation: the Docker CLI's plugin, else Debian's docker-compose (.ci/run installs it)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("no compose implementation: neither `docker compose` nor `docker-compose` (Debian package "
                "docker-compose, installed by .ci/run) is available")


def _compose_config(path: Path, *overrides: Path) -> subprocess.CompletedProcess[str]:
    # no engine is needed for `config`; the shell's LC_* keys must not change what is checked
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    files = [arg for file in (path, *overrides) for arg in ("-f", str(file))]
    return subprocess.run([*_compose_command(), *files, "config"], capture_output=True, text=True,
                          env=env, cwd=path.parent, timeout=120, check=False)


def _named_volume_mounts(service: dict) -> dict[str, str]:
    """container path -> named volume."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        if source in COMPOSE["volumes"]:
            mounts[target] = source
    return mounts


def test_compose_file_is_valid_for_a_compose_implementation() -> None:
    result = _compose_config(PROJECT_ROOT / "compose.yaml")
    assert result.returncode == 0, result.stderr
    assert "lightchallenge-pipeline" in result.stdout


def test_compose_validation_rejects_an_invalid_file(tmp_path: Path) -> None:
    broken = yaml.safe_load(COMPOSE_TEXT)
    broken["services"]["kafka"]["ports"] = 9092  # must be a list
    broken["services"]["kafka"]["not_an_option"] = True
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    result = _compose_config(tmp_path / "compose.yaml")
    assert result.returncode != 0 and "kafka" in result.stderr, result.stderr


def test_compose_state_lives_on_named_volumes() -> None:
    services = COMPOSE["services"]
    kafka = services["kafka"]
    assert _named_volume_mounts(kafka).get(kafka["environment"]["KAFKA_LOG_DIRS"]) == "kafka-data"
    assert _named_volume_mounts(services["postgres"]).get("/var/lib/postgresql/data") == "pg-data"
    anvil = services["anvil"]
    state = anvil["entrypoint"][anvil["entrypoint"].index("--state") + 1]
    assert any(state.startswith(target + "/") for target in _named_volume_mounts(anvil)), state
    assert anvil["stop_signal"] == "SIGINT"  # anvil dumps its state on SIGINT
    for name, service in PIPELINE_SERVICES.items():
        home = service["environment"]["LC_HOME"]
        assert _named_volume_mounts(service).get(home) == "lc-home", name
        assert "LC_DEPLOYMENTS_FILE" not in service["environment"], f"{name}: the deployments file stays in LC_HOME"


def test_compose_setup_redeploys_when_the_chain_lacks_the_recorded_contracts() -> None:
    setup = COMPOSE["services"]["setup"]
    assert "lc contracts deploy --if-missing" in setup["command"][-1]
    assert setup["restart"] == "no"


def test_compose_services_wait_for_healthy_dependencies() -> None:
    services = COMPOSE["services"]
    for name in ("kafka", "schema-registry", "postgres", "anvil"):
        assert services[name]["healthcheck"]["test"], name
        assert services["setup"]["depends_on"][name] == {"condition": "service_healthy"}, name
    assert services["kafka-ui"]["depends_on"]["schema-registry"] == {"condition": "service_healthy"}


def test_compose_images_have_pinned_tags() -> None:
    for name, service in COMPOSE["services"].items():
        image = service["image"]
        if image == "lightchallenge-pipeline":
            assert service["build"] == ".", name
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert re.fullmatch(r"v?\d+(\.\d+)+[\w.-]*", tag), f"{name}: {image} is not pinned to a version"


def test_compose_publishes_every_port_on_loopback_only() -> None:
    published = [(name, p) for name, s in COMPOSE["services"].items() for p in s.get("ports", [])]
    assert {name for name, _ in published} >= {"uploads-api", "registrations-api", "kafka-ui"}
    for name, port in published:
        assert port.startswith("127.0.0.1:"), f"{name}: {port}"


def test_compose_writer_keys_are_the_dev_chain_roles_and_marked_dev_only() -> None:
    from eth_account import Account

    from devchain.roles import anvil_roles

    roles = anvil_roles()
    for stage, (variable, role) in WRITER_KEYS.items():
        value = COMPOSE["services"][stage]["environment"][variable]
        match = re.fullmatch(r"\$\{(\w+):-(0x[0-9a-f]{64})\}", value)
        assert match and match.group(1) == variable, f"{stage}: {value} (the shell's own key must take precedence)"
        assert Account.from_key(match.group(2)).address == getattr(roles, role).address, stage
    assert "DEV ONLY" in COMPOSE_TEXT and "well-known" in COMPOSE_TEXT
    assert "DEV ONLY" in README.split("## With Docker", 1)[1]


def test_no_service_compose_starts_by_default_lacks_a_required_key() -> None:
    for name, service in COMPOSE["services"].items():
        if service.get("profiles"):
            continue
        for variable, value in service.get("environment", {}).items():
            if variable.startswith("LC_") and variable.endswith("KEY"):
                assert str(value).strip() not in ("", f"${{{variable}:-}}", f"${{{variable}}}"), f"{name}: {variable}"
    assert COMPOSE["services"]["collector"]["profiles"] == ["providers"]  # needs LC_OAUTH_ENCRYPTION_KEY


def test_dockerfile_installs_dependencies_before_the_source_and_runs_unprivileged() -> None:
    lines = [line.strip() for line in (PROJECT_ROOT / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.strip().startswith("#")]
    copy_manifest = lines.index("COPY pyproject.toml ./")
    copy_source = lines.index("COPY . .")
    dependencies = next(i for i, line in enumerate(lines) if "pip install -r" in line or "requirements" in line)
    assert copy_manifest < dependencies < copy_source
    installs = [line for line in lines if "pip install" in line]
    assert not any(" -e " in line or "--editable" in line for line in installs)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    assert lines.index(f"USER {users[-1]}") < next(i for i, line in enumerate(lines) if line.startswith("CMD"))
    ignored = set((PROJECT_ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".lc", "node_modules"} <= ignored


def _published(port: str | dict) -> str:
    """host ip:published:target of a port entry, in either syntax a compose implementation prints."""
    if isinstance(port, dict):
        return f"{port.get('host_ip', '')}:{port['published']}:{port['target']}"
    return port.removesuffix("/tcp")


def test_the_cluster_override_gives_three_nodes_and_replicated_topics_to_every_service() -> None:
    """compose.cluster.yaml laid over compose.yaml, as the compose implementation merges them."""
    result = _compose_config(PROJECT_ROOT / "compose.yaml", PROJECT_ROOT / "compose.cluster.yaml")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    environment = {name: {k: str(v) for k, v in service.get("environment", {}).items()}
                   for name, service in services.items()}
    nodes = ["kafka", "kafka-2", "kafka-3"]
    bootstrap = ",".join(f"{node}:19092" for node in nodes)
    voters = ",".join(f"{n}@{node}:9093" for n, node in enumerate(nodes, start=1))
    host_ports = []
    for n, node in enumerate(nodes, start=1):
        env = environment[node]
        assert (env["KAFKA_NODE_ID"], env["KAFKA_CONTROLLER_QUORUM_VOTERS"]) == (str(n), voters)
        assert env["CLUSTER_ID"] == environment["kafka"]["CLUSTER_ID"]
        for setting in ("DEFAULT_REPLICATION_FACTOR", "OFFSETS_TOPIC_REPLICATION_FACTOR",
                        "TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
            assert env[f"KAFKA_{setting}"] == "3", (node, setting)
        assert (env["KAFKA_MIN_INSYNC_REPLICAS"], env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == ("2", "2")
        assert any(volume.split(":")[1] == env["KAFKA_LOG_DIRS"] for volume in services[node]["volumes"]), node
        host, internal = env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert internal == f"INTERNAL://{node}:19092"
        port = host.rsplit(":", 1)[1]
        assert f"127.0.0.1:{port}:9092" in [_published(p) for p in services[node]["ports"]]
        host_ports.append(int(port))
    assert host_ports == [9092, 9094, 9096]  # as `lc up --brokers 3` (devstack/kafka.py node_addresses)
    known = {name for _section, name, _default, _doc in documented_settings()}
    for name, env in environment.items():
        if "LC_KAFKA_BOOTSTRAP" in env:  # every service that talks to Kafka, the collector's profile included
            assert env["LC_KAFKA_BOOTSTRAP"] == bootstrap, name
            assert (env["LC_TOPIC_REPLICATION_FACTOR"], env["LC_TOPIC_MIN_INSYNC_REPLICAS"]) == ("3", "2"), name
            assert {v for v in env if v.startswith("LC_")} <= known
    behind_profiles = {name for name, service in COMPOSE["services"].items() if service.get("profiles")}
    assert {name for name, env in environment.items() if "LC_KAFKA_BOOTSTRAP" in env} >= {
        *STAGES, "setup"} - behind_profiles  # `config` may leave out services behind a profile
    assert environment["kafka-ui"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == bootstrap
    assert environment["schema-registry"]["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == bootstrap
    assert set(services["setup"]["depends_on"]) >= set(nodes)

