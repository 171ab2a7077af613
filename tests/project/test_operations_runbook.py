"""docs/operations.md: every command it gives is one `lc` accepts, every test it names exists; the alerts
it explains are the ones Prometheus evaluates, on metrics the stages serve; compose scrapes every stage."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from cli.main import build_parser
from cli.stages import STAGES
from eventlog import metrics
from eventlog.config import PROJECT_ROOT

RUNBOOK = (PROJECT_ROOT / "docs" / "operations.md").read_text()
README = (PROJECT_ROOT / "README.md").read_text()
ALERTS = yaml.safe_load((PROJECT_ROOT / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
SCRAPE = yaml.safe_load((PROJECT_ROOT / "prometheus" / "prometheus.yml").read_text())
COMPOSE = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())
# placeholders of the runbook's commands, and a value each
PLACEHOLDERS = {"N": "5", "P": "v2.", "CHALLENGE": "7", "STAGE": "projector", "FILE": "x.json", "R": "why",
                "...": "why", '"..."': "why", "TOPIC": "lc.evidence"}


def runbook_commands() -> list[str]:
    spans = re.findall(r"`((?:LC_[A-Z_]+=\S+ )*lc [^`]+)`", RUNBOOK)
    blocks = re.findall(r"```sh\n(.*?)```", RUNBOOK, re.DOTALL)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [c for c in spans + lines if re.match(r"(LC_[A-Z_]+=\S+ )*lc ", c)]


def metric_names() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, metrics.CallbackGauge):
            names.add(value.name)
        elif hasattr(value, "_name") and hasattr(value, "_type"):
            names.add(value._name + ("_total" if value._type == "counter" else ""))
    return names


@pytest.mark.parametrize("command", runbook_commands())
def test_every_runbook_command_is_one_lc_accepts(command: str) -> None:
    words = [PLACEHOLDERS.get(w, w) for w in shlex.split(re.sub(r"^(LC_[A-Z_]+=\S+ )*lc ", "", command))]
    args, extra = build_parser().parse_known_args(words)
    assert not extra, f"{command}: unrecognized {extra}"


def test_the_runbook_has_every_procedure_the_issue_asks_for() -> None:
    headings = re.findall(r"^##+ (.+)$", RUNBOOK, re.MULTILINE)
    for wanted in ("Start", "Scale", "Upgrade a schema", "Rebuild", "Key rotation", "Requeue and re-run jobs",
                   "Chain reorg beyond the rollback cap (`ReorgTooDeep`)", "Health and metrics", "Alerts"):
        assert wanted in headings, wanted


def test_every_test_the_runbook_names_exists() -> None:
    named = set(re.findall(r"tests/[\w/]+\.py", RUNBOOK))
    assert named
    assert [path for path in sorted(named) if not (PROJECT_ROOT / path).is_file()] == []


def test_every_alert_is_explained_and_uses_served_metrics() -> None:
    served = metric_names() | {"up"}
    explained = re.findall(r"^\| `(\w+)` \|", RUNBOOK.split("### Alerts", 1)[1], re.MULTILINE)
    assert sorted(explained) == sorted(rule["alert"] for rule in ALERTS)
    for rule in ALERTS:
        used = {name.removesuffix("_bucket") for name in re.findall(r"\b(lc_\w+|up)\b", rule["expr"])}
        assert used <= served, f"{rule['alert']}: {used - served}"


def test_the_readme_lists_every_metric() -> None:
    listed = set(re.findall(r"`(lc_\w+)`", README.split("## Metrics", 1)[1].split("\n## ", 1)[0]))
    assert listed == metric_names()


def test_compose_serves_and_scrapes_every_stages_metrics() -> None:
    services = COMPOSE["services"]
    port = int(services["projector"]["environment"]["LC_METRICS_PORT"])
    [target] = SCRAPE["scrape_configs"][0]["dns_sd_configs"]
    assert target["port"] == port
    scraped = set(target["names"])
    production = set(STAGES) - {"aivm-simulator"}
    assert production <= scraped, production - scraped
    for stage in production:
        environment = services[stage].get("environment", {})
        assert str(environment.get("LC_METRICS_PORT", port)) == str(port)
        assert environment.get("LC_METRICS_HOST", "0.0.0.0") == "0.0.0.0"
    prometheus = services["prometheus"]
    assert ":" in prometheus["image"] and not prometheus["image"].endswith(":latest")
    assert all(p.startswith("127.0.0.1:") for p in prometheus["ports"])
