"""The chain side of the pipeline in one process for a test: the chain indexer, the dispatcher, the AIVM
worker, the AIVM simulator and the finalizer, on anvil and Kafka; a challenge with three players."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cli.settings import Settings
from devchain.aivm_sim import AivmSimulator, SimConfig
from devchain.scenario import Challenge, Scenario
from devchain.system import LightChallenge
from effects.aivm_worker import AivmWorker
from effects.finalizer import Finalizer
from eventlog.producer import EventProducer
from indexers.chain import run_indexer
from kits.background import Background
from kits.writers import new_system, publish_verdict
from streams.processors.dispatcher import Dispatcher


@contextmanager
def running_pipeline(s: Settings, anvil: str, system: LightChallenge,
                     sim_config: SimConfig | None = None) -> Iterator[AivmSimulator]:
    """Every stage from the chain indexer to the finalizer, and the AIVM simulator (yielded)."""
    stop_indexer = threading.Event()
    simulator = AivmSimulator(LightChallenge.attach(anvil, system.addresses), sim_config or SimConfig(poll_seconds=0.1))
    dispatcher, worker, finalizer = Dispatcher(s), AivmWorker(s), Finalizer(s)
    runners = [
        Background(lambda: run_indexer(s, stop_indexer), stop_indexer.set),
        Background(dispatcher.run, dispatcher.stop.set),
        Background(simulator.run_forever, simulator.stop),
        Background(worker.run, worker.stop.set),
        Background(finalizer.run, finalizer.stop.set),
    ]
    try:
        yield simulator
    finally:
        for runner in reversed(runners):
            runner.stop()


def challenge_with_players(anvil: str) -> tuple[LightChallenge, Scenario, Challenge]:
    """A started challenge of players[0] (staking creator) joined by players[1] and players[2]."""
    system, drive = new_system(anvil)
    creator, joiner, loser = drive.players[:3]
    challenge = drive.create_challenge(creator=creator)
    drive.join(challenge, joiner)
    drive.join(challenge, loser)
    drive.advance_to(challenge.start_ts)
    return system, drive, challenge


def two_pass_one_fails(producer: EventProducer, drive: Scenario, challenge: Challenge) -> set[str]:
    """Verdicts: players[0] and [1] pass, players[2] fails; returns the passing addresses, lower-cased."""
    creator, joiner, loser = drive.players[:3]
    publish_verdict(producer, challenge.id, creator.address, True)
    publish_verdict(producer, challenge.id, joiner.address, True)
    publish_verdict(producer, challenge.id, loser.address, False)
    return {creator.address.lower(), joiner.address.lower()}
