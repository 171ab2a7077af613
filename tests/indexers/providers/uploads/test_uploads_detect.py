"""detect_and_parse: wrong kinds, corrupt archives, and the evidence hash of an upload."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from Crypto.Hash import keccak

from indexers.providers.uploads.detect import detect_and_parse, upload_evidence_hash
from indexers.providers.uploads.errors import CorruptArchive, NoRecords, UnpackedTooLarge, WrongKind


@pytest.mark.parametrize(("relative", "provider"), [
    ("garmin/garmin_connect_export_2016_run_excerpt.gpx", "apple"),
    ("apple_health/export.zip", "garmin"),
    ("apple_health/export_v8_2019_iphone_excerpt.xml", "garmin"),
    ("apple_health/export.zip", "googlefit"),
    ("garmin/garmin_connect_export_2022_vivoactive_hr_sup.tcx", "googlefit"),
    ("apple_health/export_cda_2019_iphone.xml", "apple"),
])
def test_a_file_of_another_kind_is_refused(shared_fixtures: Path, relative: str, provider: str) -> None:
    with pytest.raises(WrongKind):
        detect_and_parse(shared_fixtures / relative, provider)


def test_other_wrong_kinds(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    with pytest.raises(WrongKind, match="empty"):
        detect_and_parse(empty, "apple")
    image = tmp_path / "photo.zip"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(WrongKind):
        detect_and_parse(image, "apple")
    no_export = tmp_path / "other.zip"
    with zipfile.ZipFile(no_export, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(WrongKind, match="export.xml"):
        detect_and_parse(no_export, "apple")
    with pytest.raises(WrongKind, match="no file uploads"):
        detect_and_parse(no_export, "strava")


def _export_zip(path: Path) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("apple_health_export/export.xml", '<?xml version="1.0"?>\n<HealthData locale="en">'
                         + "".join(f'<Record type="HKQuantityTypeIdentifierStepCount" sourceName="p" unit="count" '
                                   f'startDate="2024-01-01 10:{i % 60:02d}:00 +0000" '
                                   f'endDate="2024-01-01 10:{i % 60:02d}:30 +0000" value="{i}"/>\n' for i in range(2000))
                         + "</HealthData>")
    return path.read_bytes()


def test_truncated_zip_is_corrupt(tmp_path: Path) -> None:
    data = _export_zip(tmp_path / "good.zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptArchive):
        detect_and_parse(truncated, "apple")


def test_zip_with_damaged_data_is_corrupt(tmp_path: Path) -> None:
    data = bytearray(_export_zip(tmp_path / "good.zip"))
    middle = len(data) // 3  # inside the deflated member
    data[middle:middle + 16] = bytes(16)
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    with pytest.raises(CorruptArchive):
        detect_and_parse(damaged, "apple")


def _keccak(text: str) -> str:
    digest = keccak.new(digest_bits=256)
    digest.update(text.encode())
    return "0x" + digest.hexdigest()


def test_evidence_hash_is_keccak_of_the_records_sorted_by_activity_id() -> None:
    records = [{"activity_id": "day:steps:2024-01-02", "steps": 5, "distance_m": 1.5},
               {"activity_id": "day:steps:2024-01-01", "steps": 7, "distance_m": 2.0}]
    expected = _keccak('[{"activity_id":"day:steps:2024-01-01","steps":7,"distance_m":2},'
                       '{"activity_id":"day:steps:2024-01-02","steps":5,"distance_m":1.5}]')
    assert upload_evidence_hash(records) == expected
    assert upload_evidence_hash(list(reversed(records))) == expected
    assert upload_evidence_hash([]) == "0x" + "0" * 64


def test_evidence_hash_binds_every_value_and_the_subject(tmp_path: Path) -> None:
    first = tmp_path / "a.json"
    second = tmp_path / "b.json"
    first.write_text(json.dumps([{"calendarDate": "2024-06-01", "totalSteps": 12034}]))
    second.write_text(json.dumps([{"calendarDate": "2024-06-01", "totalSteps": 12035}]))
    assert detect_and_parse(first, "garmin").evidence_hash != detect_and_parse(second, "garmin").evidence_hash
    alice = detect_and_parse(first, "garmin", subject="0xA11ce")
    bob = detect_and_parse(first, "garmin", subject="0xB0b")
    assert alice.evidence_hash != bob.evidence_hash
    assert alice.records[0]["checksum"] == bob.records[0]["checksum"]  # the data's own identity
    assert detect_and_parse(first, "garmin", subject="0xA11ce").evidence_hash == alice.evidence_hash


def test_a_file_without_data_is_refused(tmp_path: Path) -> None:
    course = tmp_path / "course.tcx"
    course.write_text('<?xml version="1.0"?><TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/'
                      'TrainingCenterDatabase/v2"><Courses/></TrainingCenterDatabase>')
    with pytest.raises(NoRecords):
        detect_and_parse(course, "garmin")


def test_json_of_another_provider_is_the_wrong_kind(shared_fixtures: Path) -> None:
    session = next((shared_fixtures / "google_fit" / "Takeout" / "Fit" / "All Sessions").glob("*.json"))
    with pytest.raises(WrongKind):
        detect_and_parse(session, "garmin")
    with pytest.raises(WrongKind):
        detect_and_parse(shared_fixtures / "garmin" / "connect_activity_detail_2541953812.json", "googlefit")


def test_a_zip_declaring_too_much_unpacked_data_is_refused(tmp_path: Path) -> None:
    data = _export_zip(tmp_path / "good.zip")
    with zipfile.ZipFile(tmp_path / "good.zip") as archive:
        unpacked = archive.getinfo("apple_health_export/export.xml").file_size
    assert detect_and_parse(tmp_path / "good.zip", "apple", max_unpacked_bytes=unpacked).records
    with pytest.raises(UnpackedTooLarge):
        detect_and_parse(tmp_path / "good.zip", "apple", max_unpacked_bytes=unpacked - 1)
    assert len(data) < unpacked
