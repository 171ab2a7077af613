"""No input makes the registration validator raise anything but InvalidRegistration, whatever it holds
(hostile numbers, depths, strings, types), and what it accepts fits every type downstream."""

from __future__ import annotations

import json
from typing import Any

import eth_account  # noqa: F401  (through py_ecc it raises the recursion limit, as in every stage)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.registration import (
    MAX_ID,
    FrozenField,
    InvalidRegistration,
    NotOwner,
    check_update,
    parse_registration_bytes,
    registration_from_payload,
    validate_registration,
)
from domain.untrusted import INT32_MAX, check_value

SUBJECT = "0x" + "ab" * 20
TIMELINE = {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-08T00:00:00Z", "proofDeadline": "2026-01-09T00:00:00Z"}
RULE = {"challengeType": "steps", "period": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"},
        "conditions": [{"metric": "steps", "op": ">=", "value": 1000}]}
GOOD = {"id": 7, "subject": SUBJECT, "model_id": "fitness.steps@1", "params": {"rule": RULE}, "timeline": TIMELINE}

HOSTILE_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10**100), max_value=10**100) | st.floats()
                   | st.text(max_size=30) | st.sampled_from([
                       "1e308", "NaN", "-1", "9" * 400, "9999-12-31T23:59:59-23:59", "\x00", "\ud800", "[" * 200,
                       "2026-01-01T00:00:00Z", "competitive", "threshold", 2**63, 2**31, 1e308, -1e308]))
JSONISH = st.recursive(HOSTILE_SCALARS, lambda children: st.lists(children, max_size=3)
                       | st.dictionaries(st.sampled_from(["rule", "topN", "mode", "startsAt", "endsAt", "form",
                                                          "proofDeadline", "conditions", "value", "x"]),
                                         children, max_size=4), max_leaves=10)
DOCUMENTS = st.fixed_dictionaries(
    {"id": st.one_of(st.integers(min_value=-5, max_value=2**64), HOSTILE_SCALARS),
     "subject": st.one_of(st.just(SUBJECT), HOSTILE_SCALARS),
     "model_id": st.one_of(st.just("fitness.steps@1"), HOSTILE_SCALARS),
     "params": st.one_of(st.just({"rule": RULE}), JSONISH,
                         st.fixed_dictionaries({"rule": st.fixed_dictionaries(
                             {"challengeType": st.just("steps"), "mode": st.sampled_from(["competitive", "threshold"]),
                              "topN": HOSTILE_SCALARS, "period": st.just(RULE["period"]),
                              "conditions": st.just(RULE["conditions"])})})),
     "timeline": st.one_of(st.just(TIMELINE), JSONISH,
                           st.fixed_dictionaries({"startsAt": HOSTILE_SCALARS, "endsAt": HOSTILE_SCALARS,
                                                  "proofDeadline": HOSTILE_SCALARS}))},
    optional={"title": HOSTILE_SCALARS, "funds": JSONISH, "options": JSONISH, "proof": JSONISH,
              "tx_hash": HOSTILE_SCALARS, "description": HOSTILE_SCALARS})


@settings(max_examples=500, deadline=None)
@given(DOCUMENTS)
def test_any_document_is_accepted_within_the_types_or_refused_with_the_reason(document: dict[str, Any]) -> None:
    try:
        registration = validate_registration(document)
    except InvalidRegistration as exc:
        assert str(exc)
        return
    assert 0 < registration.challenge_id <= MAX_ID and 1 <= registration.top_n <= INT32_MAX  # Avro int
    check_value(registration.content())  # finite, NUL-free, bounded: storable in jsonb
    payload = registration.to_payload(source="http", registered_by=SUBJECT)
    assert registration_from_payload(payload) == registration  # what a reader of the topic gets back
    check_update(registration, registration)  # the same registration again is always allowed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_are_parsed_or_refused_with_the_reason(raw: bytes) -> None:
    try:
        parse_registration_bytes(raw)
    except InvalidRegistration:
        pass


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    json.dumps({**GOOD, "params": "[" * 50_000 + "]" * 50_000}),
    json.dumps(GOOD).replace('"fitness.steps@1"', '"\\ud800"'),
])
def test_deep_or_broken_bodies_are_refused_without_crashing(body: str) -> None:
    with pytest.raises(InvalidRegistration):
        parse_registration_bytes(body.encode())


def test_rule_strings_nested_deep_do_not_crash_the_rule_parser() -> None:
    # unparsable rule strings are read as absent (the rule paths are lenient, spec/evaluation.md §1.6);
    # what matters here is that parsing them is bounded: no RecursionError, no C stack overflow
    body = json.dumps({**GOOD, "params": {"rule": "[" * 50_000 + "]" * 50_000, "rules": "{" * 50_000}})
    try:
        parse_registration_bytes(body.encode())
    except InvalidRegistration:
        pass


def test_the_owner_rule() -> None:
    first = validate_registration({**GOOD, "title": "first"})
    check_update(None, first)
    check_update(first, validate_registration({**GOOD, "title": "renamed", "description": "d",
                                               "funds": {"stake": "1"}, "options": {"category": "fitness"},
                                               "tx_hash": "0x" + "12" * 32}))
    with pytest.raises(NotOwner, match="registered to"):
        check_update(first, validate_registration({**GOOD, "subject": "0x" + "cd" * 20}))
    for change in ({"model_id": "fitness.distance@1"}, {"timeline": {**TIMELINE, "endsAt": "2026-01-07T00:00:00Z"}},
                   {"params": {"rule": {**RULE, "conditions": []}}}, {"proof": {"backend": "x"}},
                   {"model_hash": "0x" + "34" * 32}):
        with pytest.raises(FrozenField, match=next(iter(change))):
            check_update(first, validate_registration({**GOOD, **change}))
    with_tx = validate_registration({**GOOD, "tx_hash": "0x" + "12" * 32})
    with pytest.raises(FrozenField, match="tx_hash"):
        check_update(with_tx, validate_registration({**GOOD, "tx_hash": "0x" + "56" * 32}))
