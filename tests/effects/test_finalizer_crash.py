"""The finalizer killed (SIGKILL) after sending a proof but before publishing it: the restart reports
that proof from the chain (recovered, with its transaction) and proves only the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from kits.background import Background, wait_for
from kits.writers import job_events, new_system, of_type, queue_job, register, writer_settings
from web3.logs import DISCARD

from cli.settings import Settings
from devchain.aivm_sim import AivmSimulator, SimConfig
from devchain.system import LightChallenge
from effects.aivm_worker import AivmWorker
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import CHAIN_EVENTS
from indexers.chain import run_indexer
from indexers.chain.kafka import read_topic

ROOT = Path(__file__).resolve().parents[2]


def start_finalizer(s: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LC_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "LC_SCHEMA_REGISTRY_URL": s.schema_registry_url,
           "LC_TOPIC_PREFIX": s.topic_prefix, "LC_RPC_URL": s.rpc_url, "LC_CHAIN_ID": str(s.chain_id),
           "LC_DEPLOYMENTS_FILE": s.deployments_file, "LC_FINALIZER_PRIVATE_KEY": s.finalizer_private_key,
           "LC_WRITER_BACKOFF_SECONDS": "0"}
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "cli.main", "run", "finalizer"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def inference_finalized_published(s: Settings, challenge_id: int) -> bool:
    serde = EventSerde(s.schema_registry_url)
    events = (serde.decode(m.value()).payload for m in read_topic(s, CHAIN_EVENTS))
    return any(e["event"] == "InferenceFinalized" and e["challenge_id"] == str(challenge_id) for e in events)


def test_killed_after_a_proof_restart_reports_it_and_proves_the_rest(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    creator, joiner = drive.players[:2]
    challenge = drive.create_challenge(creator=creator)
    drive.join(challenge, joiner)
    drive.advance_to(challenge.start_ts)
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    finalizer_address = system.roles.finalizer.address
    eth = system.client.w3.eth

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
        wait_for(lambda: inference_finalized_published(s, challenge.id), timeout=120, what="InferenceFinalized")
        simulator.stop()

        system.client.rpc("evm_setAutomine", [False])  # the first proof will sit in the mempool
        first = start_finalizer(s, tmp_path / "finalizer.log")
        try:
            wait_for(lambda: eth.get_transaction_count(finalizer_address, "pending") > eth.get_transaction_count(
                finalizer_address, "latest"), timeout=180, what="the finalizer's first proof in the mempool")
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        finally:
            first.kill()
        [pending] = system.client.rpc("eth_getBlockByNumber", ["pending", True])["transactions"]
        system.client.rpc("evm_mine")
        system.client.rpc("evm_setAutomine", [True])
        first_proved, second_proved = sorted([creator.address, joiner.address], key=str.lower)  # proof order
        assert system.client.call(system.pay, "isWinner", challenge.id, first_proved)
        assert not of_type(job_events(s), "ProofSubmitted")

        second = start_finalizer(s, tmp_path / "finalizer.log")
        try:
            wait_for(lambda: len(of_type(job_events(s), "ProofSubmitted")) == 2, timeout=180, what="both proofs")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        system.client.rpc("evm_setAutomine", [True])
        for runner in reversed(runners):
            runner.stop()

    proofs = {e.payload["participant"]: e.payload for e in of_type(job_events(s), "ProofSubmitted")}
    assert proofs[first_proved.lower()]["recovered"] is True
    assert proofs[first_proved.lower()]["tx_hash"] == pending["hash"].lower()
    assert proofs[second_proved.lower()]["recovered"] is False
    submitted = []  # exactly one ParticipantProofSubmitted per participant on chain
    for tx_hash in (pending["hash"], proofs[second_proved.lower()]["tx_hash"]):
        receipt = eth.get_transaction_receipt(tx_hash)
        submitted += [e["args"]["participant"] for e in
                      system.pay.events.ParticipantProofSubmitted().process_receipt(receipt, errors=DISCARD)]
    assert sorted(submitted) == sorted([creator.address, joiner.address])
    assert system.client.call(system.pay, "getChallenge", challenge.id)[16] == 2  # winnersCount
