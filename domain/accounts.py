"""Linked accounts and identity bindings on lc.accounts: event types, keys and the shapes they accept.

The event types share the compacted topic, told apart by their keys so compaction keeps one current
event of each: `LinkedAccount` and its removal `AccountUnlinked` keyed `<lower(subject)>:<provider>`,
`IdentityBound` and its removal `IdentityUnbound` keyed `identity:<wallet>:<platform>` (a subject is a
0x address, so the two key spaces never meet). A removal is a tombstone in the event sense: it replaces
the current event of its key, so compaction leaves nothing of the account (no token) on the topic.
"""

from __future__ import annotations

import re

LINKED_ACCOUNT = "LinkedAccount"
ACCOUNT_UNLINKED = "AccountUnlinked"
IDENTITY_BOUND = "IdentityBound"
IDENTITY_UNBOUND = "IdentityUnbound"
IDENTITY_KEY_PREFIX = "identity:"

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def account_key(subject: str, provider: str) -> str:
    return f"{subject.lower()}:{provider}"


def identity_key(wallet: str, platform: str) -> str:
    return f"{IDENTITY_KEY_PREFIX}{wallet.lower()}:{platform}"


def checked_account_key(subject: str, provider: str) -> str:
    """The key of a linked account, or ValueError saying which part is not acceptable."""
    if not ADDRESS.match(subject):
        raise ValueError(f"subject {subject!r} is not a 0x address")
    if not PROVIDER_NAME.match(provider):
        raise ValueError(f"provider {provider!r} is not a provider name")
    return account_key(subject, provider)


def checked_identity_key(wallet: str, platform: str) -> str:
    """The key of an identity binding, or ValueError saying which part is not acceptable."""
    if not ADDRESS.match(wallet):
        raise ValueError(f"wallet {wallet!r} is not a 0x address")
    if not PROVIDER_NAME.match(platform):
        raise ValueError(f"platform {platform!r} is not a platform name")
    return identity_key(wallet, platform)
