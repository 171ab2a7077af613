"""The AIVM worker on anvil with the project's contracts and real Kafka."""

from __future__ import annotations

import time

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

from effects.aivm_worker import AivmWorker
from eventlog.producer import EventProducer


def test_queued_job_is_requested_once_and_every_participant_bound(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    creator, second, late = drive.players[0], drive.players[1], drive.players[2]
    challenge = drive.create_challenge(creator=creator)
    drive.join(challenge, second)
    drive.join(challenge, late)
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    queue_job(producer, challenge.id, [creator.address, second.address])

    worker = AivmWorker(s)
    runner = Background(worker.run, worker.stop.set)
    try:
        wait_for(lambda: len(of_type(job_events(s), "TaskBindingRecorded")) == 2, what="two bindings")
        add_participants(producer, challenge.id, [late.address])
        wait_for(lambda: len(of_type(job_events(s), "TaskBindingRecorded")) == 3, what="the late participant's binding")
    finally:
        runner.stop()

    events = job_events(s)
    assert [e.event_type for e in events if e.event_type.startswith("Job")] == [
        "JobQueued", "JobProcessing", "JobSubmitted", "JobParticipantsAdded"]
    [sent] = of_type(events, "AivmRequestSent")
    [submitted] = of_type(events, "JobSubmitted")
    assert sent.payload["recovered"] is False and sent.payload["request_id"] == "1"
    assert submitted.payload["request_id"] == "1" and submitted.payload["task_id"] == sent.payload["task_id"]
    assert submitted.payload["worker_address"] == system.roles.worker.address.lower()
    assert system.client.call(system.aivm, "nextRequestId") == 2  # exactly one request
    request = system.client.call(system.aivm, "requests", 1)
    assert request[0] == system.roles.worker.address and request[1] == "apple_health.steps@1"
    for player in (creator, second, late):
        binding = system.client.call(system.task_registry, "getBinding", challenge.id, player.address)
        assert binding[0] == 1 and "0x" + binding[1].hex() == sent.payload["task_id"] and binding[6] is True
    bound = {e.payload["subject"] for e in of_type(events, "TaskBindingRecorded")}
    assert bound == {p.address.lower() for p in (creator, second, late)}


def test_a_failing_request_fails_with_the_reason_then_dies_after_max_attempts(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    system.client.send(system.aivm, "setSpamControls", 10**18, 0, sender=system.roles.admin)  # fee 1e15 too low
    s = writer_settings(settings, system, tmp_path, aivm_max_attempts=2)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    queue_job(producer, challenge.id, [challenge.creator])

    worker = AivmWorker(s)
    runner = Background(worker.run, worker.stop.set)
    try:
        wait_for(lambda: of_type(job_events(s), "JobDead"), what="JobDead")
    finally:
        runner.stop()

    events = [e for e in job_events(s) if e.event_type.startswith("Job")]
    assert [e.event_type for e in events] == [
        "JobQueued", "JobProcessing", "JobFailed", "JobProcessing", "JobFailed", "JobDead"]
    assert all(e.payload["error"].startswith("InsufficientFee") for e in events if "error" in e.payload)
    assert len({e.event_id for e in events}) == len(events)
    assert system.client.call(system.aivm, "nextRequestId") == 1  # nothing was requested


def test_a_canceled_challenge_is_not_requested(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    drive.cancel(challenge.id)
    s = writer_settings(settings, system, tmp_path, writer_backoff_seconds=3600.0)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    queue_job(producer, challenge.id, [challenge.creator])

    worker = AivmWorker(s)
    runner = Background(worker.run, worker.stop.set)
    try:
        wait_for(lambda: challenge.id in worker.retry_at, what="the worker to look at the job and hold it")
    finally:
        runner.stop()
    assert [e.event_type for e in job_events(s)] == ["JobQueued"]
    assert system.client.call(system.aivm, "nextRequestId") == 1


def test_a_failed_binding_is_reported_and_retried_without_a_second_request(settings, anvil, tmp_path):
    """spec §5.2's trap: the request is mined but recordBinding fails. The job stays submitted, the
    failure is published, and the binding is retried until it is recorded (never marked done without it)."""
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    drive.set_registry_dispatcher(system.roles.worker.address, False)
    s = writer_settings(settings, system, tmp_path, writer_backoff_seconds=0.05, writer_backoff_max_seconds=0.2)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    queue_job(producer, challenge.id, [challenge.creator])

    worker = AivmWorker(s)
    runner = Background(worker.run, worker.stop.set)
    try:
        wait_for(lambda: len(of_type(job_events(s), "TaskBindingFailed")) >= 2, what="binding failures")
        drive.set_registry_dispatcher(system.roles.worker.address, True)
        wait_for(lambda: of_type(job_events(s), "TaskBindingRecorded"), what="the binding once authorized")
    finally:
        runner.stop()

    events = job_events(s)
    failures = of_type(events, "TaskBindingFailed")
    assert all(f.payload["error"].startswith("NotAuthorized") for f in failures)
    assert [f.payload["attempt"] for f in failures] == list(range(1, len(failures) + 1))
    assert [e.event_type for e in events if e.event_type.startswith("Job")] == [
        "JobQueued", "JobProcessing", "JobSubmitted"]
    assert system.client.call(system.aivm, "nextRequestId") == 2
    assert system.client.call(system.task_registry, "getBinding", challenge.id, challenge.creator)[6] is True


def test_the_worker_waits_out_a_node_outage_without_failing_the_job(settings, anvil, tmp_path):
    from kits.rpc_gate import RpcGate

    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    gate = RpcGate(anvil)
    s = writer_settings(settings, system, tmp_path, writer_backoff_seconds=0.05, writer_backoff_max_seconds=0.2)
    s = s.replace(rpc_url=gate.url)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    gate.open = False  # the node is unreachable when the worker starts and when the job arrives
    worker = AivmWorker(s)
    runner = Background(worker.run, worker.stop.set)
    try:
        queue_job(producer, challenge.id, [challenge.creator])
        wait_for(lambda: gate.refused >= 3, what="the worker retrying against the closed node")
        assert [e.event_type for e in job_events(s)] == ["JobQueued"]
        gate.open = True
        wait_for(lambda: of_type(job_events(s), "TaskBindingRecorded"), what="the job done once the node is back")
    finally:
        runner.stop()
        gate.close()
    assert [e.event_type for e in job_events(s) if e.event_type.startswith("Job")] == [
        "JobQueued", "JobProcessing", "JobSubmitted"]
    assert system.client.call(system.aivm, "nextRequestId") == 2


def test_one_instance_works_on_several_jobs_at_once_up_to_its_concurrency(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    challenges = [drive.create_challenge(creator=drive.players[i]) for i in range(3)]
    s = writer_settings(settings, system, tmp_path, aivm_worker_concurrency=2, writer_replace_after_seconds=0.0)
    producer = EventProducer(s, "test")
    for challenge in challenges:
        register(producer, challenge)
    system.client.rpc("evm_setAutomine", [False])  # the first request waits in the mempool: jobs stay in flight
    worker = AivmWorker(s)
    runner = Background(worker.run, worker.stop.set)
    most_in_flight = 0
    try:
        for challenge in challenges:
            queue_job(producer, challenge.id, [challenge.creator])
        wait_for(lambda: len(worker.in_flight) == 2, what="two jobs in flight")
        for _ in range(20):
            most_in_flight = max(most_in_flight, len(worker.in_flight))
            time.sleep(0.05)
        system.client.rpc("evm_mine")
        system.client.rpc("evm_setAutomine", [True])
        wait_for(lambda: len(of_type(job_events(s), "TaskBindingRecorded")) == 3, what="three jobs bound",
                 timeout=120)
    finally:
        system.client.rpc("evm_setAutomine", [True])
        runner.stop()

    assert most_in_flight == 2  # never more than LC_AIVM_WORKER_CONCURRENCY
    kinds = [(e.event_type, e.payload["challenge_id"]) for e in job_events(s) if e.event_type.startswith("Job")]
    started_before_any_submitted = {c for kind, c in kinds[:kinds.index(next(k for k in kinds if k[0] == "JobSubmitted"))]
                                    if kind == "JobProcessing"}
    assert len(started_before_any_submitted) == 2  # two jobs were started before the first request was mined
    assert system.client.call(system.aivm, "nextRequestId") == 4  # one request per job
