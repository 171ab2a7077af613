"""A generated 1 GB export.xml (inside an export.zip) parses in bounded memory, with the right totals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kits.apple_export import write_export_zip

from eventlog.config import PROJECT_ROOT

ONE_GB = 1_000_000_000
PEAK_LIMIT_BYTES = 200 * 1024 * 1024

# Runs in a fresh interpreter so that its peak RSS (VmHWM) is the parse's own.
CHILD = """
import json, sys
from indexers.providers.uploads.detect import detect_and_parse
parsed = detect_and_parse(sys.argv[1], "apple")
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_bytes": peak_kb * 1024, "records": parsed.records, "skipped": parsed.skipped}))
"""


@pytest.mark.slow
def test_one_gigabyte_export_parses_under_200_mb(tmp_path: Path) -> None:
    export = tmp_path / "export.zip"
    expected = write_export_zip(export, ONE_GB)

    result = subprocess.run([sys.executable, "-c", CHILD, str(export)], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, check=True)
    outcome = json.loads(result.stdout)

    assert outcome["peak_bytes"] < PEAK_LIMIT_BYTES
    days = [record for record in outcome["records"] if record["period"] == "day"]
    workouts = [record for record in outcome["records"] if record["period"] == "activity"]
    assert len(workouts) == expected.workouts
    assert {record["date"] for record in days if record["type"] == "steps"} == expected.days("steps")
    for record in days:
        value = {"steps": record["steps"], "distance": record["distance_m"],
                 "active_energy": record["calories_kcal"]}[record["type"]]
        assert value == pytest.approx(expected.day_total(record["type"], record["date"]), abs=0.05)
    assert outcome["skipped"] == 0
