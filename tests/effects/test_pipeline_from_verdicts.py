"""From passing verdicts to a finalized challenge with the real stages: chain indexer, dispatcher,
AIVM worker, the AIVM simulator and the finalizer, on anvil and Kafka."""

from __future__ import annotations

import threading

from kits.background import Background, wait_for
from kits.writers import job_events, new_system, of_type, publish_verdict, register, writer_settings

from devchain.aivm_sim import AivmSimulator, SimConfig
from devchain.system import LightChallenge
from effects.aivm_worker import AivmWorker
from effects.finalizer import Finalizer
from eventlog.producer import EventProducer
from indexers.chain import run_indexer
from streams.processors.dispatcher import Dispatcher


def test_passing_verdicts_end_in_winners_and_a_successful_finalize(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    creator, joiner, loser = drive.players[:3]
    challenge = drive.create_challenge(creator=creator)
    drive.join(challenge, joiner)
    drive.join(challenge, loser)
    drive.advance_to(challenge.start_ts)
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    register(producer, challenge)

    stop_indexer = threading.Event()
    simulator = AivmSimulator(LightChallenge.attach(anvil, system.addresses), SimConfig(poll_seconds=0.1))
    dispatcher, worker, finalizer = Dispatcher(s), AivmWorker(s), Finalizer(s)
    runners = [
        Background(lambda: run_indexer(s, stop_indexer), stop_indexer.set),
        Background(dispatcher.run, dispatcher.stop.set),
        Background(simulator.run_forever, simulator.stop),
        Background(worker.run, worker.stop.set),
        Background(finalizer.run, finalizer.stop.set),
    ]
    try:
        publish_verdict(producer, challenge.id, creator.address, True)
        publish_verdict(producer, challenge.id, joiner.address, True)
        publish_verdict(producer, challenge.id, loser.address, False)
        winners = {creator.address.lower(), joiner.address.lower()}
        wait_for(lambda: {e.payload["participant"] for e in of_type(job_events(s), "ProofSubmitted")} == winners,
                 timeout=180, what="proofs for the passing participants")
        drive.advance_to(challenge.proof_deadline_ts)
        wait_for(lambda: of_type(job_events(s), "FinalizeSent"), timeout=180, what="finalize")
    finally:
        for runner in reversed(runners):
            runner.stop()

    [finalized] = of_type(job_events(s), "FinalizeSent")
    assert finalized.payload["outcome"] == 1 and finalized.payload["already_finalized"] is False
    for player, expected in ((creator, True), (joiner, True), (loser, False)):
        assert system.client.call(system.pay, "isWinner", challenge.id, player.address) is expected
    assert system.client.call(system.aivm, "nextRequestId") == 2
