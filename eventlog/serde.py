"""Avro encoding of events on fastavro, in the two framings the pipeline speaks.

- With a schema registry: Confluent wire format (magic 0x00, 4-byte schema id, Avro body), subjects
  named `<topic>-<record name>` (TopicRecordNameStrategy: several event types share a topic).
- Without one: Avro single-object encoding (0xC3 0x01, 8-byte CRC-64-AVRO fingerprint of the writer
  schema, Avro body); the fingerprint is looked up among every schema version in `schemas/`.

The reader accepts both and resolves the writer's schema to the newest version of the same record
(Avro schema resolution), so a replay from offset zero reads every version ever written.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from eventlog.avro_reader import BodyReader, compile_reader
from eventlog.avro_writer import BodyWriter, NotFast, compile_writer
from schemas import SCHEMAS_DIR

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
ENVELOPE_REF = "lc.Envelope"


SINGLE_OBJECT_FRAME = 10  # magic + 8-byte fingerprint
CONFLUENT_FRAME = 5  # magic + 4-byte schema id


class UndecodableMessage(ValueError):
    """The bytes are not an event this pipeline can read; the message says why."""


class SchemaRefused(RuntimeError):
    """The schema registry refused to register an event type's schema (an incompatible change)."""


@dataclass(frozen=True)
class SchemaVersion:
    event_type: str
    version: int
    schema: dict[str, Any]  # parsed (fastavro) schema, envelope inlined
    # Parsed with fastavro's default hint (without it fastavro re-parses the schema on every call, ~3x
    # slower): `plain` for reading, without logical types so epoch millis stay ints; `writable` for writing.
    plain: dict[str, Any]
    writable: dict[str, Any]
    canonical: str
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO
    # the schema as written (defaults kept, envelope inlined): what a registry gets, since the parsing
    # canonical form drops defaults and a registry would then judge an added field with a default incompatible
    document: str = ""
    # the body reader generated for this schema (eventlog.avro_reader); None = fastavro's reader
    reader: BodyReader | None = field(default=None, compare=False, repr=False)
    # the body writer generated for this schema (eventlog.avro_writer); None = fastavro's writer
    writer: BodyWriter | None = field(default=None, compare=False, repr=False)


class Event(NamedTuple):
    """A decoded event: its type, its envelope fields and its payload (everything but the envelope).

    A NamedTuple rather than a frozen dataclass: projectors build hundreds of thousands a second.
    """

    event_type: str
    event_id: str
    occurred_at: int  # epoch milliseconds
    producer: str
    schema_version: int
    payload: dict[str, Any]


class SchemaCatalogue:
    """Every `<EventType>.v<N>.avsc` in a folder, indexed by type, version and fingerprint."""

    def __init__(self, folder: Path = SCHEMAS_DIR) -> None:
        envelope = json.loads((folder / "Envelope.avsc").read_text())
        self.versions: dict[str, dict[int, SchemaVersion]] = {}
        self.by_fingerprint: dict[bytes, SchemaVersion] = {}
        self._latest: dict[str, SchemaVersion] = {}
        for path in sorted(folder.glob("*.v*.avsc")):
            event_type, _, version_text = path.name.removesuffix(".avsc").rpartition(".v")
            raw = json.loads(path.read_text())
            raw["fields"] = [
                {**f, "type": envelope} if f["type"] == ENVELOPE_REF else f for f in raw["fields"]
            ]
            if raw["name"] != event_type:
                raise ValueError(f"{path.name}: record name {raw['name']!r} does not match the file name")
            parsed = parse_schema(raw, _write_hint=False)
            canonical = to_parsing_canonical_form(parsed)
            version = SchemaVersion(
                event_type=event_type,
                version=int(version_text),
                schema=parsed,
                plain=parse_schema(_without_logical_types(raw)),
                writable=parse_schema(raw),
                canonical=canonical,
                fingerprint=struct.pack("<Q", int(fingerprint(canonical, "CRC-64-AVRO"), 16)),
                document=json.dumps(raw, separators=(",", ":")),
                reader=compile_reader(_without_logical_types(raw)),
                writer=compile_writer(raw),
            )
            self.versions.setdefault(event_type, {})[version.version] = version
            self.by_fingerprint[version.fingerprint] = version

    def latest(self, event_type: str) -> SchemaVersion:
        latest = self._latest.get(event_type)
        if latest is None:
            try:
                versions = self.versions[event_type]
            except KeyError:
                raise KeyError(f"no schema for event type {event_type!r} in {SCHEMAS_DIR}") from None
            latest = self._latest[event_type] = versions[max(versions)]
        return latest


@lru_cache(maxsize=1)
def default_catalogue() -> SchemaCatalogue:
    return SchemaCatalogue()


