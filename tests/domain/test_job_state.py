"""Job state fold: transitions, attempts, errors, AIVM facts, illegal events recorded not raised."""

from __future__ import annotations

import pytest

from domain.job_state import (
    CANCELED,
    COMMITTED,
    DEAD,
    DONE,
    FAILED,
    PROCESSING,
    QUEUED,
    REVEALED,
    SUBMITTED,
    InferenceCommitted,
    InferenceFinalized,
    InferenceRequested,
    InferenceRevealed,
    JobBook,
    JobCanceled,
    JobDead,
    JobFailed,
    JobProcessing,
    JobQueued,
    JobSubmitted,
    ParticipantsAdded,
    PoIAttested,
    apply_to_book,
    apply_to_job,
    job_row,
)

JOB = "job-1"
TASK = "0xABCDEF"


def fold(events, job=None):
    for event in events:
        job = apply_to_job(job, event)
    return job


def queued():
    return JobQueued("e-q", JOB, 42, ("0xA1",), "threshold")


def happy_path():
    return [queued(), JobProcessing("e-p", JOB), JobSubmitted("e-s", JOB, TASK, None, "0xWorker"),
            InferenceRequested("c-r", 7, TASK), InferenceCommitted("c-c", 7), InferenceRevealed("c-v", 7),
            PoIAttested("c-a", TASK.lower(), 1), InferenceFinalized("c-f", 7, TASK)]


def test_happy_path_states():
    events = happy_path()
    expected = [QUEUED, PROCESSING, SUBMITTED, SUBMITTED, COMMITTED, REVEALED, REVEALED, DONE]
    job = None
    for event, status in zip(events, expected, strict=True):
        job = apply_to_job(job, event)
        assert job.status == status
    assert (job.attempts, job.task_id, job.request_id, job.poi_count, job.ignored) == (1, "0xabcdef", 7, 1, ())
    assert job_row(job) == {"challenge_id": 42, "status": DONE, "attempts": 1, "last_error": None,
                            "worker_address": "0xWorker", "task_id": "0xabcdef"}


def test_failures_retries_and_dead():
    job = fold([queued(), JobProcessing("p1", JOB), JobFailed("f1", JOB, "rpc down"),
                JobProcessing("p2", JOB), JobFailed("f2", JOB, "x" * 5000)])
    assert (job.status, job.attempts, len(job.last_error)) == (FAILED, 2, 4000)
    job = fold([JobDead("d", JOB, "gave up")], job)
    assert (job.status, job.last_error) == (DEAD, "gave up")


def test_participants_added_are_merged():
    job = fold([queued(), ParticipantsAdded("a1", JOB, ("0xB2", "0xa1")), ParticipantsAdded("a2", JOB, ("0xC3",))])
    assert job.participants == ("0xa1", "0xb2", "0xc3")


SUBMITTED_PREFIX = [JobProcessing("p", JOB), JobSubmitted("s", JOB, TASK, 7)]


@pytest.mark.parametrize(("history", "status"), [
    ([*SUBMITTED_PREFIX, InferenceFinalized("fin", 7, TASK)], DONE),
    ([JobProcessing("p", JOB), JobDead("dead", JOB, "boom")], DEAD),
    ([*SUBMITTED_PREFIX, JobCanceled("cx", JOB, "challenge finalized")], CANCELED),
])
def test_every_event_after_a_terminal_state_is_recorded_and_ignored(history, status):
    base = fold([queued(), *history])
    assert base.status == status
    late = [ParticipantsAdded("l1", JOB, ("0xZZ",)), JobProcessing("l2", JOB), JobCanceled("l3", JOB, "late"),
            InferenceRevealed("l4", 7), JobFailed("l5", JOB, "late")]
    job = fold(late, base)
    assert job.status == status
    assert [i.event_id for i in job.ignored] == ["l1", "l2", "l3", "l4", "l5"]
    assert all(i.reason == f"job is {status}" for i in job.ignored)
    assert job.participants == ("0xa1",)


def test_downgrades_are_recorded_and_ignored():
    job = fold([queued(), JobProcessing("p", JOB), JobSubmitted("s", JOB, TASK, 7), InferenceRevealed("v", 7),
                InferenceCommitted("c", 7), JobSubmitted("s2", JOB, TASK, 7)])
    assert job.status == REVEALED
    assert [(i.kind, i.reason) for i in job.ignored] == [
        ("InferenceCommitted", "committed would not advance a revealed job"),
        ("JobSubmitted", "submitted would not advance a revealed job"),
    ]


