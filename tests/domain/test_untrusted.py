"""Untrusted JSON: refused with `UntrustedInput` and nothing else, whatever the input."""

from __future__ import annotations

import json
import sys

import eth_account  # noqa: F401  (through py_ecc it raises the recursion limit, as in every stage)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.untrusted import (
    MAX_DEPTH,
    UntrustedInput,
    _bounded_int,
    _decode,
    _finite_float,
    _refuse_constant,
    check_int,
    check_value,
    loads,
    nesting_depth,
)


def test_importing_eth_account_raised_the_recursion_limit() -> None:
    assert sys.getrecursionlimit() >= 100_000  # the reason the depth check exists


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000,
                                  "[" * 100_000])
def test_deep_nesting_is_refused_without_crashing(text: str) -> None:
    with pytest.raises(UntrustedInput, match="nested deeper"):
        loads(text)
    with pytest.raises(UntrustedInput, match="nested deeper"):
        loads(text.encode())


def test_brackets_inside_strings_do_not_count() -> None:
    assert nesting_depth('{"a": "[[[[[[\\"]]]]", "b": [1, [2]]}') == 3
    assert loads('["[[[[", {"k": "}}}"}]') == ["[[[[", {"k": "}}}"}]


@pytest.mark.parametrize(("text", "reason"), [
    ('{"a": NaN}', "not a JSON number"), ("[Infinity]", "not a JSON number"), ("[-Infinity]", "not a JSON number"),
    ("[1e999]", "out of range"), ("[" + "9" * 400 + "]", "out of range"), ('["a\\u0000b"]', "NUL"),
    ('{"a\\u0000": 1}', "NUL"), ('["\\ud800"]', "surrogate"), ("[1,", "not JSON"), ("", "not JSON"),
])
def test_values_no_stage_could_store_are_refused(text: str, reason: str) -> None:
    with pytest.raises(UntrustedInput, match=reason):
        loads(text)


def test_invalid_utf8_and_size_limits() -> None:
    with pytest.raises(UntrustedInput, match="not UTF-8"):
        loads(b'["\xff"]')
    with pytest.raises(UntrustedInput, match="exceeds"):
        loads("[1, 2, 3]", max_bytes=4)


def test_good_json_reads_as_json() -> None:
    document = {"a": [1, 2.5, -3, True, None, "x"], "b": {"c": 10**77}}
    assert loads(json.dumps(document)) == document
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(nested) is not None


def test_check_int_bounds() -> None:
    assert check_int("topN", 3, 1, 1000) == 3
    for bad in (True, 1.5, "3", 2**63, None):
        with pytest.raises(UntrustedInput):
            check_int("id", bad)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]{}",:\\0123456789.eE-+ aNInfinitytrue\x00\ud800\\u0000')), max_size=200))
def test_any_text_is_parsed_or_refused_with_the_refusal_type(text: str) -> None:
    try:
        loads(text)
    except UntrustedInput:
        pass


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(), lambda children: st.lists(children) | st.dictionaries(st.text(), children),
                    max_leaves=30))
def test_any_clean_json_value_round_trips(value: object) -> None:
    text = json.dumps(value)
    try:
        assert loads(text) == value
    except UntrustedInput as exc:  # only what is refused by design: NUL, surrogates, long integers, depth
        assert any(word in str(exc) for word in ("NUL", "surrogate", "out of range", "nested")), exc


def full_check(text: str) -> object:
    """What `loads` does without its shortcuts: always the depth scan and the walk over every value."""
    if nesting_depth(text) > MAX_DEPTH:
        raise UntrustedInput("nested")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except UntrustedInput:
        raise
    except (ValueError, RecursionError) as exc:
        raise UntrustedInput(str(exc)) from None
    check_value(value)
    return value


@settings(max_examples=400, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(10**90), 10**90) | st.floats(allow_nan=False)
                    | st.text(alphabet=st.sampled_from(["a", "\x00", "\ud800", "é", "\\", '"', "[", "{"])),
                    lambda children: st.lists(children) | st.dictionaries(st.text(max_size=3), children),
                    max_leaves=70),
       st.booleans())
def test_shortcuts_accept_and_refuse_exactly_what_the_full_check_does(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        expected = full_check(text)
    except UntrustedInput:
        with pytest.raises(UntrustedInput):
            loads(text)
    else:
        assert loads(text) == expected


_REFERENCE = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)


@given(st.text(alphabet=' \t\n\r\x0b\xa0[]{}",:1aex-', max_size=12))
def test_the_decode_without_whitespace_regexes_matches_json_decode(text: str) -> None:
    def outcome(decode):
        try:
            return "value", decode(text)
        except UntrustedInput as exc:
            return "refused", str(exc)
        except json.JSONDecodeError as exc:
            return "error", str(exc)
    assert outcome(_decode) == outcome(_REFERENCE.decode)
