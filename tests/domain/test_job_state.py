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
    JobExpired,
    JobFailed,
    JobProcessing,
    JobQueued,
    JobRequeued,
    JobRunRequested,
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
                            "worker_address": "0xWorker", "task_id": "0xabcdef", "operator_command": None,
                            "operator_name": None, "operator_reason": None}


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


# --- recovery: an expired request is retired and the job retried with a new one -------------------

TASK_2 = "0x2222"


def expired_once():
    return [queued(), JobProcessing("p1", JOB), JobSubmitted("s1", JOB, TASK, 7), InferenceCommitted("c1", 7),
            JobExpired("x1", JOB, TASK, "request 7 expired", 7), JobProcessing("p2", JOB),
            JobSubmitted("s2", JOB, TASK_2, 8)]


def test_an_expired_request_fails_the_job_and_the_next_request_carries_it_on():
    job = fold(expired_once()[:5])
    assert (job.status, job.last_error, job.expired_requests, job.retired_tasks) == (
        FAILED, "request 7 expired", 1, frozenset({TASK.lower()}))
    job = fold(expired_once()[5:], job)
    assert (job.status, job.attempts, job.task_id, job.request_id) == (SUBMITTED, 2, TASK_2, 8)
    # late facts of the retired request change nothing, a stale JobSubmitted of it neither
    late = fold([InferenceRevealed("v1", 7), InferenceFinalized("f1", 7, TASK), JobSubmitted("s1b", JOB, TASK, 7)],
                job)
    assert (late.status, late.task_id) == (SUBMITTED, TASK_2)
    assert [i.reason for i in late.ignored][-3:] == ["request 7 expired", *[f"task {TASK.lower()} expired"] * 2]


def test_expiry_in_any_arrival_order_of_the_chain_facts_ends_in_the_same_job():
    """The projection folds lc.jobs and lc.chain.events in whatever order they arrive (live or rebuild)."""
    job_events = [queued(), JobProcessing("p1", JOB), JobSubmitted("s1", JOB, TASK, 7),
                  JobExpired("x1", JOB, TASK, "request 7 expired", 7), JobProcessing("p2", JOB),
                  JobSubmitted("s2", JOB, TASK_2, 8)]
    chain = [InferenceRequested("r1", 7, TASK), InferenceCommitted("c1", 7), InferenceRequested("r2", 8, TASK_2),
             InferenceCommitted("c2", 8)]
    ends = set()
    for cut in range(len(job_events) + 1):
        book = book_of([*job_events[:cut], *chain, *job_events[cut:]])
        job = book.jobs[JOB]
        ends.add((job.status, job.task_id, job.attempts, job.expired_requests))
    assert ends == {(COMMITTED, TASK_2, 2, 1)}


def test_expiry_of_a_request_that_is_not_the_current_one_only_retires_it():
    job = fold([queued(), JobProcessing("p1", JOB), JobExpired("x0", JOB, "0xold", "stale")])
    assert (job.status, job.retired_tasks, job.expired_requests) == (PROCESSING, frozenset({"0xold"}), 0)


# --- operator facts --------------------------------------------------------------------------------

def dead_job():
    return fold([queued(), JobProcessing("p1", JOB), JobFailed("f1", JOB, "boom"), JobDead("d", JOB, "boom")])


def test_requeue_takes_a_dead_job_back_to_queued_with_a_fresh_budget():
    job = fold([JobRequeued("rq1", JOB, "alice", "fee raised")], dead_job())
    assert (job.status, job.attempts, job.attempt_base, job.attempts_since_requeue, job.requeues) == (
        QUEUED, 1, 1, 0, 1)
    assert (job.operator_command, job.operator, job.operator_reason) == ("requeue", "alice", "fee raised")
    again = fold([JobRequeued("rq1", JOB, "alice", "fee raised")], job)  # the same command twice
    assert again == job
    job = fold([JobProcessing("p2", JOB)], job)
    assert (job.status, job.attempts, job.attempts_since_requeue) == (PROCESSING, 2, 1)


def test_requeue_of_a_live_job_is_recorded_and_ignored():
    job = fold([queued(), JobProcessing("p", JOB), JobRequeued("rq", JOB, "bob", "why")])
    assert job.status == PROCESSING and job.operator_command is None
    assert job.ignored[-1].reason == "only a dead or failed job can be requeued, not a processing one"
    done = fold([*SUBMITTED_PREFIX, InferenceFinalized("f", 7, TASK), JobRequeued("rq", JOB, "bob", "why")],
                fold([queued()]))
    assert done.status == DONE and done.ignored[-1].reason == "job is done"


def test_run_and_operator_cancel_are_shown_with_who_and_why():
    job = fold([queued(), JobRunRequested("run1", JOB, "carol", "network back")])
    assert (job.status, job.operator_command, job.operator) == (QUEUED, "run", "carol")
    job = fold([JobCanceled("cx", JOB, "wrong model", operator="dave")], job)
    assert (job.status, job.last_error, job.operator_command, job.operator, job.operator_reason) == (
        CANCELED, "wrong model", "cancel", "dave", "wrong model")
    dispatcher_cancel = fold([queued(), JobCanceled("cx", JOB, "Challenge finalized")])
    assert dispatcher_cancel.operator_command is None
