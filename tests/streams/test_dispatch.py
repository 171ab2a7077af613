"""Dispatch decisions: threshold and competitive jobs, participants, cancellation, determinism."""

from __future__ import annotations

from domain.chain_time import ChainTime
from domain.challenge_state import (
    ChallengeCanceled,
    ChallengeCreated,
    ChallengeFinalized,
    ChallengePaused,
    ChallengeRegistered,
    ParticipantJoined,
    VerificationConfigUpdated,
)
from streams.dispatch import (
    CANCEL_REASON,
    NOT_A_PARTICIPANT,
    AddParticipants,
    CancelJob,
    DispatchPolicy,
    PublishRanking,
    QueueJob,
    VerdictFact,
    decide,
    job_id_for,
    replay,
)

CID = 42
START, END, DEADLINE = 1_000, 2_000, 3_000
TIMELINE = {"startsAt": START, "endsAt": END, "proofDeadline": DEADLINE}
CREATOR, ALICE, BOB, CAROL = "0xC0", "0xA1", "0xB2", "0xC3"


def registered(mode="threshold", top_n=1):
    params = {"mode": "competitive", "topN": top_n} if mode == "competitive" else {"minWins": 1}
    return ChallengeRegistered(CID, params=params, timeline=TIMELINE, model_id="dota.private_match_1v1@1",
                               subject=CREATOR)


def opened(mode="threshold", top_n=1, joiners=(ALICE, BOB, CAROL)):
    return [registered(mode, top_n), ChallengeCreated(CID, CREATOR, START),
            *[ParticipantJoined(CID, who) for who in joiners]]


def verdict(subject, pass_=True, score=1.0, at=1_500):
    return VerdictFact(CID, subject, pass_, score, at)


def of_type(decisions, kind):
    return [d for d in decisions if isinstance(d, kind)]


# --- threshold ---------------------------------------------------------------------------------

def test_threshold_first_passing_participant_queues_one_job():
    _, decisions = replay(CID, [*opened(), ChainTime(1_500), verdict(ALICE)])
    assert decisions == [QueueJob(decisions[0].decision_id, job_id_for(CID), CID, "threshold", ("0xa1",))]


def test_threshold_never_two_jobs_and_later_passes_are_added():
    facts = [*opened(), ChainTime(1_500), verdict(ALICE), verdict(ALICE), ChainTime(1_600),
             verdict(BOB, pass_=False), verdict(BOB), verdict(CREATOR)]
    state, decisions = replay(CID, facts)
    assert len(of_type(decisions, QueueJob)) == 1
    adds = of_type(decisions, AddParticipants)
    assert [a.participants for a in adds] == [("0xb2",), ("0xc0",)]
    assert all(a.job_id == job_id_for(CID) for a in adds)
    assert state.job_participants == {"0xa1", "0xb2", "0xc0"}


def test_threshold_every_participant_counts_not_only_the_creator():
    _, decisions = replay(CID, [*opened(), ChainTime(1_500), verdict(CAROL)])
    assert of_type(decisions, QueueJob)[0].participants == ("0xc3",)


def test_threshold_ignores_subjects_who_did_not_join():
    _, decisions = replay(CID, [*opened(joiners=()), ChainTime(1_500), verdict(ALICE)])
    assert decisions == []
    _, decisions = replay(CID, [*opened(joiners=()), ChainTime(1_500), verdict(ALICE), ParticipantJoined(CID, ALICE)])
    assert of_type(decisions, QueueJob)[0].participants == ("0xa1",)


def test_threshold_waits_for_chain_creation_and_start():
    no_chain = [registered(), ParticipantJoined(CID, ALICE), ChainTime(1_500), verdict(ALICE)]
    assert replay(CID, no_chain)[1] == []
    early = [*opened(), ChainTime(900), verdict(ALICE)]
    assert replay(CID, early)[1] == []
    assert len(replay(CID, [*early, ChainTime(1_000)])[1]) == 1


def test_threshold_not_after_the_proof_deadline():
    assert replay(CID, [*opened(), ChainTime(3_001), verdict(ALICE)])[1] == []


def test_chain_deadline_update_overrides_the_registered_one():
    facts = [*opened(), VerificationConfigUpdated(CID, 4_000), ChainTime(3_500), verdict(ALICE)]
    assert len(of_type(replay(CID, facts)[1], QueueJob)) == 1


def test_threshold_paused_challenge_waits():
    facts = [*opened(), ChallengePaused(CID, True), ChainTime(1_500), verdict(ALICE)]
    assert replay(CID, facts)[1] == []
    assert len(replay(CID, [*facts, ChallengePaused(CID, False)])[1]) == 1


def test_verdict_casing_is_one_subject():
    facts = [*opened(), ChainTime(1_500), verdict("0xA1"), verdict("0xa1")]
    state, decisions = replay(CID, facts)
    assert len(decisions) == 1
    assert [v.subject for v in state.verdicts] == ["0xa1"]