def test_dead_only_after_an_attempt():
    job = fold([queued(), *SUBMITTED_PREFIX, JobDead("d", JOB, "?")])
    assert job.status == SUBMITTED
    assert job.ignored[0].reason == "a submitted job cannot die"


def test_illegal_job_transitions_are_recorded():
    job = fold([queued(), JobFailed("f", JOB, "?"), JobDead("d", JOB, "?"), JobProcessing("p", JOB),
                JobProcessing("p2", JOB), JobQueued("q2", JOB, 42, ())])
    assert (job.status, job.attempts) == (PROCESSING, 1)
    assert [i.reason for i in job.ignored] == [
        "a queued job cannot fail", "a queued job cannot die", "cannot start processing a processing job",
        "job already queued"]


def test_redelivered_events_are_no_ops():
    events = happy_path()
    once = fold(events)
    twice = fold(events + events)
    assert once == twice


def test_cancel_from_any_open_state():
    for prefix in ([queued()], [queued(), JobProcessing("p", JOB)],
                   [queued(), JobProcessing("p", JOB), JobSubmitted("s", JOB, TASK)]):
        job = fold([*prefix, JobCanceled("cx", JOB, "Challenge canceled")])
        assert (job.status, job.last_error) == (CANCELED, "Challenge canceled")


def test_chain_facts_move_a_failed_job_forward():
    # The worker failed after its request was mined: the chain says the request exists.
    job = fold([queued(), JobProcessing("p", JOB), JobFailed("f", JOB, "bind tx failed")])
    job = fold([InferenceRequested("r", 9, TASK)], job)
    assert (job.status, job.request_id) == (SUBMITTED, 9)


def test_events_for_unknown_jobs_do_not_create_jobs():
    assert apply_to_job(None, JobProcessing("p", JOB)) is None


# --- the book routes chain facts by task and request ---------------------------------------------

def book_of(events):
    book = JobBook.empty()
    for event in events:
        book = apply_to_book(book, event)
    return book


def test_book_routes_by_task_and_request():
    book = book_of(happy_path())
    assert book.jobs[JOB].status == DONE
    assert book.pending == ()


def test_chain_facts_before_the_job_names_its_task_wait_then_apply():
    book = book_of([queued(), JobProcessing("p", JOB), InferenceRequested("r", 7, TASK), InferenceCommitted("c", 7)])
    assert book.jobs[JOB].status == PROCESSING
    assert len(book.pending) == 2
    book = apply_to_book(book, JobSubmitted("s", JOB, TASK))
    assert (book.jobs[JOB].status, book.jobs[JOB].request_id, book.pending) == (COMMITTED, 7, ())


def test_foreign_chain_facts_stay_pending_and_are_bounded():
    book = book_of([InferenceRequested(f"r{i}", i, f"0x{i:x}") for i in range(1005)])
    assert len(book.pending) == 1000
    assert book.pending[0].event_id == "r5"


def test_book_records_events_for_unknown_jobs():
    book = book_of([JobFailed("f", "nope", "x")])
    assert [(i.event_id, i.reason) for i in book.ignored] == [("f", "unknown job nope")]


def test_two_jobs_are_independent():
    other = [JobQueued("q2", "job-2", 43, ("0xB2",)), JobProcessing("p2", "job-2"),
             JobSubmitted("s2", "job-2", "0x99", 8), InferenceCommitted("c2", 8)]
    book = book_of([*happy_path()[:3], *other])
    assert (book.jobs[JOB].status, book.jobs["job-2"].status) == (SUBMITTED, COMMITTED)


def test_facts_from_decoded_aivm_events():
    from domain.job_state import chain_fact_from_event

    task = "0x" + "ab" * 32
    assert chain_fact_from_event("e1", "InferenceRequestedV2", {
        "requestId": "7", "requester": "0xr", "taskId": task, "model": "m"}) == InferenceRequested("e1", 7, task)
    assert chain_fact_from_event("e2", "InferenceCommitted", {"requestId": "7"}) == InferenceCommitted("e2", 7)
    assert chain_fact_from_event("e3", "InferenceRevealed", {"requestId": 7}) == InferenceRevealed("e3", 7)
    assert chain_fact_from_event("e4", "PoIAttested", {"taskId": task, "count": 2}) == PoIAttested("e4", task, 2)
    assert chain_fact_from_event("e5", "InferenceFinalized", {"requestId": "7", "taskId": task}) == (
        InferenceFinalized("e5", 7, task))
    assert chain_fact_from_event("e6", "WorkerSlashed", {"requestId": "7"}) is None
