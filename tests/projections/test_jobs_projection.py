"""The aivm_jobs projection: the job fold over lc.jobs and AIVM chain facts, in any arrival order,
with illegal transitions ignored, retractions undone and duplicates harmless."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from kits.background import Background, wait_for

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import CHAIN_EVENTS, JOBS
from projections.framework import Projector
from projections.jobs import JobsProjection
from streams.dispatch import job_id_for

TASK = "0x" + "ab" * 32
WORKER = "0x" + "77" * 20


def job_event(producer: EventProducer, kind: str, cid: int, at: int, **fields: Any) -> None:
    producer.publish(JOBS, str(cid), kind, {"job_id": job_id_for(cid), "challenge_id": cid, **fields},
                     event_id=f"{kind}:{cid}:{at}", occurred_at=at)


def aivm(producer: EventProducer, event: str, args: dict[str, str], at: int, *, removed: bool = False,
         block: int = 1) -> None:
    producer.publish(CHAIN_EVENTS, args.get("taskId", "request"), "ChainEvent", {
        "chain_id": 31337, "contract": "AIVMInferenceV2", "address": "0x" + "22" * 20, "event": event,
        "block_number": block, "block_hash": f"0x{block:064x}", "block_timestamp": at // 1000,
        "tx_hash": "0x" + "00" * 32, "tx_index": 0, "log_index": 0, "removed": removed, "challenge_id": None,
        "args": args}, event_id=f"aivm:{event}:{block}", occurred_at=at)


def requested(request: int) -> dict[str, str]:
    return {"requestId": str(request), "requester": WORKER, "taskId": TASK, "model": "m", "promptHash": "0x",
            "promptId": "0x", "modelDigest": "0x", "detConfigHash": "0x"}


def jobs(settings: Settings) -> dict[int, tuple]:
    with psycopg.connect(settings.pg_dsn) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT challenge_id, status, attempts, last_error, worker_address, task_id, created_at, updated_at"
            " FROM aivm_jobs").fetchall()}


def offsets(settings: Settings) -> int:
    with psycopg.connect(settings.pg_dsn) as conn:
        return int(conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()[0])


def project(settings: Settings, until_offset: int) -> None:
    projector = Projector(settings, [JobsProjection()])
    worker = Background(projector.run, projector.stop.set)
    try:
        wait_for(lambda: offsets(settings) >= until_offset, what=f"{until_offset} events projected")
    finally:
        worker.stop()


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_job_lifecycle_with_chain_facts_before_the_worker_names_the_task(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        job_event(producer, "JobQueued", 1, 1_000, mode="threshold", participants=["0xa"])
        job_event(producer, "JobQueued", 1, 1_000, mode="threshold", participants=["0xa"])  # duplicate
        job_event(producer, "JobProcessing", 1, 2_000)
        job_event(producer, "JobFailed", 1, 3_000, error="rpc down")
        job_event(producer, "JobProcessing", 1, 4_000)
        aivm(producer, "InferenceRequestedV2", requested(9), 5_000, block=5)  # before JobSubmitted
        aivm(producer, "InferenceCommitted", {"requestId": "9", "worker": WORKER, "commitment": "0x"}, 6_000, block=6)
        job_event(producer, "JobSubmitted", 1, 7_000, task_id=TASK.upper().replace("0X", "0x"), request_id="9",
                  worker_address=WORKER)
        job_event(producer, "JobQueued", 2, 1_500, mode="competitive", participants=["0xb"])
        job_event(producer, "JobCanceled", 2, 2_500, reason="Challenge reached terminal state")
        job_event(producer, "JobProcessing", 2, 3_500)  # illegal: the job is canceled
    project(settings, 11)
    got = jobs(settings)
    assert got[1][:5] == ("committed", 2, "rpc down", WORKER, TASK)
    assert (got[1][5], got[1][6]) == (at(1_000), at(7_000))
    assert got[2][:2] == ("canceled", 0)
    assert got[2][6] == at(2_500)  # the ignored event does not move updated_at

    with EventProducer(settings, "test") as producer:
        aivm(producer, "InferenceRevealed", {"requestId": "9", "worker": WORKER, "responseHash": "0x",
                                             "response": "ok"}, 8_000, block=8)
        aivm(producer, "InferenceFinalized", {"requestId": "9", "taskId": TASK, "worker": WORKER, "resultHash": "0x",
                                              "workerPaidWei": "1", "protocolFeeWei": "0"}, 9_000, block=9)
    project(settings, 13)
    assert jobs(settings)[1][0] == "done"

    with EventProducer(settings, "test") as producer:  # a reorg retracts the finalization
        aivm(producer, "InferenceFinalized", {"requestId": "9", "taskId": TASK, "worker": WORKER, "resultHash": "0x",
                                              "workerPaidWei": "1", "protocolFeeWei": "0"}, 9_000, block=9,
             removed=True)
    project(settings, 14)
    assert jobs(settings)[1][:1] == ("revealed",)
    assert jobs(settings)[1][6] == at(8_000)


TASK_2 = "0x" + "cd" * 32


def operator_columns(settings: Settings, cid: int) -> tuple:
    with psycopg.connect(settings.pg_dsn) as conn:
        return conn.execute("SELECT operator_command, operator_name, operator_reason, operator_at FROM aivm_jobs "
                            "WHERE challenge_id = %s", (cid,)).fetchone()


def test_an_expired_request_and_its_re_request_with_late_facts_of_the_old_one(settings: Settings) -> None:
    """Facts of the expired request that arrive after JobExpired (lc.chain.events lags lc.jobs freely)
    change nothing; the re-request carries the job on; an operator's requeue is shown with who, why, when."""
    with EventProducer(settings, "test") as producer:
        job_event(producer, "JobQueued", 3, 1_000, mode="threshold", participants=["0xa"])
        job_event(producer, "JobProcessing", 3, 2_000)
        job_event(producer, "JobSubmitted", 3, 3_000, task_id=TASK, request_id="9", worker_address=WORKER)
        job_event(producer, "JobExpired", 3, 4_000, request_id="9", task_id=TASK, request_status=1, deadline=3,
                  chain_time=4, error="AIVM request 9: still Requested after its commit deadline")
        aivm(producer, "InferenceRequestedV2", requested(9), 2_500, block=3)  # late, of the expired request
        aivm(producer, "InferenceCommitted", {"requestId": "9", "worker": WORKER, "commitment": "0x"}, 3_500, block=4)
        job_event(producer, "JobProcessing", 3, 5_000)
        job_event(producer, "JobSubmitted", 3, 6_000, task_id=TASK_2, request_id="10", worker_address=WORKER)
        job_event(producer, "JobRunRequested", 3, 7_000, operator="bob", reason="check it now")
    project(settings, 9)
    got = jobs(settings)[3]
    assert got[:5] == ("submitted", 2, "AIVM request 9: still Requested after its commit deadline", WORKER, TASK_2)
    assert operator_columns(settings, 3) == ("run", "bob", "check it now", at(7_000))

    with EventProducer(settings, "test") as producer:
        job_event(producer, "JobExpired", 3, 8_000, request_id="10", task_id=TASK_2, request_status=2, deadline=7,
                  chain_time=8, error="AIVM request 10: still Committed after its reveal deadline")
        job_event(producer, "JobDead", 3, 9_000, error="2 AIVM request(s) expired")
        job_event(producer, "JobRequeued", 3, 10_000, operator="alice", reason="network back")
    project(settings, 12)
    assert jobs(settings)[3][:3] == ("queued", 2, "2 AIVM request(s) expired")
    assert operator_columns(settings, 3) == ("requeue", "alice", "network back", at(10_000))
