"""The committed artifacts are what the pinned solc makes of the committed sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from chain.abis import ABI_DIR
from devchain.build import (
    ARTIFACTS_DIR,
    CONTRACT_NAMES,
    SOLC_VERSION,
    SOURCES_DIR,
    build_artifacts,
    check_artifacts,
    read_sources,
    sources_hash,
)


def test_committed_artifacts_match_a_fresh_compile():
    assert check_artifacts() == []


def test_artifacts_carry_compiler_version_and_sources_hash():
    digest = sources_hash(read_sources())
    for name in CONTRACT_NAMES:
        artifact = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert artifact["contractName"] == name
        assert artifact["compiler"]["version"].startswith(SOLC_VERSION + "+commit.")
        assert artifact["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 200}
        assert artifact["sourcesHash"] == digest
        assert artifact["bytecode"].startswith("0x60") and len(artifact["bytecode"]) > 100
        assert any(entry["type"] == "function" for entry in artifact["abi"])


def test_an_edited_source_makes_the_check_fail(tmp_path: Path):
    sources, artifacts, abis = tmp_path / "src", tmp_path / "artifacts", tmp_path / "abi"
    shutil.copytree(SOURCES_DIR, sources)
    shutil.copytree(ARTIFACTS_DIR, artifacts)
    shutil.copytree(ABI_DIR, abis)
    registry = sources / "MetadataRegistry.sol"
    registry.write_text(registry.read_text().replace("error LenMismatch();", "error LenMismatch();\n    error Extra();"))

    problems = check_artifacts(artifacts, sources, abis)

    # the sources hash is in every artifact, so all of them are stale; the registry's ABI changed too,
    # so the deployed contracts' ABI of chain/abi is stale as well
    assert len(problems) == len(CONTRACT_NAMES) + 1
    assert any(p.startswith("MetadataRegistry.json") for p in problems)
    assert any(p.startswith("chain/abi/MetadataRegistry.json") for p in problems)
    build_artifacts(artifacts, sources, abis)
    assert check_artifacts(artifacts, sources, abis) == []
    assert any(entry.get("name") == "Extra" for entry in json.loads((abis / "MetadataRegistry.json").read_text()))
    abi = json.loads((artifacts / "MetadataRegistry.json").read_text())["abi"]
    assert any(entry.get("name") == "Extra" for entry in abi)

