"""Challenge state fold: registration metadata with the on-chain lifecycle."""

from __future__ import annotations

from domain.challenge_state import (
    ACTIVE,
    CANCELED,
    FINALIZED,
    PAUSED,
    ChallengeCanceled,
    ChallengeCreated,
    ChallengeFinalized,
    ChallengePaused,
    ChallengeRegistered,
    ParticipantJoined,
    VerificationConfigUpdated,
    apply_challenge_fact,
    challenge_row,
)

CID = 7
REGISTRATION = ChallengeRegistered(
    CID, params={"rule": {"challengeType": "run", "period": {}}, "mode": "competitive", "topN": 3},
    proof={"backend": "lightchain_poi"}, timeline={"startsAt": 100, "endsAt": 200, "proofDeadline": 300},
    model_id="fitness.distance@1", model_hash="0xabc", subject="0xCreator", title="10k",
)


def fold(facts):
    state = None
    for fact in facts:
        state = apply_challenge_fact(state, fact)
    return state


def test_registration_gives_rule_mode_top_n_and_deadlines():
    state = fold([REGISTRATION])
    assert (state.registered, state.mode, state.top_n, state.model_id, state.subject) == (
        True, "competitive", 3, "fitness.distance@1", "0xcreator")
    assert (state.starts_at, state.ends_at, state.proof_deadline) == (100, 200, 300)
    assert state.rule.fitness.challenge_type == "run"
    assert state.status is None  # not on chain yet


def test_lifecycle_with_original_status_strings():
    state = fold([REGISTRATION, ChallengeCreated(CID, "0xCreator", 150)])
    assert (state.status, state.is_active, state.starts_at, state.participants) == (ACTIVE, True, 150,
                                                                                    frozenset({"0xcreator"}))
    state = apply_challenge_fact(state, ChallengePaused(CID, True))
    assert state.status == PAUSED
    state = apply_challenge_fact(state, ChallengePaused(CID, False))
    assert state.status == ACTIVE
    state = apply_challenge_fact(state, ChallengeFinalized(CID, 1))
    assert (state.status, state.chain_outcome, state.is_terminal) == (FINALIZED, 1, True)
    assert challenge_row(state)["status"] == "Finalized"


def test_terminal_status_is_not_overwritten_by_a_later_pause():
    state = fold([REGISTRATION, ChallengeCreated(CID, "0xC"), ChallengeCanceled(CID), ChallengePaused(CID, False),
                  ChallengeFinalized(CID, 2)])
    assert (state.status, state.chain_outcome) == (CANCELED, None)
    assert state.ignored == ("Paused after the challenge was Canceled", "Finalized after the challenge was Canceled")


def test_joined_participants_are_lower_cased_and_unique():
    state = fold([ChallengeCreated(CID, "0xC"), ParticipantJoined(CID, "0xAA"), ParticipantJoined(CID, "0xaa")])
    assert state.participants == frozenset({"0xc", "0xaa"})


def test_chain_facts_before_registration_are_kept():
    state = fold([ChallengeCreated(CID, "0xC"), ParticipantJoined(CID, "0xB"), REGISTRATION])
    assert (state.status, state.registered, len(state.participants)) == (ACTIVE, True, 2)


def test_finalized_for_an_unused_id_then_created_stays_finalized():
    state = fold([ChallengeFinalized(CID, 2), ChallengeCreated(CID, "0xC")])
    assert state.status == FINALIZED


def test_chain_proof_deadline_wins():
    state = fold([REGISTRATION, VerificationConfigUpdated(CID, 999)])
    assert state.proof_deadline == 999


def test_facts_of_another_challenge_are_ignored():
    state = fold([REGISTRATION, ChallengeCanceled(CID + 1)])
    assert state.status is None
    assert state.ignored == (f"ChallengeCanceled for challenge {CID + 1}",)


def test_pause_before_creation_is_ignored():
    state = fold([REGISTRATION, ChallengePaused(CID, True)])
    assert state.status is None and state.ignored == ("Paused before the challenge was created",)


def test_facts_from_decoded_chain_events():
    from domain.challenge_state import challenge_fact_from_chain

    assert challenge_fact_from_chain("ChallengeCreated", {
        "id": "7", "creator": "0xc", "kind": 1, "currency": 0, "token": "0x0", "startTs": "150",
        "externalId": "0x00"}) == ChallengeCreated(7, "0xc", 150)
    assert challenge_fact_from_chain("Joined", {"id": "7", "user": "0xb", "amount": "5"}) == ParticipantJoined(7, "0xb")
    assert challenge_fact_from_chain("Finalized", {"id": "7", "status": 1, "outcome": 2}) == ChallengeFinalized(7, 2)
    assert challenge_fact_from_chain("Canceled", {"id": 7}) == ChallengeCanceled(7)
    assert challenge_fact_from_chain("Paused", {"id": "7", "paused": False}) == ChallengePaused(7, False)
    assert challenge_fact_from_chain("VerificationConfigUpdated", {
        "id": "7", "verifier": "0xv", "proofDeadlineTs": "900"}) == VerificationConfigUpdated(7, 900)
    assert challenge_fact_from_chain("WinnerClaimed", {"id": "7", "user": "0xb", "amount": "1"}) is None
    assert challenge_fact_from_chain("ClaimedETH", {"bucketId": "7"}) is None
