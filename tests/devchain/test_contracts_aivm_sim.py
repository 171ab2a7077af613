"""The local AIVM network simulator drives requests to InferenceFinalized, honours delays, and can miss."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from eth_utils import keccak
from kits.contracts import args_of

from chain import aivm
from devchain.aivm_sim import AivmSimulator, SimConfig
from devchain.build import PROJECT_ROOT
from devchain.scenario import Inference, Scenario
from devchain.system import LightChallenge

FINALIZED_TOPIC = "0x" + keccak(text="InferenceFinalized(uint256,bytes32,address,bytes32,uint256,uint256)").hex()


def _finalized_logs(system: LightChallenge) -> list[dict]:
    return system.client.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": system.aivm.address,
                                          "topics": [FINALIZED_TOPIC]})


def _bound_request(drive: Scenario, challenge_id: int = 2) -> Inference:
    subject = drive.players[0].address
    inference = drive.request_inference(challenge_id, subject)
    drive.bind(challenge_id, subject, inference)
    return inference


def _status(system: LightChallenge, request_id: int) -> int:
    return system.client.call(system.aivm, "requests", request_id)[12]


def test_simulator_drives_a_bound_request_to_inference_finalized(system: LightChallenge, drive: Scenario):
    inference = _bound_request(drive, challenge_id=42)
    sim = AivmSimulator(system)

    actions = sim.step()

    assert [a.stage for a in actions] == ["commit", "reveal", "attest"]
    assert all(a.error is None for a in actions)
    logs = _finalized_logs(system)
    assert len(logs) == 1
    final = args_of(system.aivm.events.InferenceFinalized,
                    system.client.w3.eth.get_transaction_receipt(actions[-1].tx_hash))[0]
    assert (final["requestId"], final["taskId"]) == (inference.request_id, inference.task_id)
    assert final["resultHash"] == aivm.response_hash(aivm.canonical_response(42))
    assert sim.requests[inference.request_id].outcome == "finalized"
    assert sim.step() == []  # nothing left to do


def test_unbound_requests_wait_for_their_binding(system: LightChallenge, drive: Scenario):
    subject = drive.players[0].address
    inference = drive.request_inference(7, subject)
    sim = AivmSimulator(system)
    assert sim.step() == []
    assert _status(system, inference.request_id) == aivm.STATUS_REQUESTED
    drive.bind(7, subject, inference)
    assert [a.stage for a in sim.step()] == ["commit", "reveal", "attest"]
    assert _status(system, inference.request_id) == aivm.STATUS_FINALIZED


def test_quorum_of_two_gets_two_validators(system: LightChallenge, drive: Scenario):
    system.client.send(system.aivm, "setPoIQuorum", 2, sender=system.roles.admin)
    inference = _bound_request(drive)
    AivmSimulator(system).step()
    assert system.client.call(system.aivm, "poiAttestationCount", inference.task_id) == 2
    assert _status(system, inference.request_id) == aivm.STATUS_FINALIZED


def test_delays_in_blocks(system: LightChallenge, drive: Scenario):
    inference = _bound_request(drive)
    sim = AivmSimulator(system, SimConfig(commit_delay=3, reveal_delay=2))
    assert sim.step() == []
    system.client.mine(3)
    assert [a.stage for a in sim.step()] == ["commit"]
    assert _status(system, inference.request_id) == aivm.STATUS_COMMITTED
    system.client.mine(2)
    assert [a.stage for a in sim.step()] == ["reveal", "attest"]
    assert _status(system, inference.request_id) == aivm.STATUS_FINALIZED


def test_delays_in_seconds_of_chain_time(system: LightChallenge, drive: Scenario):
    inference = _bound_request(drive)
    sim = AivmSimulator(system, SimConfig(reveal_delay=300, attest_delay=100, delay_unit="seconds"))
    assert [a.stage for a in sim.step()] == ["commit"]
    committed_at = sim.requests[inference.request_id].mark_time
    system.client.mine_at(committed_at + 299)  # exact block times: anvil's clock otherwise follows the wall
    assert sim.step() == []
    system.client.mine_at(committed_at + 300)
    assert [a.stage for a in sim.step()] == ["reveal"]
    revealed_at = sim.requests[inference.request_id].mark_time
    system.client.mine_at(revealed_at + 99)
    assert sim.step() == []
    system.client.mine_at(revealed_at + 100)
    assert [a.stage for a in sim.step()] == ["attest"]
    assert _status(system, inference.request_id) == aivm.STATUS_FINALIZED


def test_missed_reveal_deadline_leaves_the_request_unfinalized(system: LightChallenge, drive: Scenario):
    inference = _bound_request(drive)
    sim = AivmSimulator(system, SimConfig(miss="reveal"))
    assert [a.stage for a in sim.step()] == ["commit"]
    reveal_deadline = system.client.call(system.aivm, "requests", inference.request_id)[10]
    drive.advance_to(reveal_deadline + 1)
    assert sim.step() == []
    assert sim.requests[inference.request_id].outcome == "missed"
    assert _status(system, inference.request_id) == aivm.STATUS_COMMITTED
    assert _finalized_logs(system) == []
    # a late worker can no longer reveal: the request is stranded until someone times it out
    drive.client.send(system.aivm, "timeoutReveal", inference.request_id, sender=drive.players[3])
    assert _status(system, inference.request_id) == aivm.STATUS_TIMED_OUT


def test_a_reveal_delayed_past_the_deadline_fails_and_never_finalizes(system: LightChallenge, drive: Scenario):
    inference = _bound_request(drive)
    sim = AivmSimulator(system, SimConfig(reveal_delay=2_000, delay_unit="seconds"))
    sim.step()
    drive.client.increase_time(2_000)
    actions = sim.step()
    assert [(a.stage, a.error) for a in actions] == [("reveal", "DeadlinePassed")]
    assert sim.requests[inference.request_id].outcome == "failed"
    assert _finalized_logs(system) == []


def test_run_forever_in_a_thread_until_stopped(system: LightChallenge, drive: Scenario):
    sim = AivmSimulator(system, SimConfig(poll_seconds=0.05))
    thread = threading.Thread(target=sim.run_forever, daemon=True)
    thread.start()
    try:
        inference = _bound_request(drive)
        deadline = time.monotonic() + 30
        while _status(system, inference.request_id) != aivm.STATUS_FINALIZED:
            assert time.monotonic() < deadline, "simulator did not finalize within 30 s"
            time.sleep(0.05)
    finally:
        sim.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_command_line_deploy_and_simulator(anvil: str, tmp_path: Path):
    deployments = tmp_path / "deployments.json"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    subprocess.run([sys.executable, "-m", "devchain.deploy", "--rpc", anvil, "--out", str(deployments)],
                   check=True, cwd=tmp_path, env=env, capture_output=True)
    document = json.loads(deployments.read_text())
    assert document["chainId"] == 31337
    assert set(document["contracts"]) >= {"ChallengePay", "Treasury", "AIVMInferenceV2", "ChallengeTaskRegistry",
                                           "MetadataRegistry", "ChallengePayAivmPoiVerifier"}
    system = LightChallenge.from_deployments(anvil, deployments)
    assert system.client.call(system.treasury, "hasRole", keccak(text="OPERATOR_ROLE"), system.pay.address)

    log = (tmp_path / "sim.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devchain.aivm_sim", "--rpc", anvil, "--deployments", str(deployments),
         "--poll", "0.1"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        inference = _bound_request(Scenario(system))
        deadline = time.monotonic() + 60
        while "request 1 finalized" not in (tmp_path / "sim.log").read_text():
            assert process.poll() is None, (tmp_path / "sim.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "sim.log").read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
        log.close()
    assert _status(system, inference.request_id) == aivm.STATUS_FINALIZED
