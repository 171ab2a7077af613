"""Entry points the CLI calls: `run_indexer` (`lc run indexer`) and `seed` (`lc indexer seed --lookback N`).

One process per chain. RPC failures are retried inside the engine; a Kafka failure tears the
producer down, reads the state back from what was really published and carries on. Two things
halt the process on purpose: a reorg deeper than the rollback cap and a pipeline contract's log that
does not decode; both need an operator, and skipping either would corrupt every later state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException

from domain.contracts import CHALLENGE_PAY
from eventlog.admission import StageHalted
from eventlog.config import ConfigError, redact_url
from eventlog.producer import DeliveryFailed, EventProducer
from indexers.chain.catalogue import build_decoder_table, load_deployments
from indexers.chain.decode import UndecodableLog
from indexers.chain.engine import Backoff, ChainIndexer, StopSignal
from indexers.chain.kafka import KafkaSink, restore, transactional_id
from indexers.chain.messages import block_confirmed
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.reorg import ReorgTooDeep
from indexers.chain.rpc import ChainRpc, RpcError
from indexers.chain.settings import ChainIndexerSettings

log = logging.getLogger("lc.indexer.chain")

PRODUCER_NAME = "lc-chain-indexer"


class AlreadySeeded(RuntimeError):
    """The chain already has published blocks; seeding again would rewrite where history starts."""


@dataclass(frozen=True)
class SeedResult:
    anchor_block: int
    first_indexed_block: int


def run_indexer(settings: ChainIndexerSettings, stop_event: StopSignal) -> None:
    """Index `settings.rpc_url` into lc.chain.events / lc.chain.blocks until `stop_event` is set."""
    if settings.chain_rollback_cap <= settings.confirmations:
        raise ConfigError(f"LC_CHAIN_ROLLBACK_CAP={settings.chain_rollback_cap} must exceed "
                          f"LC_CONFIRMATIONS={settings.confirmations}: reorgs past the confirmation depth must "
                          f"still be rolled back")
    addresses = _addresses(settings)
    table = build_decoder_table(addresses)
    rpc = ChainRpc(settings.rpc_url)
    backoff = Backoff()
    try:
        _check_chain_id(rpc, settings, stop_event, backoff)
        while not stop_event.is_set():
            producer: EventProducer | None = None
            sink: KafkaSink | None = None
            try:
                producer = EventProducer(settings, PRODUCER_NAME, transactional_id=transactional_id(settings.chain_id))
                # the producer exists first: its init_transactions aborts a crashed predecessor's open transaction
                state = restore(settings, settings.chain_id, settings.chain_rollback_cap, addresses[CHALLENGE_PAY],
                                from_zero=settings.restore_from_zero)
                last = state.window.last
                log.info("chain %d: resuming after block %s (%s: %d block and %d event messages read, %d bound tasks)",
                         settings.chain_id, last.number if last else "none (from genesis)",
                         "checkpoint" if state.from_checkpoint else "read back from offset 0", state.blocks_read,
                         state.events_read, state.keyer.bound_tasks)
                sink = KafkaSink(producer, settings.chain_id, state.checkpoint)
                if not state.from_checkpoint:
                    sink.publish([], also=state.rewrite)  # the checkpoint, written whole
                indexer = ChainIndexer(
                    chain_id=settings.chain_id, source=rpc, table=table, sink=sink,
                    keyer=state.keyer, window=state.window, confirmations=settings.confirmations,
                    ranges=AdaptiveRange(settings.chain_max_block_range, log_budget=settings.chain_range_log_budget),
                    workers=settings.chain_workers,
                )
                indexer.run(stop_event, poll_seconds=settings.chain_poll_seconds, backoff=backoff)
            except (KafkaException, DeliveryFailed) as exc:
                delay = backoff.delay()
                log.error("Kafka failure (%s); re-reading the published state in %.1f s", exc, delay)
                stop_event.wait(delay)
            except ReorgTooDeep as exc:
                log.critical("CHAIN INDEXER HALTED: %s. Operator procedure (docs/operations.md, \"Chain reorg "
                             "beyond the rollback cap\"): `lc indexer check`, then `lc indexer rollback --max-depth N` "
                             "and start the indexer again, or re-index into fresh topics.", exc)
                raise
            except UndecodableLog as exc:
                log.critical("CHAIN INDEXER HALTED: undecodable pipeline log: %s", exc)
                raise
            except StageHalted as exc:
                log.critical("CHAIN INDEXER HALTED on a published chain fact it cannot read back: %s. Nothing "
                             "is published until the topic is repaired.", exc)
                raise
            finally:
                if sink is not None:
                    sink.close()
                if producer is not None:
                    try:
                        producer.close()
                    except (KafkaException, DeliveryFailed):
                        pass
    finally:
        rpc.close()


def seed(settings: ChainIndexerSettings, lookback: int) -> SeedResult:
    """Start a fresh deployment `lookback` blocks behind the head instead of from genesis.

    Publishes the header of the block just before the first one to index as the checkpoint anchor;
    refuses when this chain already has published blocks.
    """
    if lookback < 0:
        raise ValueError("lookback must be >= 0")
    addresses = _addresses(settings)
    rpc = ChainRpc(settings.rpc_url)
    try:
        _check_chain_id(rpc, settings, None, Backoff())
        with EventProducer(settings, PRODUCER_NAME, transactional_id=transactional_id(settings.chain_id)) as producer:
            state = restore(settings, settings.chain_id, settings.chain_rollback_cap, addresses[CHALLENGE_PAY])
            if state.window.last is not None:
                raise AlreadySeeded(f"chain {settings.chain_id} already published up to block "
                                    f"{state.window.last.number}; seed only applies to a fresh deployment")
            first = max(0, rpc.block_number() - lookback)
            if first == 0:
                return SeedResult(-1, 0)  # genesis: nothing to anchor
            anchor = rpc.headers([first - 1])[first - 1]
            if anchor is None:
                raise RpcError(f"node has no block {first - 1}")
            sink = KafkaSink(producer, settings.chain_id, state.checkpoint)
            try:
                sink.publish([block_confirmed(settings.chain_id, anchor, 0)], also=state.rewrite)
            finally:
                sink.close()
            log.info("chain %d seeded: indexing starts at block %d", settings.chain_id, first)
            return SeedResult(anchor.number, first)
    finally:
        rpc.close()


def _addresses(settings: ChainIndexerSettings) -> dict[str, str]:
    path = settings.deployments_path
    if not path.is_file():
        raise ConfigError(f"no deployments file at {path} (LC_DEPLOYMENTS_FILE); deploy the contracts first")
    return load_deployments(path)


def _check_chain_id(rpc: ChainRpc, settings: ChainIndexerSettings, stop: StopSignal | None, backoff: Backoff) -> None:
    while True:
        try:
            actual = rpc.chain_id()
            break
        except RpcError as exc:
            if stop is None:
                raise
            delay = backoff.delay()
            log.warning("node at %s not answering (%s); retrying in %.1f s", redact_url(settings.rpc_url), exc, delay)
            if stop.wait(delay):
                return
    backoff.reset()
    if actual != settings.chain_id:
        raise ConfigError(f"LC_CHAIN_ID={settings.chain_id} but the node at {redact_url(settings.rpc_url)} "
                          f"is chain {actual}")
