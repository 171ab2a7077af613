"""A normal (non-editable) install works: the wheel carries the schemas, the migrations and the contract
ABIs, and the installed code finds them from outside the source tree (as the Docker image runs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig

import pytest

from eventlog.config import PROJECT_ROOT

# What the wheel is built from: the source tree without checkouts' local state and the test-only folders.
NOT_SHIPPED = shutil.ignore_patterns(".git", ".venv", "node_modules", ".lc", "__pycache__", "*.egg-info", "build",
                                     ".pytest_cache", ".ruff_cache", ".hypothesis", "tests", "bench", "spikes")

# Run by the installed interpreter in an empty folder: which files the installed packages find, and where.
PROBE = """
import json, sys
import chain.abis, devchain.client, eventlog.serde, projections.migrate
from domain.contracts import DEPLOYED_CONTRACTS
from eventlog.serde import SCHEMAS_DIR, SchemaCatalogue
from projections.migrate import MIGRATIONS_DIR, load_migrations

catalogue = SchemaCatalogue()
print(json.dumps({
    "modules": [m.__file__ for m in (chain.abis, devchain.client, eventlog.serde, projections.migrate)],
    "schemas_dir": str(SCHEMAS_DIR),
    "schemas": {p.name: p.read_text() for p in SCHEMAS_DIR.glob("*.avsc")},
    "event_types": sorted(catalogue.versions),
    "migrations_dir": str(MIGRATIONS_DIR),
    "migrations": {m.filename: m.sql for m in load_migrations()},
    "shared": sorted(p.name for p in (MIGRATIONS_DIR / "shared").glob("*.sql")),
    "abis": {name: len(chain.abis.load_abi(name)) for name in DEPLOYED_CONTRACTS},
    "artifacts": sorted(p.name for p in devchain.client.ARTIFACTS_DIR.glob("*.json")),
}))
"""


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build the wheel (`pip wheel . --no-deps`), install it without dependencies into a fresh venv and probe
    it from an empty folder. The dependencies (fastavro, web3, psycopg, ...) come from this environment's
    site-packages on PYTHONPATH: as a plain path entry its .pth files are not run, so the editable install
    of this checkout stays out and every project module must come from the wheel."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=NOT_SHIPPED)
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(work / "dist")])
    wheel = next((work / "dist").glob("lightchallenge_pipeline-*.whl"))
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
    shutil.rmtree(source)  # nothing may be read from a source tree
    empty = work / "elsewhere"
    empty.mkdir()
    probe = _run([str(python), "-c", PROBE], cwd=empty,
                 env={"PATH": "/usr/bin:/bin", "PYTHONPATH": sysconfig.get_paths()["purelib"]})
    return {"venv": venv, **json.loads(probe.stdout)}


def test_the_installed_modules_come_from_the_wheel(installed: dict) -> None:
    for module in installed["modules"]:
        assert module.startswith(str(installed["venv"])), module


def test_every_schema_ships_and_loads(installed: dict) -> None:
    assert installed["schemas_dir"].startswith(str(installed["venv"]))
    expected = {p.name: p.read_text() for p in (PROJECT_ROOT / "schemas").glob("*.avsc")}
    assert installed["schemas"] == expected
    assert set(installed["event_types"]) == {name.split(".")[0] for name in expected if name != "Envelope.avsc"}


def test_every_migration_ships_in_order(installed: dict) -> None:
    assert installed["migrations_dir"].startswith(str(installed["venv"]))
    expected = {p.name: p.read_text() for p in (PROJECT_ROOT / "migrations").glob("*.sql")}
    assert installed["migrations"] == expected
    assert list(installed["migrations"]) == sorted(expected)
    assert installed["shared"] == sorted(p.name for p in (PROJECT_ROOT / "migrations" / "shared").glob("*.sql"))


def test_contract_abis_and_dev_artifacts_ship(installed: dict) -> None:
    assert all(size > 0 for size in installed["abis"].values())
    assert installed["artifacts"] == sorted(p.name for p in (PROJECT_ROOT / "devchain" / "artifacts").glob("*.json"))
