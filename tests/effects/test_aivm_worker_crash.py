"""A worker killed (SIGKILL) after sending the request but before publishing it: the restart finds the
request on chain and publishes JobSubmitted without sending a second one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from kits.background import wait_for
from kits.writers import job_events, new_system, of_type, queue_job, register, writer_settings

from cli.settings import Settings
from eventlog.producer import EventProducer

ROOT = Path(__file__).resolve().parents[2]


def start_worker(s: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LC_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "LC_SCHEMA_REGISTRY_URL": s.schema_registry_url,
           "LC_TOPIC_PREFIX": s.topic_prefix, "LC_RPC_URL": s.rpc_url, "LC_CHAIN_ID": str(s.chain_id),
           "LC_DEPLOYMENTS_FILE": s.deployments_file, "LC_PRIVATE_KEY": s.private_key,
           "LC_WRITER_BACKOFF_SECONDS": "0"}
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "cli.main", "run", "aivm-worker"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def test_killed_after_the_request_restart_publishes_it_without_a_second_request(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    worker_address = system.roles.worker.address
    eth = system.client.w3.eth

    system.client.rpc("evm_setAutomine", [False])  # the request will sit in the mempool
    queue_job(producer, challenge.id, [challenge.creator])
    first = start_worker(s, tmp_path / "worker.log")
    try:
        wait_for(lambda: eth.get_transaction_count(worker_address, "pending") > eth.get_transaction_count(
            worker_address, "latest"), what="the worker's request in the mempool", timeout=180)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        first.kill()
    system.client.rpc("evm_mine")
    system.client.rpc("evm_setAutomine", [True])
    assert system.client.call(system.aivm, "nextRequestId") == 2  # the request is on chain
    assert [e.event_type for e in job_events(s)] == ["JobQueued", "JobProcessing"]  # but not published

    second = start_worker(s, tmp_path / "worker.log")
    try:
        wait_for(lambda: of_type(job_events(s), "TaskBindingRecorded"), what="the binding after the restart", timeout=180)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)

    events = job_events(s)
    assert [e.event_type for e in events if e.event_type.startswith("Job")] == [
        "JobQueued", "JobProcessing", "JobSubmitted"]
    [sent] = of_type(events, "AivmRequestSent")
    assert sent.payload["recovered"] is True and sent.payload["request_id"] == "1"
    request_tx = eth.get_transaction(sent.payload["tx_hash"])
    assert request_tx["from"] == worker_address
    assert system.client.call(system.aivm, "nextRequestId") == 2  # still exactly one request
    assert second.returncode == 0
