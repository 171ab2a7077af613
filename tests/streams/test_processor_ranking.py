"""Competitive ranking through the real evaluator and dispatcher (spec/evaluation.md §7 cases 1–9, plus
ties with identical timestamps, null scores, topN larger than the field and no evidence at all), and
threshold dispatch: one job, participants added later, canceled when the challenge is finalized."""

from __future__ import annotations

from kits.background import Background, wait_for
from kits.processors import (
    T0,
    TIMELINE,
    of_type,
    open_challenge,
    publish_block,
    publish_chain,
    publish_evidence,
    publish_registration,
    read_all,
    steps,
)
from kits.ranking import CASES, CREATOR, NAMES, NO_EVIDENCE, A, B, C, D, publish_inputs, t

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import JOBS, VERDICTS
from streams.dispatch import job_id_for
from streams.processors.dispatcher import Dispatcher
from streams.processors.evaluator import Evaluator


def start(settings: Settings) -> list[Background]:
    evaluator, dispatcher = Evaluator(settings), Dispatcher(settings)
    return [Background(evaluator.run, evaluator.stop.set), Background(dispatcher.run, dispatcher.stop.set)]


def rankings(settings: Settings) -> dict[int, dict]:
    return {r.event.payload["challenge_id"]: r.event.payload
            for r in of_type(read_all(settings, VERDICTS), "RankingPublished")}


def test_competitive_ranking_cases(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        expected_verdicts = publish_inputs(producer)
    stages = start(settings)
    try:
        wait_for(lambda: len(of_type(read_all(settings, VERDICTS), "VerdictIssued")) >= expected_verdicts,
                 what="every verdict")
        with EventProducer(settings, "test") as producer:
            publish_block(producer, 100, TIMELINE["endsAt"] + 60)  # chain time reaches the end
        wait_for(lambda: len(rankings(settings)) >= len(CASES), what="a ranking per case")
        wait_for(lambda: len(of_type(read_all(settings, JOBS), "JobQueued")) >= sum(bool(c.winners) for c in CASES),
                 what="a job per case with a winner")
    finally:
        for stage in stages:
            stage.stop()
    ranked = rankings(settings)
    jobs = {j.event.payload["challenge_id"]: j.event.payload for j in of_type(read_all(settings, JOBS), "JobQueued")}
    for case in CASES:
        outcomes = ranked[case.challenge_id]["outcomes"]
        assert tuple(NAMES[o["subject"]] for o in outcomes) == case.order, case
        assert tuple(NAMES[o["subject"]] for o in outcomes if o["pass"]) == case.winners, case
        for o in outcomes:
            assert (o["reason"] is None) == o["pass"]
        if case.winners:
            job = jobs[case.challenge_id]
            assert job["job_id"] == job_id_for(case.challenge_id)
            assert sorted(NAMES[p] for p in job["participants"]) == sorted(case.winners)
            assert job["mode"] == "competitive"
        else:
            assert case.challenge_id not in jobs
    assert NO_EVIDENCE not in ranked and NO_EVIDENCE not in jobs
    assert len(of_type(read_all(settings, JOBS), "JobQueued")) == len(jobs)  # one job per challenge


def test_threshold_one_job_participants_added_then_canceled(settings: Settings) -> None:
    cid = 201
    with EventProducer(settings, "test") as producer:
        publish_registration(producer, cid, {"rules": {"type": "fitness", "metric": "steps", "threshold": 100,
                                                       "period": "total"}})
        open_challenge(producer, cid, CREATOR, [A, B, C])
        publish_block(producer, 10, T0 + 86_400)  # inside the proof window
        publish_evidence(producer, cid, A, steps(500), at_ms=t(5))
        publish_evidence(producer, cid, C, steps(5), at_ms=t(4))  # fails the threshold
        publish_evidence(producer, cid, D, steps(900), at_ms=t(3))  # never joined
    stages = start(settings)
    try:
        wait_for(lambda: of_type(read_all(settings, JOBS), "JobQueued"), what="the job")
        with EventProducer(settings, "test") as producer:
            publish_evidence(producer, cid, A, steps(600), at_ms=t(2))  # passes again: no second job
            publish_evidence(producer, cid, B, steps(700), at_ms=t(1))
        wait_for(lambda: of_type(read_all(settings, JOBS), "JobParticipantsAdded"), what="B added")
        with EventProducer(settings, "test") as producer:
            publish_chain(producer, cid, "Finalized", {"id": str(cid), "status": 2, "outcome": 1}, block=11,
                          ts=T0 + 2 * 86_400)
        wait_for(lambda: of_type(read_all(settings, JOBS), "JobCanceled"), what="the cancel")
    finally:
        for stage in stages:
            stage.stop()
    jobs = read_all(settings, JOBS)
    queued = of_type(jobs, "JobQueued")
    assert len({q.event.event_id for q in queued}) == 1
    assert queued[0].event.payload["participants"] == [A]
    added = of_type(jobs, "JobParticipantsAdded")
    assert {a.event.event_id for a in added} == {added[0].event.event_id}
    assert added[0].event.payload["participants"] == [B]
    canceled = of_type(jobs, "JobCanceled")
    assert canceled[0].event.payload["job_id"] == job_id_for(cid)
