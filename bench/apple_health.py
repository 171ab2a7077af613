"""Apple Health export parsing against a bare streaming XML pass over the same file, in the same run.

Generates an export.zip whose export.xml is `--size-mb` MB (default 500; realistic mix: heart rate
with metadata, steps, distance, active and basal energy from an iPhone and a Watch, daily iOS 16
workouts), then, each in a fresh interpreter (so every peak RSS is that pass's own), best of
`--repeat` runs:
1. bare expat: the ZIP member streamed through expat with no handlers (no record handling);
2. bare iterparse: the same through ElementTree.iterparse with element clearing (no record handling);
3. parse: `detect_and_parse(export.zip, "apple")` (ZIP stream + hardened expat + daily totals +
   workouts + records + evidence hash).
Prints MB/s of export.xml for each (by wall clock, and by the process's CPU time, which other load on a
shared machine disturbs less), the peak RSS of each, and the ratios (target: parse >= 0.5 x bare).

    .venv/bin/python bench/apple_health.py [--size-mb 500] [--repeat 2] [--xml]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

# run as a script, bench/ comes first on sys.path and bench/streams.py would shadow the streams package;
# the project root takes its place, so the packages also win over the test folders named like them
# (tests/indexers, ...) once tests/ is on the path for the kits, in spawned worker processes too
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from eventlog.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from kits.apple_export import write_export_xml, write_export_zip

MEMBER = "apple_health_export/export.xml"

# Each pass prints {"seconds", "cpu_seconds", "peak_bytes"}; the timers cover opening the file to the end.
PASSES = {
    "bare expat": """
import zipfile
from xml.parsers import expat
def run(path):
    parser = expat.ParserCreate()
    opener = (lambda: zipfile.ZipFile(path).open(MEMBER)) if path.endswith(".zip") else (lambda: open(path, "rb"))
    with opener() as stream:
        while chunk := stream.read(1 << 20):
            parser.Parse(chunk, False)
    parser.Parse(b"", True)
""",
    "bare iterparse": """
import zipfile
from xml.etree.ElementTree import iterparse
def run(path):
    opener = (lambda: zipfile.ZipFile(path).open(MEMBER)) if path.endswith(".zip") else (lambda: open(path, "rb"))
    with opener() as stream:
        for _event, element in iterparse(stream):
            element.clear()
""",
    "parse": """
from indexers.providers.uploads.detect import detect_and_parse
def run(path):
    parsed = detect_and_parse(path, "apple")
    assert parsed.records
""",
}
HARNESS = """
import json, sys, time
MEMBER = {member!r}
{body}
started, cpu_started = time.perf_counter(), time.process_time()
run(sys.argv[1])
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_bytes": peak_kb * 1024}}))
"""


def run_pass(name: str, path: Path) -> dict[str, float]:
    code = HARNESS.format(member=MEMBER, body=PASSES[name])
    result = subprocess.run([sys.executable, "-c", code, str(path)], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=500, help="size of the generated export.xml in MB (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each pass; the best counts")
    parser.add_argument("--xml", action="store_true", help="parse a bare export.xml instead of an export.zip")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lc-apple-bench-") as folder:
        started = time.perf_counter()
        if options.xml:
            path = Path(folder) / "export.xml"
            with path.open("wb") as stream:
                expected = write_export_xml(stream, options.size_mb * 1_000_000)
            xml_bytes = path.stat().st_size
        else:
            path = Path(folder) / "export.zip"
            expected = write_export_zip(path, options.size_mb * 1_000_000)
            with zipfile.ZipFile(path) as archive:
                xml_bytes = archive.getinfo(MEMBER).file_size
        print(f"generated {path.name}: export.xml {xml_bytes / 1e6:.0f} MB ({path.stat().st_size / 1e6:.0f} MB on "
              f"disk), {expected.records_written:,} Record elements, {expected.workouts} workouts, "
              f"in {time.perf_counter() - started:.1f} s")

        print(f"load average before: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}")
        best: dict[str, dict[str, float]] = {}
        for _ in range(options.repeat):
            for name in PASSES:  # interleaved, so a busy moment does not hit one pass only
                outcome = run_pass(name, path)
                previous = best.setdefault(name, outcome)
                for measure in ("seconds", "cpu_seconds"):
                    previous[measure] = min(previous[measure], outcome[measure])

    megabytes = xml_bytes / 1e6
    wall = {name: megabytes / outcome["seconds"] for name, outcome in best.items()}
    cpu = {name: megabytes / outcome["cpu_seconds"] for name, outcome in best.items()}
    print(f"{'pass':<16} {'MB/s wall':>10} {'MB/s CPU':>9} {'peak RSS MB':>12}")
    for name, outcome in best.items():
        print(f"{name:<16} {wall[name]:>10.1f} {cpu[name]:>9.1f} {outcome['peak_bytes'] / 2**20:>12.1f}")
    print("CPU per Record element: " + ", ".join(
        f"{name} {1e6 * outcome['cpu_seconds'] / expected.records_written:.2f} us" for name, outcome in best.items()))
    print(f"load average after: {'{:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}")
    for baseline in ("bare expat", "bare iterparse"):
        print(f"ratio parse / {baseline + ':':<15} wall {wall['parse'] / wall[baseline]:.2f}, "
              f"CPU {cpu['parse'] / cpu[baseline]:.2f}  (target >= 0.5 against bare expat)")

if __name__ == "__main__":
    main()
