"""From passing verdicts to a finalized challenge with the real stages: chain indexer, dispatcher,
AIVM worker, the AIVM simulator and the finalizer, on anvil and Kafka."""

from __future__ import annotations

from kits.background import wait_for
from kits.pipeline import challenge_with_players, running_pipeline, two_pass_one_fails
from kits.writers import job_events, of_type, register, writer_settings

from eventlog.producer import EventProducer


def test_passing_verdicts_end_in_winners_and_a_successful_finalize(settings, anvil, tmp_path):
    system, drive, challenge = challenge_with_players(anvil)
    creator, joiner, loser = drive.players[:3]
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    register(producer, challenge)

    with running_pipeline(s, anvil, system):
        winners = two_pass_one_fails(producer, drive, challenge)
        wait_for(lambda: {e.payload["participant"] for e in of_type(job_events(s), "ProofSubmitted")} == winners,
                 timeout=180, what="proofs for the passing participants")
        drive.advance_to(challenge.proof_deadline_ts)
        wait_for(lambda: of_type(job_events(s), "FinalizeSent"), timeout=180, what="finalize")

    [finalized] = of_type(job_events(s), "FinalizeSent")
    assert finalized.payload["outcome"] == 1 and finalized.payload["already_finalized"] is False
    for player, expected in ((creator, True), (joiner, True), (loser, False)):
        assert system.client.call(system.pay, "isWinner", challenge.id, player.address) is expected
    assert system.client.call(system.aivm, "nextRequestId") == 2
