"""Expat parsers that refuse entity declarations, external references and oversized tokens.

A DOCTYPE with an internal subset is allowed (every Apple Health export has one, with ELEMENT and
ATTLIST declarations only); any ENTITY declaration, internal or external, is refused as soon as the
parser meets it, before anything could be expanded (billion laughs, quadratic blow-up, XXE).

Bounded memory and time whatever the file: expat keeps an unfinished token (a start tag with its
attributes, a comment, a declaration) in its buffer and, before expat 2.6, scans it again from its
start on every chunk fed, so one 512 MiB attribute costs gigabytes and minutes. After every chunk the
parser's position (the start of the token it is still waiting to finish) is compared with the bytes
fed: a token longer than `MAX_TOKEN_BYTES` is refused at once. Text is delivered in pieces as it
arrives; `iter_elements` refuses an element whose text exceeds `MAX_TEXT_CHARS`. Expat keeps every
open element on its stack (about 100 bytes each, so a million `<a>` cost 100 MB): `iter_elements`
refuses nesting deeper than `MAX_DEPTH` at once, a `DepthMeter` checked after each chunk `feed` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from xml.parsers import expat

from indexers.providers.uploads.errors import MalformedUpload, UnsafeXml

CHUNK_BYTES = 1 << 20  # also bounds what one chunk can add before the token and depth checks
PULL_CHUNK_BYTES = 64 * 1024  # iter_elements holds the events of one chunk: small chunks, few events
MAX_TOKEN_BYTES = 1 << 20  # a real export's longest token (its DTD) is a few KB
MAX_TEXT_CHARS = 1 << 20  # a real track's longest text (a name, a note) is short
MAX_DEPTH = 1000  # real exports nest a handful of elements deep

StartHandler = Callable[[str, dict[str, str]], None]
EndHandler = Callable[[str], None]


def _refuse_entity(name: str, *_args: Any) -> None:
    raise UnsafeXml(f"XML declares the entity {name!r}; entity declarations are refused (entity expansion attack)")


def _refuse_external(*_args: Any) -> int:
    raise UnsafeXml("XML references an external entity; external references are refused")


def hardened_parser() -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    parser.buffer_text = True
    parser.buffer_size = 1 << 16
    return parser


class XmlTokenTooLarge(UnsafeXml):
    pass


class XmlTooDeep(UnsafeXml):
    pass


class DepthMeter:
    """Open elements counted at chunk ends, for a parser whose handlers must stay cheap: its start
    handler adds to `starts[0]`, its end handler is (or calls) `ends.append`, a C-level call."""

    def __init__(self) -> None:
        self.starts = [0]
        self.ends: list[str] = []
        self.depth = 0

    def check(self, what: str) -> None:
        self.depth += self.starts[0] - len(self.ends)
        self.starts[0] = 0
        self.ends.clear()
        if self.depth > MAX_DEPTH:
            raise XmlTooDeep(f"{what} nests elements more than {MAX_DEPTH} deep; no real export does")


def check_pending_token(parser: expat.XMLParserType, fed: int, what: str, limit: int = MAX_TOKEN_BYTES) -> None:
    """Refuse when expat has been waiting for the end of one token for more than `limit` bytes."""
    position = parser.CurrentByteIndex  # outside a handler: the start of the unfinished token
    if position >= 0 and fed - position > limit:
        raise XmlTokenTooLarge(f"{what} holds a single XML token (tag, attribute, comment or declaration) longer "
                               f"than {limit} bytes, starting at byte {position}; no real export has one")


def _malformed(what: str, exc: expat.ExpatError | LookupError) -> MalformedUpload:
    if isinstance(exc, LookupError):  # the XML declaration names an encoding Python does not know
        return MalformedUpload(f"{what} is not readable XML: {str(exc)[:100]}")
    return MalformedUpload(f"{what} is not well-formed XML: {expat.errors.messages[exc.code]} "
                           f"(line {exc.lineno}, column {exc.offset})")


def feed(parser: expat.XMLParserType, stream: BinaryIO, what: str, chunk_bytes: int = CHUNK_BYTES,
         after_chunk: Callable[[int], object] | None = None) -> int:
    """Parse the whole stream in chunks; returns the bytes read. Expat errors become MalformedUpload,
    an oversized token XmlTokenTooLarge. `after_chunk` gets the bytes fed so far after every chunk (a
    DepthMeter's check, a memory budget)."""
    total = 0
    try:
        while chunk := stream.read(chunk_bytes):
            total += len(chunk)
            parser.Parse(chunk, False)
            check_pending_token(parser, total, what)
            if after_chunk is not None:
                after_chunk(total)
        parser.Parse(b"", True)
    except (expat.ExpatError, LookupError) as exc:
        raise _malformed(what, exc) from None
    return total


def local_name(tag: str) -> str:
    """`{namespace}Name` or `ns:Name` -> `Name`."""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def iter_elements(stream: BinaryIO, what: str) -> Iterator[tuple[str, str, dict[str, str], str]]:
    """(event, local name, attributes, text) for every start and end, streamed and hardened.

    A small pull interface for the track formats (TCX, GPX), whose parsers are easier to read as a
    loop than as callbacks; `text` is the element's character data on `end` (empty on `start`).
    """
    parser = hardened_parser()
    events: list[tuple[str, str, dict[str, str], str]] = []
    text_parts: list[str] = []
    text_chars = 0
    depth = 0

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal text_chars, depth
        depth += 1
        if depth > MAX_DEPTH:
            raise XmlTooDeep(f"{what} nests elements more than {MAX_DEPTH} deep; no real export does")
        text_parts.clear()
        text_chars = 0
        events.append(("start", local_name(name), attrs, ""))

    def end(name: str) -> None:
        nonlocal text_chars, depth
        depth -= 1
        events.append(("end", local_name(name), {}, "".join(text_parts).strip()))
        text_parts.clear()
        text_chars = 0

    def text(data: str) -> None:
        nonlocal text_chars
        text_chars += len(data)
        if text_chars > MAX_TEXT_CHARS:
            raise XmlTokenTooLarge(f"{what} holds an element whose text is longer than {MAX_TEXT_CHARS} characters")
        text_parts.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    fed = 0
    try:
        while chunk := stream.read(PULL_CHUNK_BYTES):
            fed += len(chunk)
            parser.Parse(chunk, False)
            check_pending_token(parser, fed, what)
            yield from events
            events.clear()
        parser.Parse(b"", True)
        yield from events
    except (expat.ExpatError, LookupError) as exc:
        raise _malformed(what, exc) from None
