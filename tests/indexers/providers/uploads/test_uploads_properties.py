"""No file makes the upload parsers raise anything but UploadRejected (hypothesis), and what they accept
holds only possible records."""

from __future__ import annotations

import io
import json
import tempfile
import warnings
import zipfile
from pathlib import Path

import eth_account  # noqa: F401  (through py_ecc it raises the recursion limit, as in every stage)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kits.hostile import APPLE_HEAD, apple_record, tcx_with

from domain.evidence_records import record_problem
from indexers.providers.uploads.detect import detect_and_parse
from indexers.providers.uploads.errors import UploadRejected

FOLDER = Path(tempfile.mkdtemp(prefix="lc-upload-properties-"))
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# values chosen to break parsers: numbers out of range, dates out of range, offsets, encodings
NASTY_TEXT = st.one_of(
    st.sampled_from([
        "NaN", "nan", "inf", "-inf", "1e999", "-1e999", "1e308", "-5", "0", "9" * 400, "", " ", "\u00b9\u00b2",
        "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9999-12-31 23:59:59 +2359", "0001-01-01 00:00:00 -2359",
        "2024-03-01 10:00:00 +9900", "2024-13-45 25:61:61 +0000", "2024-03-01T07:00:00+99:00", "2024-03-01",
        "\x00", "\ud800", "&amp;", "<", "]]>", "1" * 30, "2024-W01-1 10:00:00 +0000",
        # and possible values, so that accepted files are checked too
        "47.6", "-122.3", "120", "5.5", "2024-03-01 10:00:00 +0200", "2024-03-02 23:59:59 -0500",
        "2024-03-01T07:30:00Z", "2024-03-01T09:00:00+02:00", "2024-03-01 07:00:00",
    ]),
    st.text(max_size=25),
    st.floats().map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)


def parse(data: bytes, provider: str, file_name: str | None = None) -> None:
    """detect_and_parse on `data`: only UploadRejected may escape, and accepted records are possible."""
    with tempfile.NamedTemporaryFile(dir=FOLDER, delete=False) as handle:
        handle.write(data)
    path = Path(handle.name)
    try:
        parsed = detect_and_parse(path, provider, file_name=file_name, subject="0x" + "ab" * 20)
    except UploadRejected as exc:
        assert exc.code and str(exc)
        return
    finally:
        path.unlink()
    assert parsed.records
    for record in parsed.records:
        assert record_problem(record) is None, record


def xml_safe(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch in "\t\n\r" or (" " <= ch and not 0xD800 <= ord(ch) <= 0xDFFF
                                                                and ch not in "\ufffe\uffff"))
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from(["apple", "garmin", "googlefit"]),
       st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"<?xml version='1.0'?><HealthData>", b"<gpx>",
                        b"<TrainingCenterDatabase>", b"[", b"{", b"Date,Step count\n", b"Start time,Step count\n"]))
def test_any_bytes_behind_any_file_head(tail: bytes, provider: str, head: bytes) -> None:
    parse(head + tail, provider, file_name="2024-03-01.csv")


@SETTINGS
@given(st.lists(st.tuples(NASTY_TEXT, NASTY_TEXT, NASTY_TEXT, NASTY_TEXT), min_size=1, max_size=4))
def test_gpx_with_nasty_values(points: list[tuple[str, str, str, str]]) -> None:
    trkpts = "".join(f'<trkpt lat="{xml_safe(lat)}" lon="{xml_safe(lon)}"><ele>{xml_safe(ele)}</ele>'
                     f"<time>{xml_safe(time)}</time></trkpt>" for lat, lon, ele, time in points)
    parse(f'<?xml version="1.0"?><gpx version="1.1"><trk><type>running</type><trkseg>{trkpts}</trkseg></trk></gpx>'
          .encode(), "garmin")


@SETTINGS
@given(NASTY_TEXT, NASTY_TEXT, NASTY_TEXT, NASTY_TEXT, NASTY_TEXT)
def test_tcx_with_nasty_values(seconds: str, metres: str, calories: str, started: str, last: str) -> None:
    parse(tcx_with(*(xml_safe(value) for value in (seconds, metres, calories, started, last))).encode(), "garmin")


