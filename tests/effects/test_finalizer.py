"""The whole chain-writer path on anvil and Kafka: queued job -> request + bindings (worker) -> the AIVM
simulator finalizes -> proofs for every participant -> finalize at the deadline (finalizer), with the
chain indexer publishing the facts and the chain time the finalizer reads."""

from __future__ import annotations

import threading

from kits.background import Background, wait_for
from kits.writers import (
    add_participants,
    job_events,
    new_system,
    of_type,
    queue_job,
    register,
    writer_settings,
)
from web3.logs import DISCARD

from devchain.aivm_sim import AivmSimulator, SimConfig
from devchain.system import LightChallenge
from effects.aivm_worker import AivmWorker
from effects.finalizer import Finalizer
from eventlog.producer import EventProducer
from indexers.chain import run_indexer

SUCCESS = 1


def proved(settings) -> set[str]:
    return {e.payload["participant"] for e in of_type(job_events(settings), "ProofSubmitted") if e.payload["ok"]}


def test_queued_job_ends_in_a_finalized_challenge_with_every_participant_a_winner(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    creator, joiner, late, outsider = drive.players[:4]
    challenge = drive.create_challenge(creator=creator)
    for player in (joiner, late, outsider):
        drive.join(challenge, player)
    drive.advance_to(challenge.start_ts)
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    register(producer, challenge)

    stop_indexer = threading.Event()
    simulator = AivmSimulator(LightChallenge.attach(anvil, system.addresses), SimConfig(poll_seconds=0.1))
    worker, finalizer = AivmWorker(s), Finalizer(s)
    runners = [
        Background(lambda: run_indexer(s, stop_indexer), stop_indexer.set),
        Background(simulator.run_forever, simulator.stop),
        Background(worker.run, worker.stop.set),
        Background(finalizer.run, finalizer.stop.set),
    ]
    try:
        queue_job(producer, challenge.id, [creator.address, joiner.address])
        named = {creator.address.lower(), joiner.address.lower()}
        wait_for(lambda: proved(s) == named, timeout=120, what="proofs for the queued participants")
        add_participants(producer, challenge.id, [late.address])
        named.add(late.address.lower())
        wait_for(lambda: proved(s) == named, timeout=120, what="the late participant's proof")
        assert not of_type(job_events(s), "FinalizeSent", "FinalizeFailed")  # chain time is before the deadline
        drive.advance_to(challenge.proof_deadline_ts)
        wait_for(lambda: of_type(job_events(s), "FinalizeSent"), timeout=120, what="finalize")
    finally:
        for runner in reversed(runners):
            runner.stop()

    events = job_events(s)
    [finalized] = of_type(events, "FinalizeSent")
    assert finalized.payload["outcome"] == SUCCESS and finalized.payload["already_finalized"] is False
    receipt = system.client.w3.eth.get_transaction_receipt(finalized.payload["tx_hash"])
    assert receipt["status"] == 1
    view = system.client.call(system.pay, "getChallenge", challenge.id)
    assert (view[2], view[3]) == (1, SUCCESS)  # Finalized, Success
    for player in (creator, joiner, late):
        assert system.client.call(system.pay, "isWinner", challenge.id, player.address)
    assert not system.client.call(system.pay, "isWinner", challenge.id, outsider.address)
    proofs = of_type(events, "ProofSubmitted")
    assert len(proofs) == 3 and all(p.payload["recovered"] is False for p in proofs)
    for proof in proofs:  # each proof transaction marked its participant a winner
        marked = system.pay.events.WinnerMarked().process_receipt(
            system.client.w3.eth.get_transaction_receipt(proof.payload["tx_hash"]), errors=DISCARD)
        assert [m["args"]["participant"].lower() for m in marked] == [proof.payload["participant"]]
    assert not of_type(events, "ProofFailed", "JobFailed")
    assert system.client.call(system.aivm, "nextRequestId") == 2  # one AIVM request for the whole job


def test_finalizer_reports_what_the_chain_already_has_instead_of_sending_again(settings, anvil, tmp_path):
    """A proof sent before (by a finalizer that died before publishing it) is reported as recovered with
    its transaction; a challenge finalized by someone else is reported as already finalized."""
    from effects import finalizer_state as fs
    from effects.chain import ChainWriter

    system, drive = new_system(anvil)
    creator, joiner = drive.players[:2]
    challenge = drive.create_challenge(creator=creator)
    drive.join(challenge, joiner)
    drive.advance_to(challenge.start_ts)
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    register(producer, challenge)

    stop_indexer = threading.Event()
    simulator = AivmSimulator(LightChallenge.attach(anvil, system.addresses), SimConfig(poll_seconds=0.1))
    worker = AivmWorker(s)
    runners = [
        Background(lambda: run_indexer(s, stop_indexer), stop_indexer.set),
        Background(simulator.run_forever, simulator.stop),
        Background(worker.run, worker.stop.set),
    ]
    try:
        queue_job(producer, challenge.id, [creator.address, joiner.address])
        wait_for(lambda: len(of_type(job_events(s), "TaskBindingRecorded")) == 2, what="bindings")
        wait_for(lambda: system.client.call(system.aivm, "requests", 1)[12] == 4, what="InferenceFinalized")
        # an earlier finalizer's proof for the creator, never published
        reader = ChainWriter(anvil, system.roles.finalizer, system.addresses)
        binding = reader.get_binding(challenge.id, creator.address)
        earlier_tx, ok = reader.submit_proof(challenge.id, creator.address,
                                             fs.build_proof(binding, challenge.id, creator.address.lower(), 0))
        assert ok

        finalizer = Finalizer(s)
        running = Background(finalizer.run, finalizer.stop.set)
        try:
            wait_for(lambda: len(of_type(job_events(s), "ProofSubmitted")) == 2, what="both proofs reported")
        finally:
            running.stop()
        by_participant = {e.payload["participant"]: e.payload for e in of_type(job_events(s), "ProofSubmitted")}
        assert by_participant[creator.address.lower()]["recovered"] is True
        assert by_participant[creator.address.lower()]["tx_hash"] == earlier_tx
        assert by_participant[joiner.address.lower()]["recovered"] is False

        drive.advance_to(challenge.proof_deadline_ts)
        drive.finalize(challenge.id, sender=drive.players[3])  # someone else finalizes first
        finalizer = Finalizer(s)
        running = Background(finalizer.run, finalizer.stop.set)
        try:
            wait_for(lambda: of_type(job_events(s), "FinalizeSent"), what="FinalizeSent")
        finally:
            running.stop()
    finally:
        for runner in reversed(runners):
            runner.stop()
    events = job_events(s)
    [finalized] = of_type(events, "FinalizeSent")
    assert finalized.payload["already_finalized"] is True and finalized.payload["tx_hash"] is None
    assert finalized.payload["outcome"] == SUCCESS
    assert len(of_type(events, "ProofSubmitted")) == 2  # nothing re-sent or re-published after the restart
    assert not of_type(events, "FinalizeFailed", "ProofFailed")
