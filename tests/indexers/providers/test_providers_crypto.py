"""OAuth token encryption: the original's `enc:<iv>:<tag>:<ct>` format, wrong and missing keys."""

from __future__ import annotations

import re

import pytest

from cli.settings import Settings
from indexers.providers.crypto import (
    EncryptionKeyError,
    TokenCipher,
    TokenDecryptionError,
    cipher_from_key,
)

KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
OTHER_KEY = "ff" * 32
# Sealed by Node's crypto (aes-256-gcm, the original's code path) with KEY and a fixed IV.
NODE_SEALED = "enc:a1a2a3a4a5a6a7a8a9aaabac:819984f793245db679b47f5febd2077c:559bf50e8234131deb18c01527aae1070dfc4f415a86fd"


def test_round_trip_and_format() -> None:
    cipher = TokenCipher.from_hex(KEY)
    sealed = cipher.encrypt("strava-refresh-token-é")
    assert re.fullmatch(r"enc:[0-9a-f]{24}:[0-9a-f]{32}:[0-9a-f]+", sealed)
    assert len(sealed.split(":")[3]) == 2 * len("strava-refresh-token-é".encode())
    assert cipher.decrypt(sealed) == "strava-refresh-token-é"
    assert cipher.encrypt("x") != cipher.encrypt("x")  # a fresh IV each time


def test_reads_what_the_original_wrote() -> None:
    assert TokenCipher.from_hex(KEY).decrypt(NODE_SEALED) == "strava-refresh-token-é"


def test_legacy_plaintext_is_read_unchanged() -> None:
    cipher = TokenCipher.from_hex(KEY)
    assert cipher.decrypt("plain-legacy-token") == "plain-legacy-token"
    assert cipher.decrypt_optional(None) is None and cipher.decrypt_optional("") is None


def test_wrong_key_fails_clearly() -> None:
    wrong = TokenCipher.from_hex(OTHER_KEY)
    with pytest.raises(TokenDecryptionError, match="does not open with this key"):
        wrong.decrypt(NODE_SEALED)
    with pytest.raises(EncryptionKeyError, match="LC_OAUTH_ENCRYPTION_KEY does not open the stored OAuth tokens"):
        wrong.verify_key(["legacy", None, NODE_SEALED])
    TokenCipher.from_hex(KEY).verify_key(["legacy", None, NODE_SEALED])


def test_tampered_value_is_refused() -> None:
    tampered = NODE_SEALED[:-2] + ("00" if not NODE_SEALED.endswith("00") else "01")
    with pytest.raises(TokenDecryptionError):
        TokenCipher.from_hex(KEY).decrypt(tampered)
    with pytest.raises(TokenDecryptionError, match="enc:<iv>:<tag>:<ciphertext>"):
        TokenCipher.from_hex(KEY).decrypt("enc:abc")


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "is not set"), ("   ", "is not set"), ("zz" * 32, "is not hex"), ("00" * 16, "must be 32 bytes")],
)
def test_missing_or_malformed_key_is_a_startup_error(key: str, message: str) -> None:
    with pytest.raises(EncryptionKeyError, match=message):
        cipher_from_key(key)


def test_key_comes_from_the_settings_and_is_never_shown() -> None:
    settings = Settings.from_env({"LC_OAUTH_ENCRYPTION_KEY": KEY})
    cipher = cipher_from_key(settings.oauth_encryption_key)
    assert cipher.decrypt(NODE_SEALED) == "strava-refresh-token-é"
    assert KEY not in repr(settings) and KEY not in repr(cipher)
    with pytest.raises(EncryptionKeyError):
        cipher_from_key(Settings.from_env({}).oauth_encryption_key)
