"""A worker killed (SIGKILL) after sending the request but before publishing it: the restart finds the
request on chain and publishes JobSubmitted without sending a second one. The same with two worker
instances working on several jobs each (LC_AIVM_WORKER_CONCURRENCY), both killed mid-flight and
restarted: still exactly one request per job."""

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


def start_worker(s: Settings, log_path: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LC_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "LC_SCHEMA_REGISTRY_URL": s.schema_registry_url,
           "LC_TOPIC_PREFIX": s.topic_prefix, "LC_RPC_URL": s.rpc_url, "LC_CHAIN_ID": str(s.chain_id),
           "LC_DEPLOYMENTS_FILE": s.deployments_file, "LC_PRIVATE_KEY": s.private_key,
           "LC_WRITER_BACKOFF_SECONDS": "0", **extra_env}
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


def test_two_instances_killed_mid_flight_still_make_exactly_one_request_per_job(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    challenges = [drive.create_challenge(creator=drive.players[i % len(drive.players)]) for i in range(4)]
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    for challenge in challenges:
        register(producer, challenge)
    worker_address = system.roles.worker.address
    eth = system.client.w3.eth
    env = {"LC_AIVM_WORKER_CONCURRENCY": "2", "LC_WRITER_REPLACE_AFTER_SECONDS": "0"}

    def pending() -> int:
        return eth.get_transaction_count(worker_address, "pending") - eth.get_transaction_count(worker_address, "latest")

    def bound() -> set[int]:
        return {e.payload["challenge_id"] for e in of_type(job_events(s), "TaskBindingRecorded")}

    system.client.rpc("evm_setAutomine", [False])  # requests wait in the mempool while the workers run
    logs = [tmp_path / f"worker-{n}.log" for n in ("a", "b")]
    first = [start_worker(s, log, **env) for log in logs]
    try:  # both instances own partitions (the second to join gets its share once the first gave it up)
        wait_for(lambda: all("assigned" in log.read_text() for log in logs), what="both instances assigned",
                 timeout=120)
        for challenge in challenges:
            queue_job(producer, challenge.id, [challenge.creator])
        wait_for(lambda: pending() >= 2 and len({e.payload["challenge_id"] for e in of_type(
            job_events(s), "JobProcessing")}) >= 3, what="jobs of both instances in flight", timeout=180)
        assert all("JobProcessing" in log.read_text() for log in logs)  # each instance is working on jobs
        for process in first:
            process.send_signal(signal.SIGKILL)
        for process in first:
            process.wait(30)
    finally:
        for process in first:
            process.kill()
    in_mempool = pending()
    system.client.rpc("evm_mine")
    system.client.rpc("evm_setAutomine", [True])
    requested_before_restart = system.client.call(system.aivm, "nextRequestId") - 1
    assert in_mempool >= 1 and requested_before_restart >= 1
    assert not of_type(job_events(s), "AivmRequestSent")  # no receipt came before the kill: none published

    second = [start_worker(s, tmp_path / f"worker-{n}2.log", **env) for n in ("a", "b")]
    try:
        wait_for(lambda: bound() == {c.id for c in challenges}, what="every job bound after the restart", timeout=240)
    finally:
        for process in second:
            process.send_signal(signal.SIGTERM)
        for process in second:
            process.wait(60)

    events = job_events(s)
    requests: dict[int, set[str]] = {}
    for sent in of_type(events, "AivmRequestSent"):
        requests.setdefault(sent.payload["challenge_id"], set()).add(sent.payload["request_id"])
    assert all(len(ids) == 1 for ids in requests.values()) and set(requests) == {c.id for c in challenges}
    assert sorted(int(i) for ids in requests.values() for i in ids) == [1, 2, 3, 4]
    assert system.client.call(system.aivm, "nextRequestId") == 5  # exactly one request per job
    # the requests the killed instances had sent were found on chain, not sent again
    recovered = {int(e.payload["request_id"]) for e in of_type(events, "AivmRequestSent") if e.payload["recovered"]}
    assert recovered == set(range(1, requested_before_restart + 1))
    assert all(p.returncode == 0 for p in second)
