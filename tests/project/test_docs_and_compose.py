"""The README documents every setting; compose.yaml agrees with the code."""

from __future__ import annotations

import re

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
