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
