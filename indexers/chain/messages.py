"""The messages the indexer publishes: chain events (and their retractions) and block headers (and reverts).

Event ids are deterministic: a chain event is `<chain id>:<block hash>:<tx hash>:<log index>` (the
block hash belongs in the identity: after a reorg the same transaction can land in another block),
its retraction has the same id and key with `removed = true`. For a consumer the newest message of
an event id says whether the fact currently holds.
"""

from __future__ import annotations

from typing import Any

from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS
from indexers.chain.keying import EventKey
from indexers.chain.model import BlockHeader, DecodedLog, OutMessage

CHAIN_EVENT = "ChainEvent"
BLOCK_CONFIRMED = "BlockConfirmed"
BLOCK_REVERTED = "BlockReverted"
ARGS_NAMESPACE = "lc.chain"


def chain_event_id(chain_id: int, block_hash: str, tx_hash: str, log_index: int) -> str:
    return f"{chain_id}:{block_hash}:{tx_hash}:{log_index}"


def chain_event(chain_id: int, decoded: DecodedLog, key: EventKey, block_timestamp: int) -> OutMessage:
    log = decoded.log
    payload: dict[str, Any] = {
        "chain_id": chain_id,
        "contract": decoded.contract,
        "address": log.address,
        "event": decoded.event,
        "block_number": log.block_number,
        "block_hash": log.block_hash,
        "block_timestamp": block_timestamp,
        "tx_hash": log.tx_hash,
        "tx_index": log.tx_index,
        "log_index": log.log_index,
        "removed": False,
        "challenge_id": key.challenge_id,
        # tuple notation names the union branch: several events have identical fields
        "args": (f"{ARGS_NAMESPACE}.{decoded.event}", decoded.args),
    }
    return OutMessage(
        topic=CHAIN_EVENTS,
        key=key.key,
        event_type=CHAIN_EVENT,
        event_id=chain_event_id(chain_id, log.block_hash, log.tx_hash, log.log_index),
        occurred_at=block_timestamp * 1000,
        payload=payload,
        headers=_event_headers(decoded.event, log.block_number, removed=False),
    )


def retraction(published: OutMessage) -> OutMessage:
    """The same fact, same id and key, marked removed (as eth_subscribe marks logs of orphaned blocks)."""
    payload = {**published.payload, "removed": True}
    headers = _event_headers(payload["event"], payload["block_number"], removed=True)
    return OutMessage(published.topic, published.key, published.event_type, published.event_id,
                      published.occurred_at, payload, headers)


def block_confirmed(chain_id: int, header: BlockHeader, log_count: int) -> OutMessage:
    return OutMessage(
        topic=CHAIN_BLOCKS,
        key=str(chain_id),
        event_type=BLOCK_CONFIRMED,
        event_id=f"{chain_id}:block:{header.hash}",
        occurred_at=header.timestamp * 1000,
        payload={
            "chain_id": chain_id,
            "number": header.number,
            "hash": header.hash,
            "parent_hash": header.parent_hash,
            "timestamp": header.timestamp,
            "log_count": log_count,
        },
    )


def block_reverted(chain_id: int, header: BlockHeader, ancestor: BlockHeader | None) -> OutMessage:
    return OutMessage(
        topic=CHAIN_BLOCKS,
        key=str(chain_id),
        event_type=BLOCK_REVERTED,
        event_id=f"{chain_id}:revert:{header.hash}",
        occurred_at=header.timestamp * 1000,
        payload={
            "chain_id": chain_id,
            "number": header.number,
            "hash": header.hash,
            "parent_hash": header.parent_hash,
            "timestamp": header.timestamp,
            "ancestor_number": ancestor.number if ancestor else None,
            "ancestor_hash": ancestor.hash if ancestor else None,
        },
    )


def _event_headers(event: str, block_number: int, *, removed: bool) -> dict[str, str]:
    # lets a restart's read-back skip decoding everything it does not need
    return {"lc-event": event, "lc-block": str(block_number), "lc-removed": "1" if removed else "0"}
