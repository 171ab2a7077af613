"""Avro bodies written by Python code generated once per schema, for the encode hot path.

The mirror of `eventlog.avro_reader`: fastavro's schemaless writer interprets the schema on every
call; this module turns a record schema into one function per record type that appends the encoded
fields in order (small ints and lengths from a table, strings encoded once). It writes only values of
the exact types the schema names (int for int/long, bool, float for double, str, bytes, list for
arrays, None for null; a [null, T] union picks by `is None`), filling a missing field from its
default. Anything else (another type, a union of several non-null types, maps, enums, fixed,
floats) raises `NotFast`, and `EventSerde` then writes the record with fastavro, whose behaviour
(coercions, error messages) therefore stays what callers see for unusual input. A test checks byte
equality with fastavro on generated values of every schema in `schemas/`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from eventlog.avro_reader import RecordCodeGenerator, full_name

BodyWriter = Callable[[dict[str, Any]], bytes]


class NotFast(Exception):
    """This value is not one the generated writer handles; write it with fastavro."""


class Unsupported(Exception):
    """The schema uses a type this writer does not generate code for."""


_TABLE_SIZE = 4096


def _varint(value: int) -> bytes:
    """Zigzag varint of a long. Large values repeat (an event's time in its envelope and its payload, a
    batch's events of one moment): the last few thousand are kept."""
    encoded = _RECENT.get(value)
    if encoded is not None:
        return encoded
    n = (value << 1) ^ (value >> 63)
    if not 0 <= n < 1 << 64:
        raise NotFast("out of the long range")
    out = bytearray()
    while n > 127:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    if len(_RECENT) >= _RECENT_LIMIT:
        _RECENT.clear()
    encoded = _RECENT[value] = bytes(out)
    return encoded


_RECENT: dict[int, bytes] = {}
_RECENT_LIMIT = 4096


_SMALL = [_varint(n) for n in range(_TABLE_SIZE)]  # counts, lengths and small numbers


def _long(value: Any) -> bytes:
    if type(value) is not int:
        raise NotFast("not an int")
    if 0 <= value < _TABLE_SIZE:
        return _SMALL[value]
    return _varint(value)


def _string(value: Any) -> bytes:
    if type(value) is not str:
        raise NotFast("not a str")
    try:
        data = value.encode()
    except UnicodeEncodeError:
        raise NotFast("not encodable as UTF-8") from None
    size = len(data)
    return (_SMALL[size] if size < _TABLE_SIZE else _varint(size)) + data


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise NotFast("not bytes")
    size = len(value)
    return (_SMALL[size] if size < _TABLE_SIZE else _varint(size)) + value


_PACK_DOUBLE = struct.Struct("<d").pack


def _double(value: Any) -> bytes:
    if type(value) is not float:
        raise NotFast("not a float")
    return _PACK_DOUBLE(value)


def _boolean(value: Any) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise NotFast("not a bool")


def _null(value: Any) -> bytes:
    if value is not None:
        raise NotFast("not None")
    return b""


_PRIMITIVE_WRITERS: dict[str, str] = {
    "null": "_null", "boolean": "_boolean", "int": "_long", "long": "_long", "double": "_double",
    "bytes": "_bytes", "string": "_string",
}
_MISSING = object()


class _Generator(RecordCodeGenerator):
    def __init__(self) -> None:
        super().__init__()
        self.defaults: dict[str, Any] = {}

    def record(self, schema: dict[str, Any], namespace: str) -> str:
        function, space = self.claim(schema, namespace)
        if space is None:
            return function
        lines = [f"def {function}(record, out):", "    if type(record) is not dict:",
                 "        raise NotFast('not a dict')"]
        for field in schema["fields"]:
            value = self.fresh("v")
            if "default" in field:
                default = self.fresh("_default")
                self.defaults[default] = field["default"]
                lines.append(f"    {value} = record.get({field['name']!r}, {default})")
            else:
                lines.append(f"    {value} = record[{field['name']!r}]")
            self.value(lines, 1, field["type"], value, space)
        self.functions.append("\n".join(lines))
        return function

    def value(self, lines: list[str], depth: int, schema: Any, value: str, namespace: str) -> None:
        pad = "    " * depth
        if isinstance(schema, dict) and schema["type"] in _PRIMITIVE_WRITERS:
            schema = schema["type"]  # logical types: written from the plain value (epoch millis as int)
        if schema == "string":  # inlined: the most common field
            data = self.fresh("data")
            lines += [f"{pad}if type({value}) is not str:", f"{pad}    raise NotFast('not a str')",
                      f"{pad}{data} = {value}.encode()",
                      f"{pad}out.append(_SMALL[len({data})] if len({data}) < {_TABLE_SIZE} else _varint(len({data})))",
                      f"{pad}out.append({data})"]
        elif schema in ("int", "long"):
            lines += [f"{pad}if type({value}) is not int:", f"{pad}    raise NotFast('not an int')",
                      f"{pad}out.append(_SMALL[{value}] if 0 <= {value} < {_TABLE_SIZE} else _varint({value}))"]
        elif isinstance(schema, str) and schema in _PRIMITIVE_WRITERS:
            if schema != "null":
                lines.append(f"{pad}out.append({_PRIMITIVE_WRITERS[schema]}({value}))")
            else:
                lines.append(f"{pad}_null({value})")
        elif isinstance(schema, list):
            others = [branch for branch in schema if branch != "null"]
            if len(schema) != 2 or len(others) != 1:
                raise Unsupported(f"union {schema!r}")
            null_index = schema.index("null")
            lines += [f"{pad}if {value} is None:", f"{pad}    out.append({_SMALL[null_index * 1]!r})",
                      f"{pad}else:", f"{pad}    out.append({_SMALL[1 - null_index]!r})"]
            self.value(lines, depth + 1, others[0], value, namespace)
        elif isinstance(schema, dict) and schema["type"] == "record":
            lines.append(f"{pad}{self.record(schema, namespace)}({value}, out)")
        elif isinstance(schema, dict) and schema["type"] == "array":
            item = self.fresh("item")
            lines += [f"{pad}if type({value}) is not list:", f"{pad}    raise NotFast('not a list')",
                      f"{pad}if {value}:", f"{pad}    out.append(_long(len({value})))",
                      f"{pad}    for {item} in {value}:"]
            self.value(lines, depth + 2, schema["items"], item, namespace)
            lines.append(f"{pad}out.append(b'\\x00')")
        elif isinstance(schema, str) and full_name(schema, namespace) in self.named:
            lines.append(f"{pad}{self.named[full_name(schema, namespace)]}({value}, out)")
        else:
            raise Unsupported(f"Avro type {schema!r}")


def compile_writer(schema: dict[str, Any]) -> BodyWriter | None:
    """A writer of bodies for `schema` (a record as parsed from JSON, named types inline where first
    used); None when the schema has a type this module does not generate code for."""
    generator = _Generator()
    try:
        entry = generator.record(schema, schema.get("namespace", ""))
    except Unsupported:
        return None
    namespace: dict[str, Any] = {"NotFast": NotFast, "_SMALL": _SMALL, "_varint": _varint, "_long": _long, "_string": _string, "_bytes": _bytes,
                                 "_double": _double, "_boolean": _boolean, "_null": _null, **generator.defaults}
    exec(compile("\n\n".join(generator.functions), f"<avro writer {schema.get('name')}>", "exec"), namespace)
    write_record = namespace[entry]

    def write(record: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        try:
            write_record(record, out)
        except (KeyError, TypeError, UnicodeEncodeError) as exc:  # a missing field without default, a lone
            # surrogate, ...
            raise NotFast(repr(exc)) from None
        return b"".join(out)

    return write
