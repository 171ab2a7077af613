"""The encoding of stage state in changelog topics: JSON shaped by the state's own type hints.

A value is the JSON of one state object (a frozen dataclass, a NamedTuple, or containers of them):

- a dataclass is an object of its fields by name; a NamedTuple is an array of its fields in order;
- tuple, list, frozenset and set are arrays (a set's items sorted when they can be); dict is an
  object (non-string keys are written as strings and read back by the key's type);
- datetime is ISO 8601 text, ZoneInfo its key; str, int, float, bool, None and values typed `Any` or
  `object` (parsed JSON such as evidence records and rule parameters) are themselves.

Reading is driven by the type hints of the state class (no type tags in the data): an unknown field
is ignored and a missing one takes its default, so adding a field with a default reads every value
written before (as Avro's BACKWARD rule). Renaming or retyping a field is not compatible: the stage
then bumps its `state_version`, and a restore that finds another version rebuilds the state from the
input topics (docs/decisions.md, "Stage state in compacted changelog topics").
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from domain.compact_json import compact_json_encoder

T = TypeVar("T")
Convert = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _default(value: Any) -> Any:
    """json.dumps' hook for what JSON does not know."""
    cls = type(value)
    if dataclasses.is_dataclass(value):
        return {name: getattr(value, name) for name in _field_names(cls)}
    if isinstance(value, frozenset | set):
        try:
            return sorted(value)
        except TypeError:  # items without an order (dataclasses): by their encoding, so equal sets encode alike
            return sorted(value, key=json_text)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, ZoneInfo):
        return value.key
    raise TypeError(f"state value of type {cls.__name__} has no changelog encoding")


_ENCODER = compact_json_encoder(default=_default)


_DECODER = json.JSONDecoder()


def json_text(value: object) -> str:
    return _ENCODER(value)


def encode_json(value: object) -> bytes:
    return json_text(value).encode()


def _optional(inner: Convert) -> Convert:
    if inner is _identity:
        return _identity
    return lambda v: None if v is None else inner(v)


def _sequence(make: Callable[[Any], Any], item: Convert) -> Convert:
    if item is _identity:
        return make
    return lambda v: make(map(item, v))


def _mapping(key: Convert, value: Convert) -> Convert:
    if key is _identity and value is _identity:
        return _identity
    return lambda v: {key(k): value(x) for k, x in v.items()}


def _dataclass(cls: type) -> Convert:
    hints = typing.get_type_hints(cls)
    converters = {f.name: converter(hints[f.name]) for f in dataclasses.fields(cls) if f.init}
    names = frozenset(converters)
    special = [(name, conv) for name, conv in converters.items() if conv is not _identity]

    def convert(value: dict[str, Any]) -> Any:
        if value.keys() <= names:  # the usual case (no field unknown to this version): convert in place
            for name, conv in special:
                if name in value:
                    value[name] = conv(value[name])
            return cls(**value)
        return cls(**{name: conv(value[name]) for name, conv in converters.items() if name in value})

    return convert


def _named_tuple(cls: type) -> Convert:
    hints = typing.get_type_hints(cls)
    converters = [converter(hints[name]) for name in cls._fields]  # type: ignore[attr-defined]

    def convert(value: list[Any]) -> Any:
        return cls(*(conv(v) for conv, v in zip(converters, value, strict=False)))

    return convert


def _int(value: Any) -> int:
    return value if type(value) is int else int(value)  # dict keys arrive as text


_SCALARS: dict[Any, Convert] = {
    str: _identity, float: _identity, bool: _identity, type(None): _identity, Any: _identity, object: _identity,
    int: _int, datetime: datetime.fromisoformat, ZoneInfo: ZoneInfo,
}


@cache
def converter(hint: Any) -> Convert:
    """The function that turns parsed JSON into a value of type `hint`."""
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) == 1:
            return _optional(converter(present[0]))
        if all(a in _SCALARS for a in present):
            return _identity
        raise TypeError(f"{hint}: a union of structured types has no changelog encoding")
    if origin is typing.Literal:
        return _identity
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(tuple, converter(args[0]))
        items = [converter(a) for a in args]
        return lambda v: tuple(conv(x) for conv, x in zip(items, v, strict=True))
    if origin is list:
        return _sequence(list, converter(args[0]) if args else _identity)
    if origin in (frozenset, set):
        return _sequence(origin, converter(args[0]) if args else _identity)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not args:
            return _identity
        return _mapping(converter(args[0]), converter(args[1]))
    if hint in (list, tuple, frozenset, set):
        return hint
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint)
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        return _named_tuple(hint)
    raise TypeError(f"{hint!r} has no changelog encoding")


class StateCodec(Generic[T]):
    """Encodes and decodes one state type (checked when built: an unsupported field fails here)."""

    def __init__(self, cls: type[T]) -> None:
        self.cls = cls
        self._decode = converter(cls)

    def encode(self, value: T) -> bytes:
        return encode_json(value)

    def decode(self, data: bytes) -> T:
        return typing.cast(T, self._decode(_DECODER.decode(data.decode())))
