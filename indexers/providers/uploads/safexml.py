"""Expat parsers that refuse entity declarations and external references.

A DOCTYPE with an internal subset is allowed (every Apple Health export has one, with ELEMENT and
ATTLIST declarations only); any ENTITY declaration, internal or external, is refused as soon as the
parser meets it, before anything could be expanded (billion laughs, quadratic blow-up, XXE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from xml.parsers import expat

from indexers.providers.uploads.errors import MalformedUpload, UnsafeXml

CHUNK_BYTES = 1 << 20

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


def feed(parser: expat.XMLParserType, stream: BinaryIO, what: str, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Parse the whole stream in chunks; returns the bytes read. Expat errors become MalformedUpload."""
    total = 0
    try:
        while chunk := stream.read(chunk_bytes):
            total += len(chunk)
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise MalformedUpload(f"{what} is not well-formed XML: {expat.errors.messages[exc.code]} "
                              f"(line {exc.lineno}, column {exc.offset})") from None
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

    def start(name: str, attrs: dict[str, str]) -> None:
        text_parts.clear()
        events.append(("start", local_name(name), attrs, ""))

    def end(name: str) -> None:
        events.append(("end", local_name(name), {}, "".join(text_parts).strip()))
        text_parts.clear()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text_parts.append
    try:
        while chunk := stream.read(CHUNK_BYTES):
            parser.Parse(chunk, False)
            yield from events
            events.clear()
        parser.Parse(b"", True)
        yield from events
    except expat.ExpatError as exc:
        raise MalformedUpload(f"{what} is not well-formed XML: {expat.errors.messages[exc.code]} "
                              f"(line {exc.lineno}, column {exc.offset})") from None