def test_facts_of_other_challenges_are_ignored():
    facts = [*opened(), ChainTime(1_500), VerdictFact(CID + 1, ALICE, True, 1.0, 1)]
    assert replay(CID, facts)[1] == []


# --- cancellation ------------------------------------------------------------------------------

def test_job_canceled_when_challenge_finalized_or_canceled():
    for terminal in (ChallengeFinalized(CID, 2), ChallengeCanceled(CID)):
        state, decisions = replay(CID, [*opened(), ChainTime(1_500), verdict(ALICE), terminal, terminal])
        cancels = of_type(decisions, CancelJob)
        assert [(c.job_id, c.reason) for c in cancels] == [(job_id_for(CID), CANCEL_REASON)]
        assert state.job_canceled is True


def test_no_job_no_cancel_and_nothing_after_the_end():
    _, decisions = replay(CID, [*opened(), ChallengeCanceled(CID), ChainTime(1_500), verdict(ALICE)])
    assert decisions == []


# --- competitive -------------------------------------------------------------------------------

def competitive_history(top_n=2):
    return [*opened("competitive", top_n), ChainTime(1_500),
            verdict(ALICE, score=100, at=1_100), verdict(BOB, score=500, at=1_200),
            verdict(CAROL, score=250, at=1_300), verdict("0xOutsider", score=999, at=1_000)]


def test_competitive_waits_for_the_end_of_the_challenge():
    _, decisions = replay(CID, competitive_history())
    assert decisions == []


def test_competitive_ranks_once_and_queues_the_top_n():
    state, decisions = replay(CID, [*competitive_history(), ChainTime(2_000), ChainTime(2_100),
                                    verdict(ALICE, score=10_000, at=1_900)])
    ranking, job = decisions
    assert isinstance(ranking, PublishRanking) and isinstance(job, QueueJob)
    assert [(o.subject, o.pass_) for o in ranking.outcomes] == [
        ("0xb2", True), ("0xc3", True), ("0xa1", False), ("0xoutsider", False)]
    assert ranking.outcomes[-1].reason == NOT_A_PARTICIPANT
    assert (job.mode, job.participants, job.job_id) == ("competitive", ("0xb2", "0xc3"), job_id_for(CID))
    assert len(decisions) == 2  # a verdict after the ranking changes nothing


def test_competitive_not_ranked_after_the_proof_deadline_by_default():
    assert replay(CID, [*competitive_history(), ChainTime(3_001)])[1] == []


def test_competitive_policy_ranking_after_the_proof_deadline():
    policy = DispatchPolicy(rank_at="proof_deadline")
    assert replay(CID, [*competitive_history(), ChainTime(3_000)], policy)[1] == []
    decisions = replay(CID, [*competitive_history(), ChainTime(3_001)], policy)[1]
    assert [type(d) for d in decisions] == [PublishRanking, QueueJob]


def test_competitive_grace_period():
    policy = DispatchPolicy(grace_seconds=300)
    assert replay(CID, [*competitive_history(), ChainTime(2_299)], policy)[1] == []
    assert len(replay(CID, [*competitive_history(), ChainTime(2_300)], policy)[1]) == 2


def test_competitive_without_evidence_waits_for_a_verdict():
    facts = [*opened("competitive"), ChainTime(2_500)]
    assert replay(CID, facts)[1] == []
    decisions = replay(CID, [*facts, verdict(ALICE, score=3)])[1]
    assert of_type(decisions, QueueJob)[0].participants == ("0xa1",)


def test_competitive_only_null_scores_publishes_a_ranking_without_a_job():
    facts = [*opened("competitive"), verdict(ALICE, pass_=False, score=None), ChainTime(2_500)]
    decisions = replay(CID, facts)[1]
    assert [type(d) for d in decisions] == [PublishRanking]


def test_competitive_job_canceled_on_finalization():
    decisions = replay(CID, [*competitive_history(), ChainTime(2_000), ChallengeFinalized(CID, 1)])[1]
    assert [type(d) for d in decisions] == [PublishRanking, QueueJob, CancelJob]


# --- determinism -------------------------------------------------------------------------------

def test_replay_gives_identical_decisions_and_ids():
    facts = [*competitive_history(), ChainTime(2_000), ChallengeCanceled(CID)]
    assert replay(CID, facts) == replay(CID, facts)


def test_decision_ids_depend_on_inputs():
    first = replay(CID, [*opened(), ChainTime(1_500), verdict(ALICE)])[1][0]
    second = replay(CID, [*opened(), ChainTime(1_500), verdict(BOB)])[1][0]
    assert first.decision_id != second.decision_id
    assert first.job_id == second.job_id


def test_redelivered_fact_makes_no_new_decision():
    state, _ = replay(CID, [*opened(), ChainTime(1_500), verdict(ALICE)])
    again, decisions = decide(state, verdict(ALICE))
    assert decisions == [] and again == state
