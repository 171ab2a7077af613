"""The messages the indexer publishes: chain events (and their retractions) and block headers (and reverts).

Event ids are deterministic: a chain event is `<chain id>:<block hash>:<tx hash>:<log index>` (the
block hash belongs in the identity: after a reorg the same transaction can land in another block),
its retraction has the same id and key with `removed = true`. For a consumer the newest message of
an event id says whether the fact currently holds.
"""

from __future__ import annotations

from typing import Any

from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS
from indexers.chain.model import BlockHeader, DecodedLog, OutMessage

CHAIN_EVENT = "ChainEvent"
BLOCK_CONFIRMED = "BlockConfirmed"
BLOCK_REVERTED = "BlockReverted"
ARGS_NAMESPACE = "lc.chain"


def args_branch(contract: str, event: str) -> str:
    """Full name of the args record of one contract's event (two contracts declare a DispatcherSet)."""
    return f"{ARGS_NAMESPACE}.{contract}.{event}"


def chain_event_id(chain_id: int, block_hash: str, tx_hash: str, log_index: int) -> str:
    return f"{chain_id}:{block_hash}:{tx_hash}:{log_index}"


def chain_event(chain_id: int, decoded: DecodedLog, key: str, challenge_id: str | None,
                block_timestamp: int) -> OutMessage:
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
        "challenge_id": challenge_id,
        # tuple notation names the union branch: several events have identical fields
        "args": (args_branch(decoded.contract, decoded.event), decoded.args),
        "rekeyed_from": None,
    }
    return OutMessage(CHAIN_EVENTS, key, CHAIN_EVENT, chain_event_id(chain_id, log.block_hash, log.tx_hash, log.log_index),
                      block_timestamp * 1000, payload,
                      _event_headers(decoded.event, log.block_number, log.block_hash, log.log_index))


def encoded_chain_event(key: str, event_id: str, value: bytes, event: str, header: BlockHeader,
                        log_index: int) -> OutMessage:
    """A chain event carried as the Avro bytes a range worker encoded (its payload is read from them on use)."""
    return OutMessage(CHAIN_EVENTS, key, CHAIN_EVENT, event_id, header.timestamp * 1000, None,
                      _event_headers(event, header.number, header.hash, log_index), value)


def rekeyed(message: OutMessage, challenge_id: str, binding: OutMessage) -> OutMessage:
    """An AIVM fact published before its task was bound, again, keyed by the challenge the binding names.

    It travels with the binding: published right before it, retracted with the binding's block.
    """
    payload = {**message.payload, "challenge_id": challenge_id, "rekeyed_from": message.key}
    binding_block = binding.payload
    headers = _event_headers(payload["event"], binding_block["block_number"], binding_block["block_hash"],
                             binding_block["log_index"])
    return OutMessage(message.topic, challenge_id, message.event_type, f"{message.event_id}@{challenge_id}",
                      message.occurred_at, payload, headers)


def retraction(published: OutMessage) -> OutMessage:
    """The same fact, same id and key, marked removed (as eth_subscribe marks logs of orphaned blocks)."""
    payload = {**published.payload, "removed": True}
    headers = {**published.headers, "lc-removed": "1"}
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


def args_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The args of a ChainEvent payload, as built here (union tuple) or as read back (plain dict)."""
    args = payload["args"]
    return args[1] if isinstance(args, tuple) else args


def _event_headers(event: str, block_number: int, block_hash: str, log_index: int) -> dict[str, str]:
    # for a restart's read-back: skip decoding what it does not need, and find the block (and place in
    # it) a message was published with (a re-keyed copy goes with its binding, not with its own log)
    return {"lc-event": event, "lc-block": str(block_number), "lc-block-hash": block_hash,
            "lc-log-index": str(log_index), "lc-removed": "0"}
