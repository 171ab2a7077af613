"""Why an upload is refused: one exception family, each with a stable machine-readable code."""

from __future__ import annotations


class UploadRejected(ValueError):
    """The upload cannot become evidence; `code` is stable, the message says what to do."""

    code = "rejected"


class WrongKind(UploadRejected):
    """The file is not one of the formats accepted for the named provider."""

    code = "wrong_kind"


class CorruptArchive(UploadRejected):
    """A ZIP that cannot be read (truncated, bad CRC, not a ZIP after all)."""

    code = "corrupt_zip"


class UnsafeXml(UploadRejected):
    """XML with entity declarations or external references (billion laughs, XXE)."""

    code = "unsafe_xml"


class MalformedUpload(UploadRejected):
    """The right kind of file, but its content is broken (bad XML, bad JSON, missing fields)."""

    code = "malformed"


class NoRecords(UploadRejected):
    """A readable file of the right kind without any step, distance, energy or activity data; refused
    rather than published, because an empty fact would replace the subject's earlier evidence."""

    code = "no_records"


class UnpackedTooLarge(UploadRejected):
    """A ZIP whose members declare more bytes than the unpacked limit (a ZIP bomb, or no real export)."""

    code = "too_large"


class TooMuchEvidence(UploadRejected):
    """More records (or bytes of them) than one evidence fact may carry (domain/evidence.py's limits,
    which every stage downstream applies too): refused here rather than accepted and then refused."""

    code = "too_much_evidence"
