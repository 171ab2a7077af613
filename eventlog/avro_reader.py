"""Avro bodies read by Python code generated once per writer schema, for the decode hot path.

fastavro's schemaless reader interprets the schema on every call: per field a dispatch on its type
and a function call, a union of 27 records (ChainEvent.args) resolved branch by branch. This module
turns a schema into the source of one function per record type that reads the fields in order with
the reads inlined (one look at the first byte decides most ints and string lengths) and a table
lookup per union, then compiles it. It reads what fastavro's reader reads with the same schema as
writer and reader (no schema resolution) and gives equal values: records as dicts in field order,
ints, strings (strict UTF-8), booleans (any non-zero byte is true), doubles, bytes, arrays, None.
Truncated input raises; a schema with anything else (maps, enums, fixed, floats) is not compiled
(`compile_reader` returns None) and `EventSerde` keeps fastavro for it. A test checks equality with
fastavro on generated values of every schema in `schemas/`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

BodyReader = Callable[[bytes, int], tuple[Any, int]]  # (data, start) -> (value, end)


class Unsupported(Exception):
    """The schema uses a type this reader does not generate code for."""


class TruncatedBody(ValueError):
    """The body ends before the value does (or declares a negative length)."""


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint that did not fit in one byte (the generated code inlines the one-byte case)."""
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = _long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise TruncatedBody(f"{size} bytes declared at {pos}, {len(data) - pos} left")
    return data[pos:end], end


_DOUBLE = struct.Struct("<d").unpack_from


