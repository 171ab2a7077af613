"""After `ReorgTooDeep`: what diverged (`lc indexer check`) and the deliberate deep rollback
(`lc indexer rollback --max-depth N`), the first of the two procedures in docs/operations.md.

`diagnose` reads back everything the indexer published for the chain (no cap) and asks the node for
the canonical hash at each published height: the newest still canonical block is the ancestor, and
every published block above it is orphaned. `roll_back` then does what the indexer would have done
with a larger cap, once: it retracts the orphaned blocks' chain events and publishes their
BlockReverted, in one Kafka transaction under the indexer's own transactional id (so it fences an
indexer still running), and leaves. `lc run indexer` then resumes after the ancestor with its usual
cap: reading the blocks topic back, its window re-anchors at the rollback's ancestor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from domain.contracts import CHALLENGE_PAY
from eventlog.config import ConfigError
from eventlog.producer import EventProducer
from indexers.chain.catalogue import build_decoder_table, load_deployments
from indexers.chain.checkpoint import read_checkpoint, rewrite_entries
from indexers.chain.engine import ChainIndexer
from indexers.chain.kafka import KafkaSink, PublishedState, read_back, transactional_id
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.reorg import ReorgTooDeep
from indexers.chain.rpc import ChainRpc
from indexers.chain.service import PRODUCER_NAME
from indexers.chain.settings import ChainIndexerSettings

log = logging.getLogger("lc.indexer.chain")

UNCAPPED = 10**12  # a window that prunes nothing: every published block is compared with the node


@dataclass(frozen=True)
class Divergence:
    """How the published blocks compare with the node's canonical chain."""

    last_published: int | None
    ancestor: int | None  # newest published block still canonical (None: none is, or nothing published)
    orphaned: list[int]  # published blocks no longer canonical, newest first
    orphaned_events: int
    rollback_cap: int

    @property
    def depth(self) -> int:
        """Blocks the indexer would have to retract: from the oldest orphaned to the newest published."""
        return self.last_published - self.orphaned[-1] + 1 if self.orphaned and self.last_published is not None else 0

    @property
    def within_cap(self) -> bool:
        return self.depth <= self.rollback_cap

    def describe(self) -> str:
        if self.last_published is None:
            return "nothing published for this chain yet"
        if not self.orphaned:
            return f"published up to block {self.last_published}; every published block is canonical"
        return (f"published up to block {self.last_published}; the node's chain diverges after block "
                f"{self.ancestor if self.ancestor is not None else 'none (before the first published block)'}: "
                f"{len(self.orphaned)} published block(s) with {self.orphaned_events} chain event(s) orphaned, "
                f"{self.depth} blocks deep; rollback cap {self.rollback_cap}")


def diagnose(settings: ChainIndexerSettings) -> Divergence:
    state, rpc = _published(settings), ChainRpc(settings.rpc_url)
    try:
        return _divergence(state, rpc, settings.chain_rollback_cap)
    finally:
        rpc.close()


def roll_back(settings: ChainIndexerSettings, max_depth: int, *, dry_run: bool = False) -> Divergence:
    """Retract every orphaned published block, up to `max_depth` blocks deep (ReorgTooDeep beyond it)."""
    if max_depth <= settings.confirmations:
        raise ConfigError(f"--max-depth {max_depth} must exceed LC_CONFIRMATIONS={settings.confirmations}")
    addresses = _addresses(settings)
    rpc = ChainRpc(settings.rpc_url)
    try:
        if dry_run:
            divergence = _divergence(_published(settings), rpc, max_depth)
            if not divergence.within_cap:
                raise ReorgTooDeep(f"{divergence.describe()}: deeper than --max-depth {max_depth}")
            return divergence
        with EventProducer(settings, PRODUCER_NAME, transactional_id=transactional_id(settings.chain_id)) as producer:
            # created first: its init_transactions fences a running indexer and aborts its open transaction
            state = read_back(settings, settings.chain_id, max_depth, addresses[CHALLENGE_PAY])
            divergence = _divergence(state, rpc, max_depth)
            if divergence.orphaned:
                # the checkpoint follows the read-back state first (written whole, as after any read-back),
                # then the retractions, each transaction with the checkpoint entries it implies
                sink = KafkaSink(producer, settings.chain_id, state.checkpoint)
                indexer = ChainIndexer(
                    chain_id=settings.chain_id, source=rpc, table=build_decoder_table(addresses),
                    sink=sink, keyer=state.keyer, window=state.window,
                    confirmations=settings.confirmations, ranges=AdaptiveRange(settings.chain_max_block_range),
                )
                try:
                    sink.publish([], also=rewrite_entries(settings.chain_id, state.facts,
                                                          read_checkpoint(settings, settings.chain_id).facts))
                    indexer.roll_back()  # ReorgTooDeep when deeper than max_depth: nothing is published then
                finally:
                    indexer.close()
                    sink.close()
                log.warning("operator rollback: %s", divergence.describe())
            return divergence
    finally:
        rpc.close()


def _published(settings: ChainIndexerSettings) -> PublishedState:
    return read_back(settings, settings.chain_id, UNCAPPED, _addresses(settings)[CHALLENGE_PAY])


def _divergence(state: PublishedState, rpc: ChainRpc, cap: int) -> Divergence:
    window = state.window
    last = window.last
    if last is None:
        return Divergence(None, None, [], 0, cap)
    canonical = rpc.headers(window.numbers())
    orphaned, ancestor = [], None
    for entry in reversed(window.entries):
        header = canonical.get(entry.number)
        if header is not None and header.hash == entry.hash:
            ancestor = entry.number
            break
        orphaned.append(entry)
    return Divergence(last.number, ancestor, [e.number for e in orphaned],
                      sum(len(e.messages) for e in orphaned), cap)


def _addresses(settings: ChainIndexerSettings) -> dict[str, str]:
    if not settings.deployments_path.is_file():
        raise ConfigError(f"no deployments file at {settings.deployments_path} (LC_DEPLOYMENTS_FILE)")
    return load_deployments(settings.deployments_path)
