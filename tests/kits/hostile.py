"""A hostile corpus for the intakes, generated on the fly (big inputs are streamed into a folder, never
committed): every class of issue 11 (deep JSON, NaN and 1e999, 400-digit integers, lone surrogates,
NUL, impossible offsets and years, impossible positions and counts, ZIP bombs by ratio and by size,
ZIP directories too large, encrypted, symlinked, duplicated and path-traversing members, gzip inside a
ZIP, XML entities, DTDs, oversized tokens and text, other encodings, empty files, oversized documents,
distinct-value floods) with what the uploads API must answer.

Run as a script to write the corpus to a folder and look at it: `python tests/kits/hostile.py OUT`.
"""

from __future__ import annotations

import gzip
import io
import json
import stat
import struct
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20

GOOD_GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test"><trk><name>Morning run</name><type>running</type><trkseg>
<trkpt lat="47.6000" lon="-122.3300"><ele>10</ele><time>2024-03-01T07:00:00Z</time></trkpt>
<trkpt lat="47.6010" lon="-122.3300"><ele>12</ele><time>2024-03-01T07:01:00Z</time></trkpt>
<trkpt lat="47.6020" lon="-122.3300"><ele>11</ele><time>2024-03-01T07:02:00Z</time></trkpt>
</trkseg></trk></gpx>
"""


def gpx_with(lat: str = "47.6", lon: str = "-122.33", time: str = "2024-03-01T07:00:00Z",
             end_time: str = "2024-03-01T07:02:00Z", ele: str = "10") -> str:
    return (f'<?xml version="1.0"?><gpx version="1.1" creator="t"><trk><type>running</type><trkseg>'
            f'<trkpt lat="47.6" lon="-122.33"><ele>{ele}</ele><time>{time}</time></trkpt>'
            f'<trkpt lat="{lat}" lon="{lon}"><ele>10</ele><time>{end_time}</time></trkpt>'
            f"</trkseg></trk></gpx>")


def tcx_with(seconds: str = "600", metres: str = "1500", calories: str = "90",
             started: str = "2024-03-01T07:00:00Z", last: str = "2024-03-01T07:10:00Z") -> str:
    return ('<?xml version="1.0"?><TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/'
            'TrainingCenterDatabase/v2"><Activities><Activity Sport="Running">'
            f"<Id>{started}</Id><Lap StartTime=\"{started}\"><TotalTimeSeconds>{seconds}</TotalTimeSeconds>"
            f"<DistanceMeters>{metres}</DistanceMeters><Calories>{calories}</Calories><Track><Trackpoint>"
            f"<Time>{last}</Time></Trackpoint></Track></Lap></Activity></Activities></TrainingCenterDatabase>")


APPLE_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n]>\n'
              '<HealthData locale="en_US">\n')


def apple_record(value: str = "120", start: str = "2024-03-01 10:00:00 +0200", source: str = "Ada's iPhone",
                 kind: str = "HKQuantityTypeIdentifierStepCount", unit: str = "count") -> str:
    return (f'<Record type="{kind}" sourceName="{source}" unit="{unit}" startDate="{start}" '
            f'endDate="{start}" value="{value}"/>\n')


def apple_xml(*records: str, export_date: str | None = None) -> str:
    export = f'<ExportDate value="{export_date}"/>\n' if export_date else ""
    return APPLE_HEAD + export + "".join(records) + "</HealthData>\n"


def connect_activity(**changes: object) -> dict[str, object]:
    return {"activityId": 1, "activityType": {"typeKey": "running"}, "startTimeLocal": "2024-03-01 08:00:00",
            "startTimeGMT": "2024-03-01 07:00:00", "duration": 1800.0, "distance": 5000.0, "steps": 5200,
            **changes}


def session_json(**changes: object) -> dict[str, object]:
    return {"fitnessActivity": "walking", "startTime": "2024-03-01T07:00:00Z", "endTime": "2024-03-01T07:30:00Z",
            "duration": "1800s", "aggregate": [{"metricName": "com.google.step_count.delta", "intValue": 3000}],
            **changes}


def zip_bytes(members: list[tuple[str, bytes]], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _central_entries(data: bytes) -> Iterator[int]:
    """Offsets of the central directory headers of a ZIP written by zipfile."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        yield at
        at = data.find(b"PK\x01\x02", at + 4)


