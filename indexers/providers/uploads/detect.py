"""`detect_and_parse`: which kind of file an upload is, its records, and its evidence hash.

The kind is decided from the content (the first bytes, the ZIP's member names), never from the file
name alone; a file that is not one of the provider's formats is refused with `WrongKind`, a ZIP that
cannot be read with `CorruptArchive`, XML declaring entities with `UnsafeXml`, a file without any
usable data with `NoRecords`.

Every input is bounded before it is read (docs/decisions.md, "Hostile uploads"): a ZIP's central
directory (entries and bytes) is checked from its end record before `zipfile` loads it; the sizes its
members declare must stay under `MAX_UNPACKED_BYTES` in total and each member over 1 MiB under
`MAX_COMPRESSION_RATIO` (zipfile stops reading a member at its declared size, so the declared sizes
bound the work); JSON and CSV files are read whole only up to `MAX_DOCUMENT_BYTES`, JSON through
domain.untrusted (bounded depth, finite numbers, no NUL); XML tokens are bounded by safexml.
`detect_and_parse` raises `UploadRejected` and nothing else for any input: a value beyond what the
parsers can represent (a date in year 10000, an offset of +99:00, a number beyond a float) is a
`MalformedUpload`. The records of an accepted upload pass domain.evidence_records: an impossible one
(negative counts or durations, time running backwards) is dropped with a note in `dropped`.

Evidence hash of an upload: keccak256 of the JS-style JSON (`JSON.stringify`) of the records
sorted by `activity_id`, as the API connectors do (spec/evidence.md §4.3 item 1). The original's
upload hash was a SHA-256 of a small summary (target day and total), so two different uploads with
the same summary had the same hash: it did not bind the data. This one changes with any record.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from domain.evidence import EvidenceTooLarge, check_size
from domain.evidence_records import screen_records
from indexers.providers.evidence_hash import (
    SORT_KEYS,
    ZERO_HASH,
    evidence_hash,
    js_stringify,
    keccak256_hex,
    locale_sorted,
)
from indexers.providers.uploads import apple, garmin, googlefit
from indexers.providers.uploads.errors import (
    CorruptArchive,
    MalformedUpload,
    NoRecords,
    TooMuchEvidence,
    UnpackedTooLarge,
    UploadRejected,
    WrongKind,
)
from indexers.providers.uploads.record import Record, with_user_id

UPLOAD_PROVIDERS = {"apple": "apple", "apple_health": "apple", "garmin": "garmin", "googlefit": "googlefit",
                    "google_fit": "googlefit"}
SNIFF_BYTES = 64 * 1024
# Unpacking is bounded by the sizes the members declare (zipfile stops at them), so a cap on the
# declared sizes bounds the work a small ZIP bomb can cause. Real exports unpack to a few GB and
# compress 15 to 40 times (XML); deflate reaches about 1,000 times on a bomb.
MAX_UNPACKED_BYTES = 16 * 1024**3
MAX_COMPRESSION_RATIO = 200
RATIO_CHECKED_ABOVE = 1 << 20
MAX_ZIP_ENTRIES = 50_000  # a Fit Takeout holds a file per session and per day: thousands
MAX_ZIP_DIRECTORY_BYTES = 8 * 1024 * 1024
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # a JSON or CSV file, read whole: years of activities are a few MB
MAX_DROPPED_NOTES = 20
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_END_OF_DIRECTORY = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_OF_DIRECTORY = struct.Struct("<4sQ2H2L4Q")
# errors of a value beyond what the parsers can represent (datetime, timezone, float, int conversion)
RANGE_ERRORS = (ValueError, ArithmeticError, UnicodeError)


@dataclass(frozen=True)
class ParsedUpload:
    provider: str  # the evidence provider value: apple, garmin, googlefit
    kind: str  # apple_health_zip, apple_health_xml, garmin_tcx, garmin_gpx, garmin_connect_json, googlefit_...
    records: list[Record]
    evidence_hash: str
    skipped: int = 0  # source entries left out (unparsable, impossible, or dated after the export)
    dropped: list[str] = field(default_factory=list)  # why records were left out (the first few)


def evidence_hash_for(provider: str, records: Sequence[Record]) -> str:
    """The evidence hash the collector (API providers) or the uploads API (upload providers) gives these
    records, so the same evidence has the same hash whichever way it came in (an intake's JSON, a file
    of `lc ingest evidence`). ValueError for a provider without a hash rule (UploadRejected: too much)."""
    name = provider.lower()
    if name in UPLOAD_PROVIDERS:
        return upload_evidence_hash(records)
    if name in SORT_KEYS:
        return evidence_hash(name, records)
    raise ValueError(f"provider {provider!r} has no evidence hash rule: give evidence_hash "
                     f"(known: {', '.join(sorted({*SORT_KEYS, *UPLOAD_PROVIDERS}))})")


def upload_evidence_hash(records: Sequence[Record]) -> str:
    """The evidence hash; TooMuchEvidence when the records exceed what one evidence fact may carry
    (the hashed text is their JSON re-ordered: as many bytes as the published records_json)."""
    try:
        check_size(len(records), 0)
        if not records:
            return ZERO_HASH
        ordered = locale_sorted(records, lambda record: str(record.get("activity_id") or ""))
        text = js_stringify(ordered).encode("utf-8")
        check_size(len(records), len(text))
    except EvidenceTooLarge as exc:
        raise TooMuchEvidence(f"the file holds more evidence than one upload may carry: {exc}") from None
    return keccak256_hex(text)


def upload_provider(provider: str) -> str:
    normalized = UPLOAD_PROVIDERS.get(provider.strip().lower())
    if normalized is None:
        raise WrongKind(f"provider {provider!r} takes no file uploads; upload providers: apple, garmin, googlefit")
    return normalized


def _head(path: Path) -> bytes:
    with path.open("rb") as stream:
        return stream.read(SNIFF_BYTES)


def _text_start(head: bytes) -> bytes:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip()


def is_zip(head: bytes) -> bool:
    return head.startswith(_ZIP_MAGIC)


def zip_directory_size(path: Path) -> tuple[int, int]:
    """(entries, bytes) of a ZIP's central directory, read from its end record (ZIP64 too), so that a
    directory too large to load is refused before `zipfile` reads it into memory."""
    with path.open("rb") as stream:
        size = stream.seek(0, io.SEEK_END)
        tail_bytes = min(size, _END_OF_DIRECTORY.size + 0xFFFF + _ZIP64_LOCATOR.size)
        stream.seek(size - tail_bytes)
        tail = stream.read(tail_bytes)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _END_OF_DIRECTORY.size > len(tail):
            raise CorruptArchive("the ZIP archive cannot be read: no end of central directory")
        fields = _END_OF_DIRECTORY.unpack_from(tail, at)
        entries, directory_bytes = fields[4], fields[5]
        locator = at - _ZIP64_LOCATOR.size
        if locator >= 0 and tail[locator:locator + 4] == b"PK\x06\x07":
            record_at = _ZIP64_LOCATOR.unpack_from(tail, locator)[2]
            stream.seek(min(record_at, size))
            record = stream.read(_ZIP64_END_OF_DIRECTORY.size)
            if len(record) != _ZIP64_END_OF_DIRECTORY.size or not record.startswith(b"PK\x06\x06"):
                raise CorruptArchive("the ZIP archive cannot be read: bad ZIP64 end of central directory")
            zip64 = _ZIP64_END_OF_DIRECTORY.unpack(record)
            entries, directory_bytes = zip64[7], zip64[8]
    return entries, directory_bytes


def check_zip_members(infos: Sequence[zipfile.ZipInfo], max_unpacked_bytes: int) -> None:
    """Refuse what no export holds: a name that is absolute or climbs out (`..`), a name listed twice
    (which of the two would be the data?), an encrypted member, and sizes beyond the limits."""
    seen: set[str] = set()
    for info in infos:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or ".." in name.split("/") or (len(name) > 1 and name[1] == ":"):
            raise CorruptArchive(f"the ZIP member name {info.filename[:100]!r} points outside the archive")
        if name in seen:
            raise CorruptArchive(f"the ZIP lists {info.filename[:100]!r} twice")
        seen.add(name)
    declared = sum(info.file_size for info in infos)
    if declared > max_unpacked_bytes:
        raise UnpackedTooLarge(f"the ZIP unpacks to {declared} bytes, over the limit of {max_unpacked_bytes}")
    for info in infos:
        if info.file_size > RATIO_CHECKED_ABOVE and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise UnpackedTooLarge(f"the ZIP member {info.filename[:100]!r} unpacks {info.file_size // max(info.compress_size, 1)} "
                                   f"times its packed size, over the limit of {MAX_COMPRESSION_RATIO} (a ZIP bomb)")
        if info.flag_bits & 0x1:
            raise CorruptArchive(f"the ZIP member {info.filename[:100]!r} is encrypted")


@contextmanager
def open_zip(path: Path, max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> Iterator[zipfile.ZipFile]:
    """The archive, once its directory and declared sizes are within bounds; any read error inside the
    block (bad CRC, truncated deflate) is a CorruptArchive."""
    entries, directory_bytes = zip_directory_size(path)
    if entries > MAX_ZIP_ENTRIES or directory_bytes > MAX_ZIP_DIRECTORY_BYTES:
        raise UnpackedTooLarge(f"the ZIP lists {entries} files in a directory of {directory_bytes} bytes, over the "
                               f"limit of {MAX_ZIP_ENTRIES} files or {MAX_ZIP_DIRECTORY_BYTES} bytes")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise UnpackedTooLarge(f"the ZIP lists more than {MAX_ZIP_ENTRIES} files")
            check_zip_members(infos, max_unpacked_bytes)
            yield archive
    except (zipfile.BadZipFile, zlib.error, EOFError, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            OSError) as exc:
        raise CorruptArchive(f"the ZIP archive cannot be read: {exc}") from None


def read_document(stream: BinaryIO, what: str) -> bytes:
    """A JSON or CSV document read whole, refused when it is larger than MAX_DOCUMENT_BYTES."""
    data = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise UnpackedTooLarge(f"{what} is larger than {MAX_DOCUMENT_BYTES} bytes; a real one is a few MB")
    return data


def _member_name(info: zipfile.ZipInfo) -> str:
    return PurePosixPath(info.filename).name


# --- per provider --------------------------------------------------------------------------------


def _apple(path: Path, head: bytes, max_unpacked_bytes: int) -> tuple[str, list[Record], int]:
    if is_zip(head):
        with open_zip(path, max_unpacked_bytes) as archive:
            members = [info for info in archive.infolist() if _member_name(info) == "export.xml"]
            if not members:
                raise WrongKind("this ZIP has no export.xml: upload the export.zip that the Health app makes "
                                "(Health > profile > Export All Health Data)")
            member = min(members, key=lambda info: info.filename.count("/"))
            with archive.open(member) as stream:
                parsed = apple.parse_export_xml(stream, member.filename)
        return "apple_health_zip", parsed.records, parsed.samples_skipped
    if _text_start(head).startswith(b"<") and (b"<HealthData" in head or b"<!DOCTYPE HealthData" in head):
        with path.open("rb") as stream:
            parsed = apple.parse_export_xml(stream)
        return "apple_health_xml", parsed.records, parsed.samples_skipped
    raise WrongKind("not an Apple Health export: upload the export.zip (or its export.xml) from the Health app")


def _garmin(path: Path, head: bytes) -> tuple[str, list[Record], int]:
    start = _text_start(head)
    if start[:1] in (b"[", b"{"):
        return "garmin_connect_json", garmin.parse_connect_json(_document(path)), 0
    with path.open("rb") as stream:
        if start.startswith(b"<") and b"<TrainingCenterDatabase" in head:
            return "garmin_tcx", garmin.parse_tcx(stream), 0
        if start.startswith(b"<") and b"<gpx" in head:
            return "garmin_gpx", garmin.parse_gpx(stream), 0
    raise WrongKind("not a Garmin export: Garmin takes a .tcx, a .gpx, or Garmin Connect JSON "
                    "(activity list, activity detail, daily steps)")


def _googlefit_members(archive: zipfile.ZipFile) -> tuple[list[Record], bool]:
    records: list[Record] = []
    summary: list[googlefit.DayTotals] | None = None
    per_day: list[googlefit.DayTotals] = []
    found = False
    for info in archive.infolist():
        parts = PurePosixPath(info.filename).parts
        name = parts[-1] if parts else ""
        if "All Sessions" in parts and name.endswith(".json"):
            records.extend(googlefit.parse_session_json(_member(archive, info), name))
            found = True
        elif "Daily activity metrics" in parts and name == googlefit.SUMMARY_FILE_NAME:
            summary = googlefit.parse_summary_csv(_member(archive, info))
            found = True
        elif "Daily activity metrics" in parts and name.endswith(".csv"):
            per_day.append(googlefit.parse_day_csv(_member(archive, info), name))
            found = True
    return googlefit.records_of_days(summary, per_day) + records, found


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> BinaryIO:
    """A small member (JSON, CSV) read whole, within MAX_DOCUMENT_BYTES."""
    with archive.open(info) as stream:
        return io.BytesIO(read_document(stream, info.filename[:100]))


def _document(path: Path) -> BinaryIO:
    with path.open("rb") as stream:
        return io.BytesIO(read_document(stream, "the file"))


def _googlefit(
    path: Path, head: bytes, file_name: str | None, max_unpacked_bytes: int
) -> tuple[str, list[Record], int]:
    if is_zip(head):
        with open_zip(path, max_unpacked_bytes) as archive:
            records, found = _googlefit_members(archive)
        if not found:
            raise WrongKind("this ZIP has no Google Fit data: upload the Takeout ZIP with its Fit folder "
                            "(All Sessions, Daily activity metrics)")
        return "googlefit_takeout_zip", records, 0
    start = _text_start(head)
    if start.startswith(b"{"):
        return "googlefit_session_json", googlefit.parse_session_json(_document(path), file_name), 0
    first_line = start.split(b"\n", 1)[0]
    if first_line.startswith(b"Date,"):
        days = googlefit.parse_summary_csv(_document(path))
        return "googlefit_daily_csv", googlefit.records_of_days(days, []), 0
    if first_line.startswith(b"Start time,") and file_name:
        day = googlefit.parse_day_csv(_document(path), file_name)
        return "googlefit_day_csv", googlefit.records_of_days(None, [day]), 0
    raise WrongKind("not a Google Fit Takeout file: upload the Takeout ZIP, a session JSON from "
                    "Fit/All Sessions, or Fit/Daily activity metrics/Daily activity metrics.csv")


def detect_and_parse(
    path: Path | str,
    provider: str,
    *,
    file_name: str | None = None,
    subject: str | None = None,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
) -> ParsedUpload:
    """Parse an uploaded file for `provider`. `file_name` is the name the client gave (Google Fit
    session and per-day files carry the local offset or the date in it); with `subject`, every
    record gets the original's `user_id` (so the evidence hash also binds the subject)."""
    path = Path(path)
    evidence_provider = upload_provider(provider)
    head = _head(path)
    if not head:
        raise WrongKind("the file is empty")
    try:
        if evidence_provider == "apple":
            kind, records, skipped = _apple(path, head, max_unpacked_bytes)
        elif evidence_provider == "garmin":
            kind, records, skipped = _garmin(path, head)
        else:
            kind, records, skipped = _googlefit(path, head, file_name, max_unpacked_bytes)
    except UploadRejected:
        raise
    except UnicodeDecodeError as exc:
        raise MalformedUpload(f"the file is not UTF-8 text: {exc}") from None
    except RecursionError:
        raise MalformedUpload("the file is nested too deeply") from None
    except RANGE_ERRORS as exc:
        raise MalformedUpload(f"the file holds a value out of range: {str(exc)[:200]}") from None
    screened = screen_records(records)
    dropped = [str(note) for note in screened.dropped]
    if not screened.kept:
        found = f" ({len(records)} found, all impossible: {'; '.join(dropped[:3])})" if dropped else ""
        raise NoRecords(f"this {kind.replace('_', ' ')} file holds no steps, distance, energy or activities{found}")
    records = screened.kept
    if subject is not None:
        records = [with_user_id(record, subject) for record in records]
    return ParsedUpload(evidence_provider, kind, records, upload_evidence_hash(records), skipped + len(dropped),
                        dropped[:MAX_DROPPED_NOTES])

