"""Who is calling an intake: a wallet (signature headers, for user actions) or the web app's server (a
service credential, for server-to-server calls such as webhooks and OAuth callbacks).

Wallet: the original API's signature headers (spec/evidence.md §6.1), single-use across restarts.

`x-lc-address` (0x address, any case), `x-lc-timestamp` (Unix milliseconds, decimal),
`x-lc-signature` (EIP-191 `personal_sign` of `lightchallenge:<x-lc-timestamp>` exactly as sent).
Checks, in order: the three headers are present and well-formed; the timestamp is within the window
of now (both ways); the signature recovers to the claimed address; the signature was not used
before. Unlike the original, the replay key is the signature's (r, low s) pair, so re-encoding the
same signature (hex case, v as 0/1 or 27/28, the high-s twin) does not make it new, and the store
is a file, so a restart does not forget it.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from domain.untrusted import ascii_decimal
from intake.replay import ReplayStore

ADDRESS_HEADER = "x-lc-address"
SIGNATURE_HEADER = "x-lc-signature"
TIMESTAMP_HEADER = "x-lc-timestamp"
DEFAULT_WINDOW_MS = 300_000
TIMESTAMP_DIGITS = 16  # Unix ms has 13 digits until the year 2286
MESSAGE_PREFIX = "lightchallenge:"
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AuthError(Exception):
    """Why a request is not authenticated; `code` is one of missing, malformed, expired, bad_signature,
    replayed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SignatureParts:
    r: int
    s: int
    v: int

    @property
    def replay_key(self) -> str:
        low_s = min(self.s, _SECP256K1_N - self.s)
        return f"{self.r:064x}{low_s:064x}"


def auth_message(timestamp: str) -> str:
    return f"{MESSAGE_PREFIX}{timestamp}"


def signature_parts(signature: str) -> SignatureParts:
    text = signature.strip()
    if not text.lower().startswith("0x") or len(text) != 132:
        raise AuthError("malformed", f"{SIGNATURE_HEADER} must be a 0x-prefixed 65-byte hex signature")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        raise AuthError("malformed", f"{SIGNATURE_HEADER} is not hex") from None
    return SignatureParts(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64])


def sign_headers(private_key: str | bytes, *, now_ms: int | None = None) -> dict[str, str]:
    """The three headers for one request (a signature is single-use: sign again for every request)."""
    timestamp = str(wall_clock_ms() if now_ms is None else now_ms)
    account = Account.from_key(private_key)
    signed = account.sign_message(encode_defunct(text=auth_message(timestamp)))
    return {
        ADDRESS_HEADER: account.address,
        SIGNATURE_HEADER: "0x" + bytes(signed.signature).hex(),
        TIMESTAMP_HEADER: timestamp,
    }


class SignatureVerifier:
    def __init__(self, replay_store: ReplayStore, *, clock: Clock = wall_clock_ms,
                 window_ms: int = DEFAULT_WINDOW_MS) -> None:
        self.replay_store = replay_store
        self.clock = clock
        self.window_ms = window_ms

    def verify(self, headers: Mapping[str, str]) -> str:
        """The checksummed address that signed this request; raises AuthError otherwise."""
        address = headers.get(ADDRESS_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not address or not signature or not timestamp:
            raise AuthError("missing", f"authentication required: send {ADDRESS_HEADER}, {SIGNATURE_HEADER} "
                                       f"and {TIMESTAMP_HEADER}")
        # ASCII digits of a bounded length only: str.isdigit() takes superscripts that int() refuses,
        # and int() refuses more than 4,300 digits
        signed_ms = ascii_decimal(timestamp, max_digits=TIMESTAMP_DIGITS)
        if signed_ms is None:
            raise AuthError("malformed", f"{TIMESTAMP_HEADER} must be Unix milliseconds (ASCII digits)")
        now_ms = self.clock()
        if abs(now_ms - signed_ms) > self.window_ms:
            raise AuthError("expired", f"{TIMESTAMP_HEADER} is more than {self.window_ms // 1000} s from the "
                                       "server's time: sign again")
        parts = signature_parts(signature)
        try:
            recovered = Account.recover_message(encode_defunct(text=auth_message(timestamp)), signature=signature)
        except Exception:  # eth-keys raises several types for unrecoverable signatures
            raise AuthError("bad_signature", "the signature cannot be recovered") from None
        if recovered.lower() != address.strip().lower():
            raise AuthError("bad_signature", f"the signature was not made by {address}")
        if not self.replay_store.first_use(parts.replay_key, expires_ms=signed_ms + self.window_ms, now_ms=now_ms):
            raise AuthError("replayed", "this signature was already used: sign again for every request")
        return to_checksum_address(recovered)


SERVICE_HEADER = "authorization"
SERVICE_SCHEME = "Bearer "


class ServiceCredential:
    """The web app server's shared secret (`Authorization: Bearer <token>`, LC_INTAKE_SERVICE_TOKEN),
    compared in constant time. Without a configured token every service call is refused: an
    unconfigured deployment must not accept anonymous server-to-server writes."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def verify(self, headers: Mapping[str, str]) -> None:
        """Raise AuthError unless the request carries the configured token."""
        if not self._token:
            raise AuthError("not_configured", "service calls are disabled: LC_INTAKE_SERVICE_TOKEN is not set")
        value = headers.get(SERVICE_HEADER, "")
        if not value.startswith(SERVICE_SCHEME):
            raise AuthError("missing", f"send {SERVICE_HEADER}: {SERVICE_SCHEME}<service token>")
        if not hmac.compare_digest(value[len(SERVICE_SCHEME):].strip().encode(), self._token):
            raise AuthError("bad_credential", "the service token is not the configured one")


def service_headers(token: str) -> dict[str, str]:
    return {SERVICE_HEADER: f"{SERVICE_SCHEME}{token}"}
