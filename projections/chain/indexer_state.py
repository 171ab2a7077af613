"""`indexer_state`: the original checkpoint keys, following lc.chain.blocks.

One chain indexer now publishes every contract's logs, so the original's three per-indexer keys
(last_aivm_block, last_claims_block, last_status_block) all hold the newest block whose facts are
published: a BlockConfirmed sets it to its number, a BlockReverted back to the common ancestor
(the parent of the orphaned block when the indexer named no ancestor). Values are decimal strings,
as the original's dashboards read them.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from eventlog.consumer import Received, Reject
from eventlog.topics import CHAIN_BLOCKS
from projections.chain.facts import UnreadableChainFact

CHECKPOINT_KEYS = ("last_aivm_block", "last_claims_block", "last_status_block")
BLOCK_CONFIRMED = "BlockConfirmed"
BLOCK_REVERTED = "BlockReverted"


def checkpoint_after(received: Received) -> int:
    """The newest published block once this blocks-topic message is applied."""
    event = received.event
    payload = event.payload
    if event.event_type == BLOCK_CONFIRMED:
        return int(payload["number"])
    if event.event_type == BLOCK_REVERTED:
        ancestor = payload.get("ancestor_number")
        return int(ancestor) if ancestor is not None else int(payload["number"]) - 1
    raise UnreadableChainFact(f"{received.topic}[{received.partition}]@{received.offset}: unexpected event type "
                              f"{event.event_type} on the blocks topic")


class IndexerStateProjection:
    name = "indexer_state"
    topics = (CHAIN_BLOCKS,)

    def prepare(self, events: Sequence[Received], reject: Reject) -> int | None:
        checkpoint = None
        for received in events:  # in topic order; the last message decides
            checkpoint = checkpoint_after(received)
        return checkpoint

    def write(self, conn: psycopg.Connection, checkpoint: int) -> None:
        conn.execute(
            """INSERT INTO indexer_state (key, value) SELECT unnest(%s::text[]), %s
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
            (list(CHECKPOINT_KEYS), str(max(checkpoint, 0))),
        )
