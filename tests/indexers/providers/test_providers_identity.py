"""Legacy identity-bindings import (spec/evidence.md §7.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexers.providers.identity import (
    IdentityBinding,
    IdentityFileError,
    load_identity_bindings_file,
    parse_identity_bindings,
)

WALLET = "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"
LEGACY = [
    {"wallet": WALLET, "platform": "steam", "platformId": "76561198000000001", "handle": "ana",
     "signedBy": "0x1111111111111111111111111111111111111111", "signature": "0xsig", "ts": 1757500000123},
    {"wallet": WALLET, "platform": "riot", "platformId": "puuid-a"},
    {"wallet": "", "platformId": "76561198000000002"},
    {"wallet": "0x2222222222222222222222222222222222222222", "platform": "steam"},
    {"wallet": "not-an-address", "platformId": "1"},
    "garbage",
    {"wallet": "0x3333333333333333333333333333333333333333", "platformId": "76561198000000003", "ts": 5},
]


def test_items_become_bindings_and_bad_ones_are_skipped_with_reasons() -> None:
    result = parse_identity_bindings(LEGACY)
    assert result.total == 7
    assert result.bindings[0] == IdentityBinding(
        wallet=WALLET.lower(), platform="steam", platform_id="76561198000000001", handle="ana",
        signed_by="0x1111111111111111111111111111111111111111", signature="0xsig", ts=1757500000123,
    )
    assert result.bindings[1].platform == "riot" and result.bindings[1].ts == 0 and result.bindings[1].handle is None
    assert result.bindings[2].platform == "steam"  # the original's default platform
    assert [(s.index, s.reason) for s in result.skipped] == [
        (2, "empty wallet"), (3, "empty platformId"), (4, "wallet 'not-an-address' is not a 0x address"),
        (5, "not a JSON object"),
    ]
    assert result.bindings[0].key == f"{WALLET.lower()}:steam"


def test_reimport_gives_identical_ids(tmp_path: Path) -> None:
    path = tmp_path / "identity_bindings.json"
    path.write_text(json.dumps(LEGACY))
    first = load_identity_bindings_file(path)
    second = load_identity_bindings_file(path)
    assert first == second
    assert [b.binding_id for b in first.bindings] == [b.binding_id for b in second.bindings]
    assert len({b.binding_id for b in first.bindings}) == len(first.bindings)
    assert all(b.binding_id.startswith("idb-") and len(b.binding_id) == 68 for b in first.bindings)


def test_a_changed_binding_gets_a_new_id_under_the_same_key() -> None:
    before = parse_identity_bindings(LEGACY[:1]).bindings[0]
    after = parse_identity_bindings([{**LEGACY[0], "platformId": "76561198000000009"}]).bindings[0]
    assert before.key == after.key and before.binding_id != after.binding_id


def test_later_item_for_the_same_wallet_and_platform_wins_keeping_the_handle() -> None:
    items = [LEGACY[0], {"wallet": WALLET.lower(), "platform": "STEAM", "platformId": "76561198000000009", "ts": 9}]
    (binding,) = parse_identity_bindings(items).bindings
    assert binding.platform_id == "76561198000000009" and binding.handle == "ana" and binding.signature is None


def test_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(IdentityFileError, match="not found"):
        load_identity_bindings_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(IdentityFileError, match="not JSON"):
        load_identity_bindings_file(tmp_path / "bad.json")
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(IdentityFileError, match="expected a JSON array"):
        load_identity_bindings_file(tmp_path / "obj.json")
    (tmp_path / "empty.json").write_text("[]")
    assert load_identity_bindings_file(tmp_path / "empty.json").bindings == []
