"""Compile devchain/src with the pinned solc (npm `solc`, standard JSON, fixed optimizer settings) and
write or check `devchain/artifacts/<Contract>.json`.

    python -m devchain.build            # rebuild the artifacts
    python -m devchain.build --check    # exit 1 when the committed artifacts don't match the sources
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.abis import ABI_DIR, abi_text
from domain.contracts import DEPLOYED_CONTRACTS

CONTRACTS_DIR = Path(__file__).resolve().parent
SOURCES_DIR = CONTRACTS_DIR / "src"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
PROJECT_ROOT = CONTRACTS_DIR.parent
COMPILE_SCRIPT = CONTRACTS_DIR / "compile.js"

SOLC_VERSION = "0.8.30"
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    # AIVMInferenceV2.requests returns a 20-member struct: only the IR pipeline avoids "stack too deep"
    "viaIR": True,
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}
# Contracts that get an artifact; base contracts and interfaces (Owned, IValidatorRegistry, ...) don't.
CONTRACT_NAMES: tuple[str, ...] = (
    "ChallengePay",
    "Treasury",
    "ChallengeTaskRegistry",
    "ChallengePayAivmPoiVerifier",
    "MetadataRegistry",
    "AIVMInferenceV2",
    "LCAIValidatorRegistry",
    "TestToken",
)


class CompileError(RuntimeError):
    """solc reported errors; the message holds them."""


@dataclass(frozen=True)
class Artifact:
    contract_name: str
    source_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    sources_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "contractName": self.contract_name,
            "sourceName": self.source_name,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "compiler": {"name": "solc", "version": self.compiler_version, "settings": _settings_without_selection()},
            "sourcesHash": self.sources_hash,
        }


def _settings_without_selection() -> dict[str, Any]:
    return {k: v for k, v in COMPILER_SETTINGS.items() if k != "outputSelection"}


def read_sources(sources_dir: Path = SOURCES_DIR) -> dict[str, str]:
    """Source unit name (file name) -> content, sorted by name."""
    return {path.name: path.read_text() for path in sorted(sources_dir.glob("*.sol"))}


def sources_hash(sources: dict[str, str]) -> str:
    """sha256 over the sorted (name, content) pairs, so any edit, rename or new file changes it."""
    digest = hashlib.sha256()
    for name in sorted(sources):
        for part in (name, sources[name]):
            encoded = part.encode()
            digest.update(len(encoded).to_bytes(8, "big"))
            digest.update(encoded)
    return "0x" + digest.hexdigest()


def standard_json_input(sources: dict[str, str]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {name: {"content": content} for name, content in sources.items()},
        "settings": COMPILER_SETTINGS,
    }


def run_solc(standard_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(compiler version, standard-JSON output) from the npm solc package."""
    completed = subprocess.run(
        ["node", str(COMPILE_SCRIPT)], input=json.dumps(standard_input), capture_output=True, text=True,
        cwd=PROJECT_ROOT, check=False,
    )
    if completed.returncode != 0:
        raise CompileError(f"node {COMPILE_SCRIPT.name} failed: {completed.stderr.strip()}")
    reply = json.loads(completed.stdout)
    return reply["version"], reply["output"]


def artifacts_from_output(version: str, output: dict[str, Any], digest: str) -> dict[str, Artifact]:
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    if not version.startswith(SOLC_VERSION + "+"):
        raise CompileError(f"solc {version} found, {SOLC_VERSION} pinned: run `npm ci`")
    found: dict[str, Artifact] = {}
    for source_name, contracts in output.get("contracts", {}).items():
        for name, compiled in contracts.items():
            if name in CONTRACT_NAMES:
                found[name] = Artifact(
                    contract_name=name, source_name=source_name, abi=compiled["abi"],
                    bytecode="0x" + compiled["evm"]["bytecode"]["object"],
                    deployed_bytecode="0x" + compiled["evm"]["deployedBytecode"]["object"],
                    compiler_version=version, sources_hash=digest,
                )
    missing = sorted(set(CONTRACT_NAMES) - set(found))
    if missing:
        raise CompileError(f"no compiled output for {missing}")
    return found


_compiled: dict[str, dict[str, Artifact]] = {}


def compile_sources(sources_dir: Path = SOURCES_DIR) -> dict[str, Artifact]:
    """Compile (once per process for identical sources: solc-js takes seconds)."""
    sources = read_sources(sources_dir)
    digest = sources_hash(sources)
    if digest not in _compiled:
        version, output = run_solc(standard_json_input(sources))
        _compiled[digest] = artifacts_from_output(version, output, digest)
    return _compiled[digest]


def artifact_text(artifact: Artifact) -> str:
    return json.dumps(artifact.to_json(), indent=2, sort_keys=True) + "\n"


def build_artifacts(artifacts_dir: Path = ARTIFACTS_DIR, sources_dir: Path = SOURCES_DIR,
                    abi_dir: Path = ABI_DIR) -> list[Path]:
    """Compile the sources and (re)write one artifact per contract and the deployed contracts' ABIs
    (chain/abi); returns the written paths."""
    artifacts = compile_sources(sources_dir)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACT_NAMES:
        path = artifacts_dir / f"{name}.json"
        path.write_text(artifact_text(artifacts[name]))
        written.append(path)
    for name in DEPLOYED_CONTRACTS:
        path = abi_dir / f"{name}.json"
        path.write_text(abi_text(artifacts[name].abi))
        written.append(path)
    return written


def check_artifacts(artifacts_dir: Path = ARTIFACTS_DIR, sources_dir: Path = SOURCES_DIR,
                    abi_dir: Path = ABI_DIR) -> list[str]:
    """Recompile and compare with the committed artifacts; returns the problems (empty = up to date)."""
    artifacts = compile_sources(sources_dir)
    problems = []
    for name in CONTRACT_NAMES:
        path = artifacts_dir / f"{name}.json"
        if not path.is_file():
            problems.append(f"{path.name} is missing")
        elif path.read_text() != artifact_text(artifacts[name]):
            problems.append(f"{path.name} does not match the sources (run `lc contracts build`)")
    for name in DEPLOYED_CONTRACTS:
        path = abi_dir / f"{name}.json"
        if not path.is_file() or path.read_text() != abi_text(artifacts[name].abi):
            problems.append(f"chain/abi/{path.name} does not match the sources (run `lc contracts build`)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check the committed artifacts")
    args = parser.parse_args(argv)
    if args.check:
        problems = check_artifacts()
        for problem in problems:
            print(problem, file=sys.stderr)
        print("artifacts up to date" if not problems else f"{len(problems)} artifact(s) out of date")
        return 1 if problems else 0
    for path in build_artifacts():
        print(f"wrote {path.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
