"""OAuth token encryption at rest, compatible with the original (spec/evidence.md §2.3).

AES-256-GCM, a random 12-byte IV per value, no AAD, stored as `enc:<iv hex>:<tag hex>:<ct hex>`.
Values without the `enc:` prefix are legacy plaintext and read back unchanged. The key is 64 hex
characters (LC_OAUTH_ENCRYPTION_KEY); a missing or malformed key fails at construction, and a key
that does not open stored tokens fails `verify_key`, so a stage stops at startup instead of
handing ciphertext to a provider.

Key rotation: LC_OAUTH_PREVIOUS_KEYS (comma-separated) are keys still accepted for opening tokens
while the change is under way; new values are always sealed with the current key, and
`lc accounts rekey` re-seals what the previous keys sealed (docs/operations.md, "Key rotation").
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENCRYPTED_PREFIX = "enc:"
KEY_VARIABLE = "LC_OAUTH_ENCRYPTION_KEY"
PREVIOUS_KEYS_VARIABLE = "LC_OAUTH_PREVIOUS_KEYS"
_IV_BYTES = 12
_TAG_BYTES = 16


class EncryptionKeyError(RuntimeError):
    """The token encryption key is missing, malformed, or not the key the stored tokens were sealed with."""


class TokenDecryptionError(ValueError):
    """A stored `enc:` value is malformed or was not sealed with this key."""


def is_encrypted(value: str) -> bool:
    return value.startswith(ENCRYPTED_PREFIX)


class TokenCipher:
    """Seals with the current key and opens with it or a previous one. Holds the keys; its repr never
    shows them."""

    __slots__ = ("_aead", "_previous", "key_id")

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        for variable, candidate in ((KEY_VARIABLE, key), *((PREVIOUS_KEYS_VARIABLE, p) for p in previous)):
            if len(candidate) != 32:
                raise EncryptionKeyError(f"{variable} must be 32 bytes (64 hex characters) per key, got "
                                         f"{len(candidate)} bytes")
        self._aead = AESGCM(key)
        self._previous = tuple(AESGCM(p) for p in previous if p != key)
        self.key_id = hashlib.sha256(b"lc-oauth-key:" + key).hexdigest()[:12]  # names the key, never reveals it

    @classmethod
    def from_hex(cls, key_hex: str, previous_hex: str = "") -> TokenCipher:
        key_hex = key_hex.strip()
        if not key_hex:
            raise EncryptionKeyError(f"{KEY_VARIABLE} is not set: OAuth tokens cannot be read or stored")
        return cls(_key_bytes(key_hex, KEY_VARIABLE),
                   [_key_bytes(k.strip(), PREVIOUS_KEYS_VARIABLE) for k in previous_hex.split(",") if k.strip()])

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
        opened = _open(stored, (self._aead, *self._previous))
        if opened is None:
            raise TokenDecryptionError("encrypted token does not open with this key (wrong key or tampered value)")
        return opened

    def sealed_with_current(self, stored: str) -> bool:
        """Whether a stored `enc:` value opens with the current key (False for plaintext and other keys')."""
        try:
            return is_encrypted(stored) and _open(stored, (self._aead,)) is not None
        except TokenDecryptionError:  # malformed
            return False

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


def cipher_from_key(key_hex: str, previous_hex: str = "") -> TokenCipher:
    """The cipher for the configured keys (Settings.oauth_encryption_key, oauth_previous_keys); a clear error
    if one is unusable."""
    return TokenCipher.from_hex(key_hex, previous_hex)


def _open(stored: str, aeads: Sequence[AESGCM]) -> str | None:
    """The plaintext of an `enc:` value under the first of `aeads` that opens it; None if none does."""
    parts = stored[len(ENCRYPTED_PREFIX):].split(":")
    if len(parts) != 3:
        raise TokenDecryptionError("encrypted token is not enc:<iv>:<tag>:<ciphertext>")
    try:
        iv, tag, ciphertext = (bytes.fromhex(part) for part in parts)
    except ValueError:
        raise TokenDecryptionError("encrypted token has a non-hex part") from None
    if len(iv) != _IV_BYTES or len(tag) != _TAG_BYTES:
        raise TokenDecryptionError("encrypted token has a wrong IV or tag length")
    for aead in aeads:
        try:
            return aead.decrypt(iv, ciphertext + tag, None).decode("utf-8")
        except InvalidTag:
            continue
    return None


def _key_bytes(key_hex: str, variable: str) -> bytes:
    try:
        return bytes.fromhex(key_hex)
    except ValueError:
        raise EncryptionKeyError(f"{variable} is not hex (expected 64 hex characters per key)") from None