def patched_zip(members: list[tuple[str, bytes]], patch: Callable[[bytearray, int], None]) -> bytes:
    data = bytearray(zip_bytes(members, compression=zipfile.ZIP_STORED))
    for at in list(_central_entries(bytes(data))):
        patch(data, at)
    return bytes(data)


def _declare_4gib(data: bytearray, at: int) -> None:
    struct.pack_into("<LL", data, at + 20, 0xFFFF0000, 0xFFFF0000)  # compressed, uncompressed sizes


def _encrypted(data: bytearray, at: int) -> None:
    flags = struct.unpack_from("<H", data, at + 8)[0]
    struct.pack_into("<H", data, at + 8, flags | 0x1)


def symlink_zip(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return buffer.getvalue()


def duplicate_zip(name: str, first: bytes, second: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name": exactly what this archive is for
            archive.writestr(name, first)
            archive.writestr(name, second)
    return buffer.getvalue()


def many_entries_zip(path: Path, count: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for n in range(count):
            archive.writestr(f"f/{n}", b"")


def streamed_zip(path: Path, name: str, pieces: Iterator[bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            for piece in pieces:
                member.write(piece)


def streamed_file(path: Path, pieces: Iterator[bytes]) -> None:
    with path.open("wb") as stream:
        for piece in pieces:
            stream.write(piece)


def _huge_attribute(mib: int) -> Iterator[bytes]:
    yield APPLE_HEAD.encode() + b'<Record type="HKQuantityTypeIdentifierStepCount" sourceName="'
    block = b"a" * MiB
    for _ in range(mib):
        yield block
    yield b'" unit="count" startDate="2024-03-01 10:00:00 +0200" endDate="2024-03-01 10:00:00 +0200" value="1"/>'
    yield b"</HealthData>\n"


def _huge_gpx_name(mib: int) -> Iterator[bytes]:
    yield b'<?xml version="1.0"?><gpx version="1.1" creator="t"><trk><name>'
    block = b"x" * MiB
    for _ in range(mib):
        yield block
    yield b"</name><trkseg></trkseg></trk></gpx>"


def _huge_comment(mib: int) -> Iterator[bytes]:
    yield APPLE_HEAD.encode() + b"<!--"
    for _ in range(mib):
        yield b"-x" * (MiB // 2)
    yield b"-->\n" + apple_record().encode() + b"</HealthData>\n"


def _sources(count: int) -> Iterator[bytes]:
    yield APPLE_HEAD.encode()
    batch: list[str] = []
    for n in range(count):
        batch.append(apple_record(source=f"source {n:07d}"))
        if len(batch) == 10_000:
            yield "".join(batch).encode()
            batch.clear()
    yield ("".join(batch) + "</HealthData>\n").encode()


def _days(count: int) -> Iterator[bytes]:
    """One step sample per day for `count` days from 1970 on: more distinct (type, day) sums than allowed."""
    from datetime import date, timedelta

    yield APPLE_HEAD.encode()
    first = date(1971, 1, 1)
    batch: list[str] = []
    for n in range(count):
        day = first + timedelta(days=n % 45_000)
        batch.append(apple_record(start=f"{day.isoformat()} 10:00:00 +{(n // 45_000) % 10:02d}00"))
        if len(batch) == 10_000:
            yield "".join(batch).encode()
            batch.clear()
    yield ("".join(batch) + "</HealthData>\n").encode()


def deep(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@dataclass(frozen=True)
class Hostile:
    """One input and what the uploads API must answer to it."""

    name: str
    provider: str
    status: int
    code: str
    write: Callable[[Path], None]  # writes the body to the given path
    dead_letter: bool = True  # an authenticated refusal of a read body goes to lc.dlq
    params: dict[str, str] = field(default_factory=dict)


def _text(text: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    return lambda path: path.write_bytes(text.encode(encoding, "surrogatepass"))


def _data(data: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data() if callable(data) else data)


def _json_text(value: object) -> str:
    return json.dumps(value)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE HealthData [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<HealthData locale="en_US"><Record type="HKQuantityTypeIdentifierStepCount" sourceName="&lol2;" unit="count"
 startDate="2024-01-01 10:00:00 +0000" endDate="2024-01-01 10:01:00 +0000" value="10"/></HealthData>
"""
XXE_GPX = """<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<gpx version="1.1" creator="x"><trk><name>&secret;</name><trkseg>
<trkpt lat="1" lon="1"><time>2024-01-01T10:00:00Z</time></trkpt></trkseg></trk></gpx>
"""
DTD_ATTLIST_DEFAULT = (APPLE_HEAD.replace("]>", '<!ATTLIST Record sourceName CDATA "' + "d" * (2 * MiB) + '">\n]>')
                       + apple_record() + "</HealthData>\n")


def corpus() -> list[Hostile]:
    """The refusals: each input, its provider, and the status and error code it must get."""
    daily = [{"calendarDate": "2024-03-01", "totalSteps": 9000}]
    cases = [
        # JSON: depth, numbers, text
        Hostile("json nested 100,000 deep (garmin)", "garmin", 422, "malformed", _text(deep(100_000))),
        Hostile("json nested 100,000 deep in an object (garmin)", "garmin", 422, "malformed",
                _text('{"activities": ' + deep(100_000) + "}")),
        Hostile("json nested 100,000 deep (googlefit session)", "googlefit", 422, "malformed",
                _text('{"fitnessActivity": ' + deep(100_000) + "}")),
        Hostile("json NaN", "garmin", 422, "malformed", _text('[{"activityId": 1, "duration": NaN}]')),
        Hostile("json Infinity", "garmin", 422, "malformed", _text('[{"activityId": 1, "distance": -Infinity}]')),
        Hostile("json 1e999", "garmin", 422, "malformed", _text('[{"activityId": 1, "distance": 1e999}]')),
        Hostile("json 400-digit integer", "garmin", 422, "malformed",
                _text('[{"calendarDate": "2024-03-01", "totalSteps": ' + "9" * 400 + "}]")),
        Hostile("json lone surrogate", "garmin", 422, "malformed",
                _text('[{"activityId": 1, "activityType": {"typeKey": "\\ud800"}, "startTimeGMT": "2024-03-01 07:00:00"}]')),
        Hostile("json NUL in a string", "garmin", 422, "malformed",
                _text('[{"calendarDate": "2024-03-01\\u0000", "totalSteps": 1}]')),
        Hostile("json not UTF-8 (latin-1)", "garmin", 422, "malformed",
                _text('[{"calendarDate": "2024-03-01", "note": "caf\u00e9", "totalSteps": 1}]', "latin-1")),
        Hostile("json string of 4 M escapes, then NaN", "garmin", 422, "malformed",
                _text('[{"calendarDate": "2024-03-01", "note": "' + "\\n" * 4_000_000 + '", "totalSteps": NaN}]')),
        Hostile("json document over 16 MiB", "garmin", 413, "too_large",
                _text(_json_text(daily * 500_000))),
        Hostile("json duration 1e300 (end beyond year 9999)", "garmin", 422, "malformed",
                _text(_json_text([connect_activity(duration=1e300)]))),
        # dates, offsets, impossible values
        Hostile("garmin daily steps in year 9999", "garmin", 422, "malformed",
                _text(_json_text([{"calendarDate": "9999-12-31", "totalSteps": 100}]))),
        Hostile("garmin negative step count", "garmin", 422, "no_records",
                _text(_json_text([{"calendarDate": "2024-03-01", "totalSteps": -500}]))),
        Hostile("garmin activity with negative duration", "garmin", 422, "no_records",
                _text(_json_text([connect_activity(duration=-3600.0)]))),
        Hostile("garmin offset of 99 hours", "garmin", 422, "malformed",
                _text(_json_text([connect_activity(startTimeLocal="2024-03-05 11:00:00")]))),
        Hostile("gpx latitude 91", "garmin", 422, "malformed", _text(gpx_with(lat="91"))),
        Hostile("gpx longitude 999", "garmin", 422, "malformed", _text(gpx_with(lon="999"))),
        Hostile("gpx NaN coordinates", "garmin", 422, "malformed", _text(gpx_with(lat="NaN", lon="nan"))),
        Hostile("gpx elevation 1e999", "garmin", 422, "malformed", _text(gpx_with(ele="1e999"))),
        Hostile("gpx time running backwards", "garmin", 422, "no_records",
                _text(gpx_with(end_time="2024-03-01T06:00:00Z"))),
        Hostile("gpx in year 9999", "garmin", 422, "no_records",
                _text(gpx_with(time="9999-12-31T23:00:00Z", end_time="9999-12-31T23:59:59Z"))),
        Hostile("tcx lap time NaN", "garmin", 422, "malformed", _text(tcx_with(seconds="NaN"))),
        Hostile("tcx negative calories", "garmin", 422, "no_records", _text(tcx_with(calories="-90"))),
        Hostile("tcx ends before it starts", "garmin", 422, "no_records", _text(tcx_with(last="2024-03-01T06:00:00Z"))),
        Hostile("apple offset +9900", "apple", 422, "no_records", _text(apple_xml(apple_record(start="2024-03-01 10:00:00 +9900")))),
        Hostile("apple NaN, 1e999 and negative sample values", "apple", 422, "no_records",
                _text(apple_xml(apple_record(value="NaN"), apple_record(value="1e999"), apple_record(value="-20")))),
        Hostile("apple samples in year 9999 and year 1", "apple", 422, "no_records",
                _text(apple_xml(apple_record(start="9999-12-31 23:00:00 -2300"),
                                apple_record(start="0001-01-01 00:00:00 +1400")))),
        Hostile("apple superscript digits in a day and an offset", "apple", 422, "no_records",
                _text(apple_xml(apple_record(start="2024-0\u00b3-01 10:00:00 +0200"),
                                apple_record(start="2024-03-01 10:00:00 +0\u00b200")))),
        Hostile("googlefit session file name offset +99:00", "googlefit", 422, "malformed",
                _text(_json_text(session_json())), params={"filename": "2024-03-01T07_00_00+99_00_WALKING.json"}),
        Hostile("googlefit per-day CSV offset +99:00", "googlefit", 422, "malformed",
                _text("Start time,End time,Step count\n07:00:00.000+99:00,07:15:00.000+99:00,100\n"),
                params={"filename": "2024-03-01.csv"}),
        Hostile("googlefit CSV with NUL", "googlefit", 422, "malformed", _text("Date,Step count\n2024-03-01,1\x00\n")),
        Hostile("googlefit CSV field over the csv limit", "googlefit", 422, "malformed",
                _text("Date,Step count\n2024-03-01," + "1" * 200_000 + "\n")),
        Hostile("googlefit CSV step count 1e999", "googlefit", 422, "malformed", _text("Date,Step count\n2024-03-01,1e999\n")),
        # XML: entities, DTDs, tokens, text, encodings, depth
        Hostile("xml billion laughs", "apple", 422, "unsafe_xml", _text(BILLION_LAUGHS)),
        Hostile("xml external entity", "garmin", 422, "unsafe_xml", _text(XXE_GPX)),
        Hostile("xml DTD with a 2 MiB attribute default", "apple", 422, "unsafe_xml", _text(DTD_ATTLIST_DEFAULT)),
        Hostile("xml 64 MiB attribute", "apple", 422, "unsafe_xml",
                lambda path: streamed_file(path, _huge_attribute(64))),
        Hostile("xml 64 MiB comment", "apple", 422, "unsafe_xml", lambda path: streamed_file(path, _huge_comment(64))),
        Hostile("gpx 300 MB name", "garmin", 422, "unsafe_xml", lambda path: streamed_file(path, _huge_gpx_name(300))),
        Hostile("gpx nested 1,000,000 deep", "garmin", 422, "unsafe_xml",
                _text('<?xml version="1.0"?><gpx>' + "<a>" * 1_000_000 + "</a>" * 1_000_000 + "</gpx>")),
        Hostile("apple export nested 3,000,000 deep", "apple", 422, "unsafe_xml",
                _text(APPLE_HEAD + "<Record>" * 3_000_000 + "</Record>" * 3_000_000 + "</HealthData>\n")),
        Hostile("xml in an unknown encoding", "garmin", 422, "malformed",
                _text('<?xml version="1.0" encoding="x-made-up"?><gpx><trk></trk></gpx>')),
        Hostile("xml UTF-16 with a byte order mark", "garmin", 422, "wrong_kind", _text("\ufeff" + GOOD_GPX, "utf-16-le")),
        Hostile("xml not well-formed", "garmin", 422, "malformed", _text(GOOD_GPX[:-20])),
        # ZIP archives
        Hostile("zip bomb: 512 MiB attribute in 0.5 MB", "apple", 413, "too_large",
                lambda path: streamed_zip(path, "apple_health_export/export.xml", _huge_attribute(512))),
        Hostile("zip bomb: 256 MiB of spaces", "apple", 413, "too_large",
                lambda path: streamed_zip(path, "apple_health_export/export.xml",
                                          iter([APPLE_HEAD.encode()] + [b" " * MiB] * 256))),
        Hostile("zip declaring 20 GiB", "apple", 413, "too_large",
                _data(lambda: patched_zip([(f"apple_health_export/export{n}.xml", b"x") for n in range(5)],
                                          _declare_4gib))),
        Hostile("zip with 60,000 entries", "googlefit", 413, "too_large", lambda path: many_entries_zip(path, 60_000)),
        Hostile("zip with an encrypted member", "apple", 422, "corrupt_zip",
                _data(lambda: patched_zip([("apple_health_export/export.xml", apple_xml(apple_record()).encode())],
                                          _encrypted))),
        Hostile("zip with a symlink as export.xml", "apple", 422, "malformed",
                _data(lambda: symlink_zip("apple_health_export/export.xml", "/etc/passwd"))),
        Hostile("zip with a path-traversal name", "apple", 422, "corrupt_zip",
                _data(lambda: zip_bytes([("../../../../tmp/export.xml", apple_xml(apple_record()).encode())]))),
        Hostile("zip with an absolute name", "googlefit", 422, "corrupt_zip",
                _data(lambda: zip_bytes([("/Takeout/Fit/All Sessions/s.json", _json_text(session_json()).encode())]))),
        Hostile("zip listing export.xml twice", "apple", 422, "corrupt_zip",
                _data(lambda: duplicate_zip("apple_health_export/export.xml", apple_xml(apple_record()).encode(),
                                            apple_xml(apple_record(value="99999")).encode()))),
        Hostile("zip holding gzip as export.xml", "apple", 422, "malformed",
                _data(lambda: zip_bytes([("apple_health_export/export.xml",
                                          gzip.compress(apple_xml(apple_record()).encode()))]))),
        Hostile("zip holding export.xml.gz only", "apple", 422, "wrong_kind",
                _data(lambda: zip_bytes([("apple_health_export/export.xml.gz",
                                          gzip.compress(apple_xml(apple_record()).encode()))]))),
        Hostile("zip truncated", "apple", 422, "corrupt_zip",
                _data(lambda: zip_bytes([("apple_health_export/export.xml", apple_xml(apple_record()).encode() * 50)])[:300])),
        Hostile("zip, empty archive", "apple", 422, "wrong_kind", _data(lambda: zip_bytes([]))),
        Hostile("zip: takeout session nested 100,000 deep", "googlefit", 422, "malformed",
                _data(lambda: zip_bytes([("Takeout/Fit/All Sessions/s.json", deep(100_000).encode())]))),
        Hostile("zip: 1.5 M distinct sourceName values", "apple", 413, "too_large",
                lambda path: streamed_zip(path, "apple_health_export/export.xml", _sources(1_500_000))),
        Hostile("apple: 450,000 distinct days and offsets", "apple", 413, "too_large",
                lambda path: streamed_zip(path, "apple_health_export/export.xml", _days(450_000))),
        # empty and foreign files
        Hostile("empty file", "apple", 422, "wrong_kind", _data(b""), dead_letter=False),
        Hostile("whitespace only", "garmin", 422, "wrong_kind", _data(b" \n\t " * 10)),
        Hostile("a PNG image", "apple", 422, "wrong_kind", _data(b"\x89PNG\r\n\x1a\n" + bytes(2048))),
    ]
    return cases


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for n, case in enumerate(corpus()):
        path = out / f"{n:02d}-{case.provider}-{case.status}-{case.code}"
        case.write(path)
        print(f"{path.name}: {case.name} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