@SETTINGS
@given(st.lists(st.tuples(NASTY_TEXT, NASTY_TEXT, NASTY_TEXT, st.sampled_from(["count", "km", "kcal", "x", ""])),
                min_size=1, max_size=5),
       st.one_of(st.none(), NASTY_TEXT),
       st.lists(st.tuples(NASTY_TEXT, NASTY_TEXT, NASTY_TEXT), max_size=2))
def test_apple_exports_with_nasty_values(samples: list[tuple[str, str, str, str]], export_date: str | None,
                                         workouts: list[tuple[str, str, str]]) -> None:
    kinds = ["HKQuantityTypeIdentifierStepCount", "HKQuantityTypeIdentifierDistanceWalkingRunning",
             "HKQuantityTypeIdentifierActiveEnergyBurned"]
    records = "".join(apple_record(xml_safe(value), xml_safe(start), xml_safe(source), kinds[n % 3], unit)
                      for n, (value, start, source, unit) in enumerate(samples))
    workout_xml = "".join(
        f'<Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="{xml_safe(duration)}" '
        f'durationUnit="min" startDate="{xml_safe(start)}" endDate="{xml_safe(end)}">'
        f'<WorkoutStatistics type="HKQuantityTypeIdentifierStepCount" sum="{xml_safe(duration)}"/></Workout>\n'
        for duration, start, end in workouts)
    export = f'<ExportDate value="{xml_safe(export_date)}"/>\n' if export_date is not None else ""
    document = (APPLE_HEAD + export + records + workout_xml + "</HealthData>\n").encode()
    parse(document, "apple")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("apple_health_export/export.xml", document)
    parse(buffer.getvalue(), "apple")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**100), max_value=10**100) | st.floats() | NASTY_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["activityId", "calendarDate", "totalSteps", "date", "steps", "startTimeGMT",
                         "startTimeLocal", "duration", "distance", "summaryDTO", "activityType", "typeKey",
                         "activities", "fitnessActivity", "startTime", "endTime", "aggregate", "metricName",
                         "intValue", "floatValue", "x"]), children, max_size=5),
    max_leaves=15)


@SETTINGS
@given(JSON_VALUES)
def test_garmin_and_google_fit_json_with_nasty_values(value: object) -> None:
    text = json.dumps(value, allow_nan=True)
    if not text.startswith(("[", "{")):
        text = f"[{text}]"
    parse(text.encode("utf-8", "surrogatepass"), "garmin")
    parse(text.encode("utf-8", "surrogatepass"), "googlefit", file_name="2024-03-01T07_00_00+05_30_WALKING.json")


@SETTINGS
@given(st.lists(st.lists(NASTY_TEXT, min_size=1, max_size=4), max_size=4),
       st.sampled_from(["Date,Step count,Distance (m)", "Start time,End time,Step count,Distance (m)"]),
       st.sampled_from(["2024-03-01.csv", "9999-12-31.csv", "0001-01-01.csv", "summary.csv"]))
def test_google_fit_csv_with_nasty_cells(rows: list[list[str]], header: str, file_name: str) -> None:
    lines = [header] + [",".join(cell.replace(",", " ").replace("\n", " ").replace("\r", " ") for cell in row)
                        for row in rows]
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    parse(data, "googlefit", file_name=file_name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        member = "Daily activity metrics.csv" if header.startswith("Date") else file_name
        archive.writestr(f"Takeout/Fit/Daily activity metrics/{member}", data)
    parse(buffer.getvalue(), "googlefit")


@SETTINGS
@given(st.lists(st.tuples(st.text(max_size=30) | st.sampled_from(["apple_health_export/export.xml",
                                                                   "Takeout/Fit/All Sessions/s.json", "../export.xml"]),
                          st.binary(max_size=60)), max_size=4))
def test_zips_of_any_members(members: list[tuple[str, bytes]]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of what is tried
        for name, data in members:
            try:
                archive.writestr(name or "x", data)
            except (UnicodeEncodeError, ValueError, IndexError):  # names zipfile itself cannot write
                continue
    for provider in ("apple", "googlefit"):
        parse(buffer.getvalue(), provider)
