"""JSON value helpers with the original's JavaScript semantics made explicit (spec/evaluation.md App. C)."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any, TypeGuard

from domain.untrusted import UntrustedInput, loads

_FLOAT_MAX = sys.float_info.max


def is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: bool is excluded (Python's bool is an int), so are NaN, infinities and integers
    too large for a float (`10**400`: Python's JSON reader returns them, float() of them raises)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and -_FLOAT_MAX <= value <= _FLOAT_MAX


def first_number(record: Mapping[str, Any], *keys: str) -> float | None:
    """The first of `keys` whose value is a JSON number (numeric strings do not count)."""
    for key in keys:
        value = record.get(key)
        if value is not None and is_number(value):  # most keys are absent: skip the checks for them
            return float(value)
    return None


def js_truthy(value: object) -> bool:
    """JavaScript truthiness: 0, "", null, NaN and false are falsy; every object and array is truthy."""
    if value is None or value is False:
        return False
    if isinstance(value, float):
        return value != 0 and not math.isnan(value)
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        return value != ""
    return True


def flag(value: object) -> bool:
    """A boolean flag from JSON: like JS truthiness, except that the strings "false", "0", "no" and
    "off" mean false (the original treated `rankedOnly: "false"` as true, spec §8.17)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off")
    return js_truthy(value)


def parse_maybe_json(value: object) -> object:
    """Strings are parsed as JSON (unparsable strings become None, and so do the values
    `domain.untrusted` refuses: too deep, NaN, NUL, ...); anything else passes through."""
    if isinstance(value, str):
        try:
            return loads(value)
        except UntrustedInput:
            return None
    return value


def as_mapping(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def round2(value: float) -> float:
    """JavaScript `Math.round(x * 100) / 100`: half-up on the scaled value, not Python's half-even."""
    return math.floor(value * 100 + 0.5) / 100


def clean_number(value: float) -> float | int:
    """Integral floats as int, so metadata reads 3 rather than 3.0 (as JSON.stringify would print it)."""
    return int(value) if float(value).is_integer() else value


def brief(value: object, limit: int = 60) -> str:
    """A value as a reason shows it: repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
