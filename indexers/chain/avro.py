"""The Avro schema of ChainEvent, generated from the event catalogue (`python -m indexers.chain.avro`).

`args` is a union with one record per catalogue event (`lc.chain.<Contract>.<Event>`); a test checks that the
committed `schemas/ChainEvent.v<N>.avsc` equals what the catalogue generates. Adding an event adds a
union branch, which readers of the new version accept for every old message (backward compatible).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from eventlog.serde import SCHEMAS_DIR
from indexers.chain.abi import EventAbi, avro_type, topic_avro_type
from indexers.chain.catalogue import pipeline_events
from indexers.chain.messages import ARGS_NAMESPACE, CHAIN_EVENT

CHAIN_EVENT_VERSION = 1


def _args_record(role: str, abi: EventAbi) -> dict[str, Any]:
    fields = []
    for param in abi.inputs:
        kind = topic_avro_type(param.type) if param.indexed else avro_type(param.type)
        doc = f"{param.type}{' indexed' if param.indexed else ''}"
        fields.append({"name": param.name, "type": kind, "doc": doc})
    return {"type": "record", "name": abi.name, "namespace": f"{ARGS_NAMESPACE}.{role}",
            "doc": f"{role}.{abi.canonical}", "fields": fields}


def chain_event_schema(events: Mapping[str, Iterable[EventAbi]] | None = None) -> dict[str, Any]:
    events = events if events is not None else pipeline_events()
    branches = [_args_record(role, abi) for role, abis in events.items() for abi in abis]
    return {
        "type": "record",
        "name": CHAIN_EVENT,
        "namespace": "lc",
        "doc": "A decoded log of a pipeline contract (lc.chain.events); removed=true retracts it after a reorg.",
        "fields": [
            {"name": "envelope", "type": "lc.Envelope"},
            {"name": "chain_id", "type": "long"},
            {"name": "contract", "type": "string", "doc": "address role: ChallengePay, Treasury, AIVMInferenceV2, ..."},
            {"name": "address", "type": "string", "doc": "emitting contract, lowercase 0x-hex"},
            {"name": "event", "type": "string", "doc": "event name; also names the args branch"},
            {"name": "block_number", "type": "long"},
            {"name": "block_hash", "type": "string"},
            {"name": "block_timestamp", "type": "long", "doc": "block time, seconds since the epoch"},
            {"name": "tx_hash", "type": "string"},
            {"name": "tx_index", "type": "long"},
            {"name": "log_index", "type": "long"},
            {"name": "removed", "type": "boolean", "doc": "true: the block was orphaned, the fact no longer holds"},
            {"name": "challenge_id", "type": ["null", "string"], "default": None,
             "doc": "decimal challenge id the event belongs to; null for an AIVM event whose task is not bound yet"},
            {"name": "args", "type": branches,
             "doc": "decoded parameters: uint>32 bits as decimal strings, addresses and bytes as lowercase 0x-hex"},
            {"name": "rekeyed_from", "type": ["null", "string"], "default": None,
             "doc": "set on an AIVM fact re-published under its challenge once its task was bound: the key it was"
                    " first published under (event id = original id + '@' + challenge id); whole-topic"
                    " consumers skip these, per-challenge consumers read them"},
        ],
    }


def schema_path(version: int = CHAIN_EVENT_VERSION) -> Any:
    return SCHEMAS_DIR / f"{CHAIN_EVENT}.v{version}.avsc"


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


if __name__ == "__main__":
    text = render(chain_event_schema())
    if "--write" in sys.argv:
        schema_path().write_text(text)
    else:
        sys.stdout.write(text)
