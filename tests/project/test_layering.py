"""The layering of docs/decisions.md ("Layers") is enforced by import-linter, and the contracts can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eventlog.config import PROJECT_ROOT

PACKAGES = ("domain", "eventlog", "chain", "indexers", "intake", "streams", "effects", "projections", "cli",
            "devstack", "devchain", "schemas", "migrations")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300)


def test_the_tree_keeps_every_contract() -> None:
    result = lint(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("effects/chain.py", "from devchain.build import build_artifacts", "no production module imports the dev chain"),
    ("projections/jobs.py", "from streams.dispatch import decide", "never import one another"),
    ("domain/rules.py", "import psycopg", "domain is pure"),
    ("eventlog/consumer.py", "from projections.framework import Projector", "eventlog (Kafka plumbing"),
    ("indexers/chain/engine.py", "from indexers.providers.collector import Collector", "are independent"),
    ("intake/auth.py", "from streams.dispatch import decide", "do not import its consumers"),
    ("schemas/__init__.py", "from eventlog.config import PROJECT_ROOT", "schemas and migrations are data"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert contract in result.stdout.split("Broken contracts", 1)[1]
