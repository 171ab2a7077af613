"""Wallet signature headers: each refusal, and single use across a restart of the replay store."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from intake.auth import (
    ADDRESS_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AuthError,
    SignatureVerifier,
    sign_headers,
)
from intake.replay import ReplayStore

KEY = "0x" + "4c" * 32
OTHER_KEY = "0x" + "5d" * 32
NOW_MS = 1_757_500_000_123


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _verifier(tmp_path: Path, clock: Clock | None = None) -> SignatureVerifier:
    return SignatureVerifier(ReplayStore(tmp_path / "replay.sqlite3"), clock=clock or Clock(NOW_MS))


def _code(verifier: SignatureVerifier, headers: dict[str, str]) -> str:
    with pytest.raises(AuthError) as refused:
        verifier.verify(headers)
    return refused.value.code


def test_signed_message_is_the_original_one() -> None:
    headers = sign_headers(KEY, now_ms=NOW_MS)
    assert headers[TIMESTAMP_HEADER] == str(NOW_MS)
    from eth_account.messages import encode_defunct

    message = encode_defunct(text=f"lightchallenge:{NOW_MS}")
    assert Account.recover_message(message, signature=headers[SIGNATURE_HEADER]) == Account.from_key(KEY).address


def test_valid_headers_give_the_checksummed_signer(tmp_path: Path) -> None:
    headers = sign_headers(KEY, now_ms=NOW_MS)
    headers[ADDRESS_HEADER] = headers[ADDRESS_HEADER].lower()
    assert _verifier(tmp_path).verify(headers) == Account.from_key(KEY).address


def test_each_refusal_has_its_code(tmp_path: Path) -> None:
    verifier = _verifier(tmp_path)
    good = sign_headers(KEY, now_ms=NOW_MS)
    assert _code(verifier, {}) == "missing"
    assert _code(verifier, {k: v for k, v in good.items() if k != SIGNATURE_HEADER}) == "missing"
    assert _code(verifier, {**good, TIMESTAMP_HEADER: "soon"}) == "malformed"
    assert _code(verifier, {**good, SIGNATURE_HEADER: "0x1234"}) == "malformed"
    assert _code(verifier, {**good, ADDRESS_HEADER: Account.from_key(OTHER_KEY).address}) == "bad_signature"
    # the signature covers the timestamp: another timestamp does not recover to the signer
    assert _code(verifier, {**good, TIMESTAMP_HEADER: str(NOW_MS + 1)}) == "bad_signature"
    assert _code(verifier, sign_headers(KEY, now_ms=NOW_MS - 300_001)) == "expired"
    assert _code(verifier, sign_headers(KEY, now_ms=NOW_MS + 300_001)) == "expired"
    verifier.verify(sign_headers(KEY, now_ms=NOW_MS - 300_000))  # the window's edge is inside


def test_a_signature_is_single_use_also_after_a_restart(tmp_path: Path) -> None:
    headers = sign_headers(KEY, now_ms=NOW_MS)
    first = _verifier(tmp_path)
    first.verify(headers)
    assert _code(first, headers) == "replayed"
    first.replay_store.close()

    restarted = _verifier(tmp_path, Clock(NOW_MS + 60_000))
    assert _code(restarted, headers) == "replayed"


def test_re_encoding_a_signature_does_not_make_it_new(tmp_path: Path) -> None:
    headers = sign_headers(KEY, now_ms=NOW_MS)
    verifier = _verifier(tmp_path)
    verifier.verify(headers)
    signature = headers[SIGNATURE_HEADER]
    v = int(signature[-2:], 16)
    for variant in (signature.upper().replace("0X", "0x"), signature[:-2] + f"{v - 27:02x}"):
        assert _code(verifier, {**headers, SIGNATURE_HEADER: variant}) == "replayed"


def test_used_signatures_are_pruned_once_out_of_the_window(tmp_path: Path) -> None:
    clock = Clock(NOW_MS)
    verifier = _verifier(tmp_path, clock)
    verifier.verify(sign_headers(KEY, now_ms=NOW_MS))
    assert len(verifier.replay_store) == 1
    clock.now_ms = NOW_MS + 300_001 + 60_000
    verifier.verify(sign_headers(KEY, now_ms=clock.now_ms))
    assert len(verifier.replay_store) == 1  # the first one was pruned, the new one kept
