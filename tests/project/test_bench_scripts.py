"""Every benchmark script starts (imports resolve when run as a script from any folder): a moved module
or a shadowed package must fail here, not in the next benchmark session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eventlog.config import PROJECT_ROOT

SCRIPTS = sorted((PROJECT_ROOT / "bench").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_a_benchmark_script_starts(script: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()
