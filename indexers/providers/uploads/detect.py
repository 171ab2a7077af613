"""`detect_and_parse`: which kind of file an upload is, its records, and its evidence hash.

The kind is decided from the content (the first bytes, the ZIP's member names), never from the file
name alone; a file that is not one of the provider's formats is refused with `WrongKind`, a ZIP that
cannot be read with `CorruptArchive`, XML declaring entities with `UnsafeXml`, a file without any
usable data with `NoRecords`.

Evidence hash of an upload: keccak256 of the JS-style JSON (`JSON.stringify`) of the records
sorted by `activity_id`, as the API connectors do (spec/evidence.md §4.3 item 1). The original's
upload hash was a SHA-256 of a small summary (target day and total), so two different uploads with
the same summary had the same hash: it did not bind the data. This one changes with any record.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from domain.evidence import EvidenceTooLarge, check_size
from indexers.providers.evidence_hash import ZERO_HASH, js_stringify, keccak256_hex, locale_sorted
from indexers.providers.uploads import apple, garmin, googlefit
from indexers.providers.uploads.errors import (
    CorruptArchive,
    MalformedUpload,
    NoRecords,
    TooMuchEvidence,
    UnpackedTooLarge,
    WrongKind,
)
from indexers.providers.uploads.record import Record, with_user_id

UPLOAD_PROVIDERS = {"apple": "apple", "apple_health": "apple", "garmin": "garmin", "googlefit": "googlefit",
                    "google_fit": "googlefit"}
SNIFF_BYTES = 64 * 1024
# Unpacking is bounded by the sizes the members declare (zipfile stops at them), so a cap on the
# declared sizes bounds the work a small ZIP bomb can cause. Real exports unpack to a few GB.
MAX_UNPACKED_BYTES = 64 * 1024**3
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class ParsedUpload:
    provider: str  # the evidence provider value: apple, garmin, googlefit
    kind: str  # apple_health_zip, apple_health_xml, garmin_tcx, garmin_gpx, garmin_connect_json, googlefit_...
    records: list[Record]
    evidence_hash: str
    skipped: int = 0  # source entries left out (unparsable, or dated after the export)


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


@contextmanager
def open_zip(path: Path, max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> Iterator[zipfile.ZipFile]:
    """The archive; any read error inside the block (bad CRC, truncated deflate) is a CorruptArchive."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
            if declared > max_unpacked_bytes:
                raise UnpackedTooLarge(f"the ZIP unpacks to {declared} bytes, over the limit of {max_unpacked_bytes}")
            yield archive
    except (zipfile.BadZipFile, zlib.error, EOFError, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise CorruptArchive(f"the ZIP archive cannot be read: {exc}") from None


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
    with path.open("rb") as stream:
        if start.startswith(b"<") and b"<TrainingCenterDatabase" in head:
            return "garmin_tcx", garmin.parse_tcx(stream), 0
        if start.startswith(b"<") and b"<gpx" in head:
            return "garmin_gpx", garmin.parse_gpx(stream), 0
        if start[:1] in (b"[", b"{"):
            return "garmin_connect_json", garmin.parse_connect_json(stream), 0
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
            with archive.open(info) as stream:
                records.extend(googlefit.parse_session_json(stream, name))
            found = True
        elif "Daily activity metrics" in parts and name == googlefit.SUMMARY_FILE_NAME:
            with archive.open(info) as stream:
                summary = googlefit.parse_summary_csv(stream)
            found = True
        elif "Daily activity metrics" in parts and name.endswith(".csv"):
            with archive.open(info) as stream:
                per_day.append(googlefit.parse_day_csv(stream, name))
            found = True
    return googlefit.records_of_days(summary, per_day) + records, found


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
    with path.open("rb") as stream:
        if start.startswith(b"{"):
            return "googlefit_session_json", googlefit.parse_session_json(stream, file_name), 0
        first_line = start.split(b"\n", 1)[0]
        if first_line.startswith(b"Date,"):
            days = googlefit.parse_summary_csv(stream)
            return "googlefit_daily_csv", googlefit.records_of_days(days, []), 0
        if first_line.startswith(b"Start time,") and file_name:
            day = googlefit.parse_day_csv(stream, file_name)
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
    except UnicodeDecodeError as exc:
        raise MalformedUpload(f"the file is not UTF-8 text: {exc}") from None
    if not records:
        raise NoRecords(f"this {kind.replace('_', ' ')} file holds no steps, distance, energy or activities")
    if subject is not None:
        records = [with_user_id(record, subject) for record in records]
    return ParsedUpload(evidence_provider, kind, records, upload_evidence_hash(records), skipped)

