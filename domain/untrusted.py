"""Untrusted JSON, read so that whatever is accepted can be processed by every stage downstream.

The checks are what the house needs (DESIGN.md "Bad input"): bounded nesting (importing py_ecc raises
Python's recursion limit to 100,000, so an unbounded parse of `[[[[...` overflows the C stack and
kills the process), no NUL character and no lone surrogate (PostgreSQL's jsonb and UTF-8 refuse
them), only finite numbers (JSON has no NaN or Infinity; Python's parser accepts them and `1e999`
becomes inf), integers of a bounded length (Python refuses to convert more than 4,300 digits), and a
bounded size. `loads` refuses with `UntrustedInput` and nothing else, whatever the input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

MAX_DEPTH = 64
MAX_INT_DIGITS = 80  # a uint256 has 78 digits
MAX_INT_BITS = 260
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # Avro long, SQL bigint
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # Avro int
# 9999-12-31T23:59:59.999Z: the last epoch millisecond both Python's datetime and PostgreSQL's timestamptz hold
LATEST_EPOCH_MS = 253_402_300_799_999

# strings and the brackets outside them, once the escapes that could hide a quote are removed (`\\`
# pairs first, then `\"`): a string is then `"[^"]*"`, a single-character repetition the regex engine
# runs in constant memory (an alternation repeated per character costs ~100 bytes of stack per
# character: 240 MB for a 2 MB string). A lone `"` or `\` fails the parse later.
_DEPTH_TOKENS = re.compile(r'"[^"]*"|[\[\]{}]')
_DEPTH_TOKENS_BYTES = re.compile(rb'"[^"]*"|[\[\]{}]')


class UntrustedInput(ValueError):
    """Input refused at the door; the message says why in one line."""


def nesting_depth(text: str | bytes, limit: int = MAX_DEPTH) -> int:
    """The deepest array/object nesting of a JSON text, found without recursion; stops counting
    (and returns limit + 1) as soon as the limit is exceeded."""
    depth = deepest = 0
    if isinstance(text, bytes):
        tokens, unescaped = _DEPTH_TOKENS_BYTES, text.replace(b"\\\\", b"").replace(b'\\"', b"")
    else:
        tokens, unescaped = _DEPTH_TOKENS, text.replace("\\\\", "").replace('\\"', "")
    for match in tokens.finditer(unescaped):
        at = match.start()
        first = unescaped[at:at + 1]  # not the token itself: a long string is not copied
        if first in ("[", "{", b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif first in ("]", "}", b"]", b"}"):
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise UntrustedInput(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UntrustedInput(f"number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise UntrustedInput(f"integer of {len(text)} digits is out of range")
    value = int(text)
    if value.bit_length() > MAX_INT_BITS:  # check_value's bound, applied while parsing
        raise UntrustedInput("an integer is out of range")
    return value


# json.loads with these hooks would build this decoder again on every call (~2 us)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
_JSON_SPACE = " \t\n\r"


def _decode(text: str) -> Any:
    """`_DECODER.decode(text)` without its two regular-expression matches for the (rarely present)
    whitespace around the value: the same values and the same errors."""
    start = len(text) - len(text.lstrip(_JSON_SPACE)) if text[:1] in _JSON_SPACE else 0
    value, end = _DECODER.raw_decode(text, start)
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        end += len(text[end:]) - len(text[end:].lstrip(_JSON_SPACE))
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int | None = None) -> Any:
    """Parse untrusted JSON, or raise `UntrustedInput` with the reason."""
    size = len(text)
    if max_bytes is not None and size > max_bytes:
        raise UntrustedInput(f"JSON of {size} bytes exceeds the limit of {max_bytes}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UntrustedInput(f"not UTF-8 at byte {exc.start}") from None
    # no deeper than its opening brackets: most texts need no scan (brackets in strings only overcount)
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text, max_depth) > max_depth:
        raise UntrustedInput(f"JSON nested deeper than {max_depth} levels")
    try:
        value = _decode(text)
    except UntrustedInput:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise UntrustedInput(f"not JSON: {exc}") from None
    # The parse hooks bounded every number and the scan the depth. A string can only hold a NUL or a
    # lone surrogate if the text has one, or a \u escape for one: an ASCII text without `\u` needs no walk.
    if not text.isascii() or "\\u" in text or "\x00" in text:
        check_value(value, max_depth=max_depth)
    return value


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a decoded JSON value that a stage could not store or process: too deep, a string with
    NUL or a lone surrogate, a non-finite or out-of-range number, a key that is not a string."""
    for item, depth in _walk(value):
        if depth > max_depth:
            raise UntrustedInput(f"JSON nested deeper than {max_depth} levels")
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise UntrustedInput("a number is NaN or infinite")
        elif isinstance(item, int):
            if item.bit_length() > MAX_INT_BITS:
                raise UntrustedInput("an integer is out of range")
        elif not isinstance(item, dict | list):
            raise UntrustedInput(f"{type(item).__name__} is not a JSON value")


def check_text(text: str, what: str = "a string") -> None:
    if "\x00" in text:
        raise UntrustedInput(f"{what} holds a NUL character")
    if text.isascii():  # no surrogate, and no copy made to find out
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UntrustedInput(f"{what} holds a lone surrogate (not valid Unicode)") from None


def check_int(name: str, value: Any, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """An integer field within [low, high] (an Avro long or a bigint by default)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UntrustedInput(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise UntrustedInput(f"{name} {_short(value)} is out of range [{low}, {high}]")
    return value


def check_epoch_ms(name: str, value: Any) -> int:
    """A time in epoch milliseconds that every stage can turn into a datetime and every table can store."""
    return check_int(name, value, 0, LATEST_EPOCH_MS)


def ascii_decimal(text: str, *, max_digits: int) -> int | None:
    """A non-negative decimal of ASCII digits only and at most `max_digits` of them, else None.

    `str.isdigit()` accepts superscripts and other scripts' digits that `int()` refuses, and `int()`
    refuses more than 4,300 digits: a header or query value must pass here before it is converted."""
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def check_number(name: str, value: Any, low: float, high: float) -> float:
    """A finite JSON number (not a bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UntrustedInput(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UntrustedInput(f"{name} is not a finite number")
    if not low <= value <= high:
        raise UntrustedInput(f"{name} {_short(value)} is out of range [{_short(low)}, {_short(high)}]")
    return float(value)


def _short(value: float) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _walk(value: Any) -> Iterator[tuple[Any, int]]:
    """Every value and object key with its depth, iteratively."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise UntrustedInput("an object key is not a string")
                yield key, depth + 1
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
