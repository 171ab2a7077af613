"""OAuth token encryption at rest, compatible with the original (spec/evidence.md §2.3).

AES-256-GCM, a random 12-byte IV per value, no AAD, stored as `enc:<iv hex>:<tag hex>:<ct hex>`.
Values without the `enc:` prefix are legacy plaintext and read back unchanged. The key is 64 hex
characters (LC_OAUTH_ENCRYPTION_KEY); a missing or malformed key fails at construction, and a key
that does not open stored tokens fails `verify_key`, so a stage stops at startup instead of
handing ciphertext to a provider.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENCRYPTED_PREFIX = "enc:"
KEY_VARIABLE = "LC_OAUTH_ENCRYPTION_KEY"
_IV_BYTES = 12
_TAG_BYTES = 16


class EncryptionKeyError(RuntimeError):
    """The token encryption key is missing, malformed, or not the key the stored tokens were sealed with."""


class TokenDecryptionError(ValueError):
    """A stored `enc:` value is malformed or was not sealed with this key."""


def is_encrypted(value: str) -> bool:
    return value.startswith(ENCRYPTED_PREFIX)


class TokenCipher:
    """Seals and opens token strings. Holds the key; its repr never shows it."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise EncryptionKeyError(f"{KEY_VARIABLE} must be 32 bytes (64 hex characters), got {len(key)} bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_hex(cls, key_hex: str) -> TokenCipher:
        key_hex = key_hex.strip()
        if not key_hex:
            raise EncryptionKeyError(f"{KEY_VARIABLE} is not set: OAuth tokens cannot be read or stored")
        try:
            key = bytes.fromhex(key_hex)
        except ValueError:
            raise EncryptionKeyError(f"{KEY_VARIABLE} is not hex (expected 64 hex characters)") from None
        return cls(key)

    def __repr__(self) -> str:
        return "TokenCipher(key=***)"

    def encrypt(self, plaintext: str) -> str:
        iv = os.urandom(_IV_BYTES)
        sealed = self._aead.encrypt(iv, plaintext.encode("utf-8"), None)
        ciphertext, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
        return f"{ENCRYPTED_PREFIX}{iv.hex()}:{tag.hex()}:{ciphertext.hex()}"

    def decrypt(self, stored: str) -> str:
        if not is_encrypted(stored):
            return stored  # legacy plaintext row
        parts = stored[len(ENCRYPTED_PREFIX):].split(":")
        if len(parts) != 3:
            raise TokenDecryptionError("encrypted token is not enc:<iv>:<tag>:<ciphertext>")
        try:
            iv, tag, ciphertext = (bytes.fromhex(part) for part in parts)
        except ValueError:
            raise TokenDecryptionError("encrypted token has a non-hex part") from None
        if len(iv) != _IV_BYTES or len(tag) != _TAG_BYTES:
            raise TokenDecryptionError("encrypted token has a wrong IV or tag length")
        try:
            return self._aead.decrypt(iv, ciphertext + tag, None).decode("utf-8")
        except InvalidTag:
            raise TokenDecryptionError("encrypted token does not open with this key (wrong key or tampered value)") from None

    def decrypt_optional(self, stored: str | None) -> str | None:
        return None if not stored else self.decrypt(stored)

    def encrypt_optional(self, plaintext: str | None) -> str | None:
        return None if not plaintext else self.encrypt(plaintext)

    def verify_key(self, stored_values: Iterable[str | None]) -> None:
        """Raise EncryptionKeyError unless every stored `enc:` value opens with this key."""
        for stored in stored_values:
            if stored and is_encrypted(stored):
                try:
                    self.decrypt(stored)
                except TokenDecryptionError as exc:
                    raise EncryptionKeyError(f"{KEY_VARIABLE} does not open the stored OAuth tokens: {exc}") from None


def cipher_from_key(key_hex: str) -> TokenCipher:
    """The cipher for a configured key (Settings.oauth_encryption_key); a clear error if unusable."""
    return TokenCipher.from_hex(key_hex)