def _double(data: bytes, pos: int) -> tuple[float, int]:
    if pos + 8 > len(data):
        raise TruncatedBody("double past the end")
    return _DOUBLE(data, pos)[0], pos + 8


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class _Generator:
    def __init__(self) -> None:
        self.functions: list[str] = []  # source of every generated function, callees first
        self.named: dict[str, str] = {}  # full record name -> its function's name
        self.tables: dict[str, tuple[str, ...]] = {}  # union dispatch tables: name -> function names
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def record(self, schema: dict[str, Any], namespace: str) -> str:
        """The name of the function reading this record (generated on first sight of its name)."""
        full = _full_name(schema["name"], schema.get("namespace", namespace))
        if full in self.named:
            return self.named[full]
        function = self.fresh("_record")
        self.named[full] = function
        space = full.rpartition(".")[0]
        lines = [f"def {function}(data, pos):", "    size = len(data)"]
        items = []
        for field in schema["fields"]:
            target = self.fresh("v")
            self.value(lines, 1, field["type"], target, space)
            items.append(f"{field['name']!r}: {target}")
        lines.append(f"    return {{{', '.join(items)}}}, pos")
        self.functions.append("\n".join(lines))
        return function

    def value(self, lines: list[str], depth: int, schema: Any, target: str, namespace: str) -> None:
        pad = "    " * depth
        if isinstance(schema, dict) and schema["type"] in _PRIMITIVES:
            schema = schema["type"]  # a primitive with attributes (a logical type): read as the plain value,
            # as fastavro reads the project's `plain` schemas
        if schema in ("int", "long"):
            lines += [f"{pad}b = data[pos]",
                      f"{pad}if b < 0x80:",
                      f"{pad}    {target} = (b >> 1) ^ -(b & 1)",
                      f"{pad}    pos += 1",
                      f"{pad}else:",
                      f"{pad}    {target}, pos = _long(data, pos)"]
        elif schema == "string":
            lines += [f"{pad}b = data[pos]",
                      f"{pad}if b < 0x80 and not b & 1:",
                      f"{pad}    end = pos + 1 + (b >> 1)",
                      f"{pad}    if end > size:",
                      f"{pad}        raise TruncatedBody('string past the end')",
                      f"{pad}    {target} = data[pos + 1:end].decode()",
                      f"{pad}    pos = end",
                      f"{pad}else:",
                      f"{pad}    {target}, pos = _bytes(data, pos)",
                      f"{pad}    {target} = {target}.decode()"]
        elif schema == "boolean":
            lines += [f"{pad}{target} = data[pos] != 0", f"{pad}pos += 1"]
        elif schema == "null":
            lines.append(f"{pad}{target} = None")
        elif schema == "double":
            lines.append(f"{pad}{target}, pos = _double(data, pos)")
        elif schema == "bytes":
            lines.append(f"{pad}{target}, pos = _bytes(data, pos)")
        elif isinstance(schema, list):
            self.union(lines, depth, schema, target, namespace)
        elif isinstance(schema, dict) and schema["type"] == "record":
            lines.append(f"{pad}{target}, pos = {self.record(schema, namespace)}(data, pos)")
        elif isinstance(schema, dict) and schema["type"] == "array":
            lines.append(f"{pad}{target}, pos = _array(data, pos, {self.function_for(schema['items'], namespace)})")
        elif isinstance(schema, str) and _full_name(schema, namespace) in self.named:  # a record named before
            lines.append(f"{pad}{target}, pos = {self.named[_full_name(schema, namespace)]}(data, pos)")
        else:
            raise Unsupported(f"Avro type {schema!r}")

    def function_for(self, schema: Any, namespace: str) -> str:
        """A function reading one value of `schema` (records have theirs; others get a small one)."""
        if isinstance(schema, dict) and schema.get("type") == "record":
            return self.record(schema, namespace)
        function = self.fresh("_value")
        lines = [f"def {function}(data, pos):", "    size = len(data)"]
        self.value(lines, 1, schema, "result", namespace)
        lines.append("    return result, pos")
        self.functions.append("\n".join(lines))
        return function

    def union(self, lines: list[str], depth: int, branches: list[Any], target: str, namespace: str) -> None:
        pad = "    " * depth
        lines.append(f"{pad}b = data[pos]")
        lines.append(f"{pad}pos += 1")
        if len(branches) <= 3:  # [null, x] and the like: compare, inline
            for index, branch in enumerate(branches):
                lines.append(f"{pad}{'if' if index == 0 else 'elif'} b == {index * 2}:")
                self.value(lines, depth + 1, branch, target, namespace)
            lines += [f"{pad}else:", f"{pad}    raise ValueError(f'union index {{b}} out of range')"]
            return
        table = self.fresh("_union")
        self.tables[table] = tuple(self.function_for(branch, namespace) for branch in branches)
        lines += [f"{pad}if b & 1 or b >= {2 * len(branches)}:",
                  f"{pad}    raise ValueError(f'union index byte {{b}} out of range')",
                  f"{pad}{target}, pos = {table}[b >> 1](data, pos)"]


def _array(data: bytes, pos: int, item: BodyReader) -> tuple[list[Any], int]:
    items: list[Any] = []
    while True:
        count, pos = _long(data, pos)
        if count == 0:
            return items, pos
        if count < 0:  # a block with its size in bytes after the count
            count = -count
            _size, pos = _long(data, pos)
        for _ in range(count):
            value, pos = item(data, pos)
            items.append(value)


def compile_reader(schema: dict[str, Any]) -> BodyReader | None:
    """A reader for bodies written with `schema` (a record, as parsed from JSON, named types inline
    where first used); None when the schema has a type this module does not generate code for."""
    generator = _Generator()
    try:
        entry = generator.record(schema, schema.get("namespace", ""))
    except Unsupported:
        return None
    namespace: dict[str, Any] = {"_long": _long, "_bytes": _bytes, "_double": _double, "_array": _array,
                                 "TruncatedBody": TruncatedBody}
    source = "\n\n".join(generator.functions)
    exec(compile(source, f"<avro reader {schema.get('name')}>", "exec"), namespace)  # source generated above
    for table, functions in generator.tables.items():
        namespace[table] = tuple(namespace[f] for f in functions)
    return namespace[entry]
