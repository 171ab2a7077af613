"""The generated Avro readers and writers against fastavro's: equal values and equal bytes for every
schema in schemas/, refusal of truncated, overlong and out-of-range input, fastavro for unusual values."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog.avro_reader import compile_reader
from eventlog.avro_writer import NotFast
from eventlog.serde import SINGLE_OBJECT_MAGIC, EventSerde, UndecodableMessage, default_catalogue

PRIMITIVES = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "double": st.floats(allow_nan=False),
    "bytes": st.binary(max_size=40),
    "string": st.text(max_size=40) | st.text(min_size=60, max_size=120),  # one- and two-byte lengths
}


def strategy(schema: Any, named: dict[str, Any], namespace: str = "") -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of([strategy(branch, named, namespace) for branch in schema])
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return PRIMITIVES[schema]
        return st.deferred(lambda: named[schema if "." in schema else f"{namespace}.{schema}"])
    kind = schema["type"]
    if kind in PRIMITIVES:
        return PRIMITIVES[kind]
    if kind == "array":
        return st.lists(strategy(schema["items"], named, namespace), max_size=3)
    assert kind == "record", kind
    space = schema.get("namespace", namespace)
    full = schema["name"] if "." in schema["name"] else f"{space}.{schema['name']}"
    record = st.fixed_dictionaries({f["name"]: strategy(f["type"], named, full.rpartition(".")[0])
                                    for f in schema["fields"]})
    named[full] = record
    return record


CATALOGUE = default_catalogue()
VERSIONS = [v for versions in CATALOGUE.versions.values() for v in versions.values()]


def raw_schema(version: Any) -> dict[str, Any]:
    return json.loads(version.document)


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: f"{v.event_type}.v{v.version}")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_schema_reads_as_fastavro_reads_it(version: Any, data: st.DataObject) -> None:
    assert version.reader is not None, f"{version.event_type} v{version.version} fell back to fastavro"
    record = data.draw(strategy(raw_schema(version), {}))
    body = io.BytesIO()
    schemaless_writer(body, version.plain, record)
    encoded = body.getvalue()
    expected = schemaless_reader(io.BytesIO(encoded), version.plain, None)
    assert version.reader(encoded, 0) == (expected, len(encoded))
    prefixed = b"\x09" * 7 + encoded  # read from an offset, as the serde does after the framing
    assert version.reader(prefixed, 7) == (expected, len(prefixed))
    for cut in {0, len(encoded) // 2, len(encoded) - 1} - {len(encoded)}:
        with pytest.raises((IndexError, ValueError)):
            version.reader(encoded[:cut], 0)
    if version.writer is None:  # the 27-record union of ChainEvent.args: the indexer has its own writer
        assert version.event_type == "ChainEvent"
    else:
        written = io.BytesIO()
        schemaless_writer(written, version.writable, record)  # with the logical types, as EventSerde writes
        assert version.writer(record) == written.getvalue() == encoded


def test_unusual_values_are_written_by_fastavro() -> None:
    serde = EventSerde()
    envelope = {"event_id": "e", "occurred_at": 1_000, "producer": "p"}
    block = {"chain_id": 1, "number": 5, "hash": "h", "parent_hash": "p", "timestamp": 7}
    version = CATALOGUE.latest("BlockReverted")
    record = {"envelope": {**envelope, "event_type": "BlockReverted", "schema_version": version.version}, **block}
    for unusual in ({"number": True}, {"envelope": {**record["envelope"], "occurred_at": datetime(2026, 1, 1, tzinfo=UTC)}},
                    {"hash": "\ud800"}, {"number": 2**70}, {"timestamp": 7.0}):
        changed = {**record, **unusual}
        with pytest.raises(NotFast):
            version.writer(changed)
        body = io.BytesIO()
        try:
            schemaless_writer(body, version.writable, changed)
        except Exception as exc:  # fastavro refuses it: so does the serde, with fastavro's error
            with pytest.raises(type(exc)):
                serde.encode("lc.chain.blocks", "BlockReverted", changed["envelope"], {
                    k: v for k, v in changed.items() if k != "envelope"})
        else:
            assert serde.encode("lc.chain.blocks", "BlockReverted", changed["envelope"], {
                k: v for k, v in changed.items() if k != "envelope"}) == serde.frame(
                "lc.chain.blocks", "BlockReverted") + body.getvalue()
    missing = {k: v for k, v in record.items() if k != "parent_hash"}
    with pytest.raises(NotFast):
        version.writer(missing)


def test_named_types_unsupported_types_and_refusals() -> None:
    schema = {"type": "record", "name": "Outer", "namespace": "t", "fields": [
        {"name": "first", "type": {"type": "record", "name": "Inner", "fields": [{"name": "n", "type": "long"}]}},
        {"name": "again", "type": ["null", "Inner"]},
        {"name": "items", "type": {"type": "array", "items": "t.Inner"}},
        {"name": "tag", "type": ["null", "string", "long", "boolean", "double"]},
    ]}
    reader = compile_reader(schema)
    assert reader is not None
    value = {"first": {"n": -300}, "again": {"n": 2**40}, "items": [{"n": 1}, {"n": -1}], "tag": 1.5}
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(schema), value)
    assert reader(body.getvalue(), 0) == (value, len(body.getvalue()))
    with pytest.raises(ValueError, match="union index"):
        reader(b"\x02\x0a", 0)  # first.n = 1, then union index 5 of a 2-branch union
    with pytest.raises(ValueError):
        reader(b"\x02\x00\x00\x07", 0)  # a negative block count needs its byte size: missing
    assert compile_reader({"type": "record", "name": "M", "fields": [{"name": "m", "type": {
        "type": "map", "values": "long"}}]}) is None
    assert compile_reader({"type": "record", "name": "F", "fields": [{"name": "f", "type": "float"}]}) is None
    string = compile_reader({"type": "record", "name": "S", "fields": [{"name": "s", "type": "string"}]})
    assert string is not None
    for bad in (b"\x03ab", b"\x08ab", b"\x04\xff\xfe"):  # negative length, past the end, not UTF-8
        with pytest.raises(ValueError):
            string(bad, 0)


def test_ints_and_string_lengths_at_the_inlined_sizes() -> None:
    """The generated code reads one- and two-byte ints and string lengths inline and longer ones in a loop
    or through `_bytes`: each size and its edges read as fastavro reads them; overlong and cut varints
    and a string past the end are refused."""
    schema = {"type": "record", "name": "E", "fields": [{"name": "n", "type": "long"}, {"name": "s", "type": "string"}]}
    reader = compile_reader(schema)
    assert reader is not None
    ints = [0, -1, 63, -64, 64, -65, 8191, -8192, 8192, -8193, 1_740_787_200_000, 2**62, 2**63 - 1, -(2**63)]
    texts = ["", "x" * 63, "x" * 64, "é" * 40, "x" * 8191, "x" * 8192, "é" * 5000]
    for n, text in zip(ints, texts * 2, strict=True):
        body = io.BytesIO()
        schemaless_writer(body, parse_schema(schema), {"n": n, "s": text})
        encoded = body.getvalue()
        assert reader(encoded, 0) == ({"n": n, "s": text}, len(encoded))
        for cut in range(1, min(len(encoded), 14)):  # every cut inside the int and the string's length
            with pytest.raises((IndexError, ValueError)):
                reader(encoded[:cut], 0)
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        reader(b"\xff" * 10 + b"\x01\x00", 0)
    with pytest.raises(ValueError, match="string past the end"):
        reader(b"\x00\x80\x01" + b"x" * 63, 0)  # a two-byte length of 64, one byte short
    with pytest.raises(ValueError):
        reader(b"\x00\x81\x01" + b"x" * 64, 0)  # a negative two-byte length


def test_the_serde_refuses_trailing_bytes_and_corrupt_bodies() -> None:
    serde = EventSerde()
    encoded = serde.encode("lc.chain.blocks", "BlockReverted", {"event_id": "e", "occurred_at": 1, "producer": "p"},
                           {"chain_id": 1, "number": 5, "hash": "0x" + "00" * 32, "parent_hash": "0x" + "11" * 32,
                            "timestamp": 7, "ancestor_number": 4})
    assert encoded.startswith(SINGLE_OBJECT_MAGIC)
    assert serde.decode(encoded).payload["number"] == 5
    with pytest.raises(UndecodableMessage, match="bytes after"):
        serde.decode(encoded + b"\x00")
    with pytest.raises(UndecodableMessage, match="corrupt BlockReverted"):
        serde.decode(encoded[:-3])