class EventSerde:
    """Encodes payloads into framed Avro bytes and decodes either framing back into `Event`s."""

    def __init__(self, schema_registry_url: str = "", catalogue: SchemaCatalogue | None = None) -> None:
        self.catalogue = catalogue or default_catalogue()
        self._registry = registry_client(schema_registry_url) if schema_registry_url else None
        self._ids_by_subject: dict[str, int] = {}
        self._writers_by_id: dict[int, SchemaVersion] = {}

    def encode(self, topic: str, event_type: str, envelope: dict[str, Any], payload: dict[str, Any]) -> bytes:
        version = self.catalogue.latest(event_type)
        record = {"envelope": {**envelope, "event_type": event_type, "schema_version": version.version}, **payload}
        if version.writer is not None:
            try:
                return self._frame(topic, version) + version.writer(record)
            except NotFast:
                pass  # an unusual value (a datetime, a bool for a long, a missing field...): fastavro decides
        body = io.BytesIO()
        body.write(self._frame(topic, version))
        schemaless_writer(body, version.writable, record)
        return body.getvalue()

    def frame(self, topic: str, event_type: str) -> bytes:
        """The bytes an encoded `event_type` on `topic` starts with (magic and schema fingerprint or id)."""
        return self._frame(topic, self.catalogue.latest(event_type))

    def _frame(self, topic: str, version: SchemaVersion) -> bytes:
        if self._registry is None:
            return SINGLE_OBJECT_MAGIC + version.fingerprint
        return CONFLUENT_MAGIC + struct.pack(">I", self._schema_id(topic, version))

    def decode(self, data: bytes | None) -> Event:
        if not data:
            raise UndecodableMessage("empty message value")
        size = frame_length(data)
        if size == SINGLE_OBJECT_FRAME:
            writer = self.catalogue.by_fingerprint.get(data[2:size])
            if writer is None:
                raise UndecodableMessage(f"unknown schema fingerprint {data[2:size].hex()}")
        else:
            writer = self._writer_by_id(struct.unpack(">I", data[1:size])[0])
        reader = self.catalogue.latest(writer.event_type)
        try:
            if writer.reader is not None and reader.canonical == writer.canonical:  # the common case: generated code
                record, end = writer.reader(data, size)
                if end != len(data):
                    raise UndecodableMessage(f"{len(data) - end} bytes after the {writer.event_type} event")
            else:
                record = self._fastavro_read(data[size:], writer, reader)
        except UndecodableMessage:
            raise
        except Exception as exc:  # truncated or corrupt bodies raise several types
            raise UndecodableMessage(f"corrupt {writer.event_type} body: {repr(exc)[:300]}") from exc
        envelope = record.pop("envelope")
        return Event(writer.event_type, envelope["event_id"], envelope["occurred_at"], envelope["producer"],
                     envelope["schema_version"], record)

    @staticmethod
    def _fastavro_read(body: bytes, writer: SchemaVersion, reader: SchemaVersion) -> dict[str, Any]:
        # resolution only when versions differ: reading with the writer's own schema is much faster
        reader_schema = None if reader.canonical == writer.canonical else reader.plain
        stream = io.BytesIO(body)
        record = schemaless_reader(stream, writer.plain, reader_schema)
        if stream.tell() != len(body):  # no writer appends bytes: they are not part of the event
            raise UndecodableMessage(f"{len(body) - stream.tell()} bytes after the {writer.event_type} event")
        return record

    def _schema_id(self, topic: str, version: SchemaVersion) -> int:
        subject = f"{topic}-lc.{version.event_type}"
        schema_id = self._ids_by_subject.get(subject)
        if schema_id is None:
            from confluent_kafka.schema_registry import Schema
            from confluent_kafka.schema_registry.error import SchemaRegistryError

            try:
                schema_id = self._registry.register_schema(subject, Schema(version.document, "AVRO"))
            except SchemaRegistryError as exc:
                if exc.http_status_code not in (409, 422):  # 409 incompatible, 422 invalid; others are outages
                    raise
                raise SchemaRefused(f"the schema registry refused {version.event_type} v{version.version} for "
                                    f"subject {subject}: {exc.error_message} (HTTP {exc.http_status_code}); "
                                    f"schemas may only change BACKWARD_TRANSITIVE (add fields with defaults)") from exc
            self._ids_by_subject[subject] = schema_id
            self._writers_by_id[schema_id] = version
        return schema_id

    def _writer_by_id(self, schema_id: int) -> SchemaVersion:
        writer = self._writers_by_id.get(schema_id)
        if writer is not None:
            return writer
        if self._registry is None:
            raise UndecodableMessage(f"schema id {schema_id} (registry framing) but no schema registry configured")
        try:
            registered = self._registry.get_schema(schema_id)
        except Exception as exc:
            raise UndecodableMessage(f"schema id {schema_id} not found in the registry: {exc}") from exc
        raw = json.loads(registered.schema_str)
        parsed = parse_schema(raw, _write_hint=False)
        canonical = to_parsing_canonical_form(parsed)
        event_type = parsed["name"].rpartition(".")[2]
        known = self.catalogue.versions.get(event_type, {})
        version_number = next((v.version for v in known.values() if v.canonical == canonical), 0)
        plain = parse_schema(_without_logical_types(raw))
        writer = SchemaVersion(event_type, version_number, parsed, plain, parsed, canonical, b"", registered.schema_str,
                               compile_reader(_without_logical_types(raw)))
        self._writers_by_id[schema_id] = writer
        return writer


def frame_length(data: bytes) -> int:
    """How many bytes of an encoded event come before its Avro body, in whichever framing it has."""
    if data[:2] == SINGLE_OBJECT_MAGIC:
        return SINGLE_OBJECT_FRAME
    if data[:1] == CONFLUENT_MAGIC and len(data) >= CONFLUENT_FRAME:
        return CONFLUENT_FRAME
    raise UndecodableMessage(f"not an Avro event: leading bytes {data[:4].hex()}")


@cache
def registry_client(url: str) -> Any:
    """One registry client per URL and process (`mock://...` gives confluent-kafka's in-memory one)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient.new_client({"url": url})


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(item) for item in schema]
    return schema
