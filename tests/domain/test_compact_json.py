"""compact_json_encoder writes what json.dumps with the same options writes (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain.compact_json import compact_json_encoder

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                      max_leaves=25)


@given(VALUES)
def test_it_writes_what_json_dumps_writes(value: object) -> None:
    for sort_keys in (False, True):
        expected = json.dumps(value, separators=(",", ":"), sort_keys=sort_keys)
        assert compact_json_encoder(sort_keys=sort_keys)(value) == expected


def test_unknown_types_go_through_default_and_non_ascii_is_escaped() -> None:
    encode = compact_json_encoder(sort_keys=True, default=str)
    value = {"z": datetime(2025, 3, 1, tzinfo=UTC), "a": "structural pass — applied", "n": float("inf")}
    assert encode(value) == '{"a":"structural pass \\u2014 applied","n":Infinity,"z":"2025-03-01 00:00:00+00:00"}'
    assert encode(value) == encode(value)  # the cached C encoder keeps no state between calls
