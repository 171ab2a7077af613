"""Logs appear inside each transaction in the order spec §1.8 describes (native currency)."""

from __future__ import annotations

from devchain.events import EmittedEvent
from devchain.scenario import ETHER, Scenario


def _sequence(drive: Scenario, receipt: dict) -> list[str]:
    tx = receipt["transactionHash"].to_0x_hex()
    return [e.event for e in drive.events if e.tx_hash == tx]


def _of(events: list[EmittedEvent], tx: str) -> list[str]:
    return [e.event for e in events if e.tx_hash == tx]


def test_create_join_finalize_claim_sequences(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0], stake=ETHER)
    assert _of(drive.events, c.tx_hash) == ["BucketCreditedETH", "ChallengeCreated"]
    assert _sequence(drive, drive.join(c, p[1], ETHER)) == ["BucketCreditedETH", "Joined"]
    free = drive.create_challenge(creator=p[2], stake=0)
    assert _of(drive.events, free.tx_hash) == ["ChallengeCreated"]

    drive.advance_to(c.start_ts)
    assert _sequence(drive, drive.submit_failing_proof(c, p[1].address)) == ["ParticipantProofSubmitted"]
    marked = drive.mark_winner(c, p[0].address)
    assert _sequence(drive, marked) == ["ParticipantProofSubmitted", "WinnerMarked"]
    drive.advance_to(c.proof_deadline_ts)
    # a winner exists: protocol and creator shares, then the booking events
    assert _sequence(drive, drive.finalize(c.id)) == ["GrantETH", "GrantETH", "FeesBooked", "SnapshotSet",
                                                      "Finalized"]
    assert _sequence(drive, drive.claim_winner(c.id, p[0])) == ["GrantETH", "WinnerClaimed"]
    assert _sequence(drive, drive.treasury_claim_eth(c.id, p[0])) == ["ClaimedETH"]
    assert _sequence(drive, drive.auto_distribute(c.id, [], [p[1].address])) == [
        "GrantETH", "ClaimedETH", "LoserClaimed", "AutoDistributed"]


def test_no_winner_finalize_and_refund_sequences(drive: Scenario):
    p = drive.players
    c = drive.create_challenge(creator=p[0], stake=ETHER)
    drive.join(c, p[1], ETHER)
    drive.advance_to(c.proof_deadline_ts)
    # nobody won: the winners' share goes to the protocol first
    assert _sequence(drive, drive.finalize(c.id)) == ["GrantETH", "GrantETH", "GrantETH", "FeesBooked",
                                                      "SnapshotSet", "Finalized"]

    d = drive.create_challenge(creator=p[0], stake=ETHER)
    drive.join(d, p[1], ETHER)
    assert _sequence(drive, drive.cancel(d.id)) == ["Canceled"]
    assert _sequence(drive, drive.claim_refund(d.id, p[1])) == ["GrantETH", "RefundClaimed"]
    assert _sequence(drive, drive.auto_refund(d.id, [p[0].address])) == [
        "GrantETH", "ClaimedETH", "RefundClaimed", "AutoRefunded"]


def test_aivm_sequences(drive: Scenario):
    subject = drive.players[0].address
    inference = drive.request_inference(2, subject)
    assert _of(drive.events, inference.tx_hash) == ["InferenceRequestedV2"]
    drive.bind(2, subject, inference)
    drive.settle_inferences()
    aivm_events = [e.event for e in drive.events if e.contract == "AIVMInferenceV2"]
    assert aivm_events == ["InferenceRequestedV2", "InferenceCommitted", "InferenceRevealed", "PoIAttested",
                           "InferenceFinalized"]
    attest_tx = [e.tx_hash for e in drive.events if e.event == "PoIAttested"][0]
    assert _of(drive.events, attest_tx) == ["PoIAttested", "InferenceFinalized"]
