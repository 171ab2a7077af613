"""AIVM recovery end to end (issue 14 §1), with the real stages on anvil and Kafka: the chain indexer,
the dispatcher, the AIVM worker, the AIVM simulator and the finalizer.

- The simulator commits the first request and never reveals it. Once confirmed chain time passes the
  reveal deadline, the worker publishes JobExpired, sends a second request and binds the passing
  participants to it; the simulator answers that one, the finalizer proves both participants and
  finalizes: they are winners (outcome Success), the participant who failed is not.
- What happens at the deadline: a request that expires too close to the proof deadline is not
  re-requested (no proof could land): the job is dead with the reason, and the finalizer finalizes at
  the deadline with outcome Fail.
"""

from __future__ import annotations

from kits.background import wait_for
from kits.pipeline import challenge_with_players, running_pipeline, two_pass_one_fails
from kits.writers import job_events, of_type, register, writer_settings

from devchain.aivm_sim import AivmSimulator, SimConfig
from devchain.system import LightChallenge
from eventlog.producer import EventProducer
from eventlog.serde import Event

STATUS_COMMITTED = 2


def job_transitions(events: list[Event]) -> list[str]:
    """The job's status events (the dispatcher may name the second passing participant later)."""
    return [e.event_type for e in events if e.event_type.startswith("Job") and e.event_type != "JobParticipantsAdded"]


def first_request_missed_its_reveal(system: LightChallenge, simulator: AivmSimulator) -> int:
    """Wait until the simulator committed request 1 and skipped its reveal; its reveal deadline."""
    wait_for(lambda: simulator.missed == 1, timeout=180, what="the simulator to skip the first reveal")
    request = system.client.call(system.aivm, "requests", 1)
    assert request[12] == STATUS_COMMITTED
    return int(request[10])


def test_a_reveal_missed_once_is_re_requested_and_the_passing_participants_win(settings, anvil, tmp_path):
    system, drive, challenge = challenge_with_players(anvil)
    creator, joiner, loser = drive.players[:3]
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    register(producer, challenge)

    with running_pipeline(s, anvil, system, SimConfig(poll_seconds=0.1, miss="reveal", miss_count=1)) as simulator:
        winners = two_pass_one_fails(producer, drive, challenge)
        reveal_deadline = first_request_missed_its_reveal(system, simulator)
        assert not of_type(job_events(s), "JobExpired")  # before the deadline the request can still finish
        drive.advance_to(reveal_deadline + 1)
        wait_for(lambda: {e.payload["participant"] for e in of_type(job_events(s), "ProofSubmitted")} == winners,
                 timeout=180, what="proofs for the passing participants after the re-request")
        drive.advance_to(challenge.proof_deadline_ts)
        wait_for(lambda: of_type(job_events(s), "FinalizeSent"), timeout=180, what="finalize")

    events = job_events(s)
    [expired] = of_type(events, "JobExpired")
    assert (expired.payload["request_id"], expired.payload["request_status"]) == ("1", STATUS_COMMITTED)
    assert expired.payload["deadline"] == reveal_deadline < expired.payload["chain_time"]
    assert "still Committed after its reveal deadline" in expired.payload["error"]
    sent = of_type(events, "AivmRequestSent")
    assert [(e.payload["request_id"], e.payload["recovered"]) for e in sent] == [("1", False), ("2", False)]
    second_task = sent[1].payload["task_id"]
    assert job_transitions(events) == [
        "JobQueued", "JobProcessing", "JobSubmitted", "JobExpired", "JobProcessing", "JobSubmitted",
        "JobCanceled"]  # the dispatcher's, once the challenge is Finalized
    assert {e.payload["subject"] for e in of_type(events, "TaskBindingRecorded")
            if e.payload["task_id"] == second_task} == winners
    assert {e.payload["task_id"] for e in of_type(events, "ProofSubmitted")} == {second_task}
    [finalized] = of_type(events, "FinalizeSent")
    assert finalized.payload["outcome"] == 1
    for player, expected in ((creator, True), (joiner, True), (loser, False)):
        assert system.client.call(system.pay, "isWinner", challenge.id, player.address) is expected
        if expected:  # the old binding was replaced by the re-request's
            assert system.client.call(system.task_registry, "getBinding", challenge.id, player.address)[0] == 2
    assert system.client.call(system.aivm, "nextRequestId") == 3  # exactly one re-request


def test_a_request_expiring_too_close_to_the_proof_deadline_is_not_re_requested(settings, anvil, tmp_path):
    system, drive, challenge = challenge_with_players(anvil)
    s = writer_settings(settings, system, tmp_path, aivm_request_min_window_seconds=600)
    producer = EventProducer(s, "test")
    register(producer, challenge)

    with running_pipeline(s, anvil, system, SimConfig(poll_seconds=0.1, miss="reveal")) as simulator:
        two_pass_one_fails(producer, drive, challenge)
        first_request_missed_its_reveal(system, simulator)
        drive.advance_to(challenge.proof_deadline_ts - 300)  # past the reveal deadline, 5 min before the deadline
        wait_for(lambda: of_type(job_events(s), "JobDead"), timeout=180, what="the job to die")
        assert not of_type(job_events(s), "FinalizeSent")  # the deadline has not come: nothing final yet
        drive.advance_to(challenge.proof_deadline_ts)
        wait_for(lambda: of_type(job_events(s), "FinalizeSent"), timeout=180, what="finalize at the deadline")

    events = job_events(s)
    assert job_transitions(events)[:7] == [
        "JobQueued", "JobProcessing", "JobSubmitted", "JobExpired", "JobProcessing", "JobFailed", "JobDead"]
    [dead] = of_type(events, "JobDead")
    assert "no AIVM request can be proved any more" in dead.payload["error"]
    assert of_type(events, "ProofSubmitted") == []
    [finalized] = of_type(events, "FinalizeSent")
    assert finalized.payload["outcome"] == 2  # Fail: nobody could be proved
    assert system.client.call(system.aivm, "nextRequestId") == 2  # no second request
