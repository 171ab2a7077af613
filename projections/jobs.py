"""`aivm_jobs`: each job's state from the job fold (domain/job_state.py) over its inputs.

Inputs are the job events on lc.jobs and the AIVM facts on lc.chain.events (consumed here directly,
not read from the chain projection's `chain_events` table, so this projection depends on no other
projection's write order). Every input is stored once in `aivm_job_inputs` (by event id; a
retraction after a reorg marks its fact removed). For every job a batch touches, the fold is run
again over that job's stored inputs in arrival order and the row is rewritten: replays, duplicates
and retractions all end in the same row. created_at = the JobQueued time; updated_at = the newest
time among the inputs the fold accepted (not the last in arrival order, which differs between a
live run and a rebuild because lc.jobs and lc.chain.events interleave freely). The operator columns
show the newest operator fact the fold accepted (requeue, run, cancel), operator_at its time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from domain import job_state
from domain.job_state import (
    ChainFact,
    JobBook,
    JobCanceled,
    JobDead,
    JobEvent,
    JobExpired,
    JobFailed,
    JobProcessing,
    JobQueued,
    JobRequeued,
    JobRunRequested,
    JobSubmitted,
    ParticipantsAdded,
    apply_to_book,
    chain_fact_from_event,
)
from eventlog.consumer import Received, Reject
from eventlog.topics import CHAIN_EVENTS, JOBS

JOB_EVENT_TYPES = frozenset({"JobQueued", "JobParticipantsAdded", "JobProcessing", "JobSubmitted", "JobFailed",
                             "JobDead", "JobCanceled", "JobExpired", "JobRequeued", "JobRunRequested"})


@dataclass(frozen=True)
class Input:
    event_id: str
    kind: str
    job_id: str | None
    task_id: str | None
    request_id: int | None
    payload: dict[str, Any]
    occurred_at: int  # epoch ms
    removed: bool


def _lower(value: str | None) -> str | None:
    return value.strip().lower() if value else None


def read_input(received: Received) -> Input | None:
    event, p = received.event, received.event.payload
    if received.topic == JOBS and event.event_type in JOB_EVENT_TYPES:
        request = p.get("request_id")
        return Input(event.event_id, event.event_type, p["job_id"], _lower(p.get("task_id")),
                     int(request) if request is not None else None, p, event.occurred_at, False)
    if received.topic == CHAIN_EVENTS and event.event_type == "ChainEvent" and p.get("contract") == "AIVMInferenceV2":
        args = p["args"]
        request = args.get("requestId")
        return Input(event.event_id, p["event"], None, _lower(args.get("taskId")),
                     int(request) if request is not None else None,
                     {"event": p["event"], "args": args}, event.occurred_at, bool(p["removed"]))
    return None


def to_fold_input(kind: str, event_id: str, p: dict[str, Any]) -> JobEvent | ChainFact | None:
    participants = tuple(p.get("participants") or ())
    match kind:
        case "JobQueued":
            return JobQueued(event_id, p["job_id"], p["challenge_id"], participants, p["mode"])
        case "JobParticipantsAdded":
            return ParticipantsAdded(event_id, p["job_id"], participants)
        case "JobProcessing":
            return JobProcessing(event_id, p["job_id"])
        case "JobSubmitted":
            request = p.get("request_id")
            return JobSubmitted(event_id, p["job_id"], p["task_id"], int(request) if request is not None else None,
                                p.get("worker_address"))
        case "JobFailed":
            return JobFailed(event_id, p["job_id"], p["error"])
        case "JobDead":
            return JobDead(event_id, p["job_id"], p["error"])
        case "JobCanceled":
            return JobCanceled(event_id, p["job_id"], p["reason"], p.get("operator"))
        case "JobExpired":
            return JobExpired(event_id, p["job_id"], p["task_id"], p["error"], int(p["request_id"]))
        case "JobRequeued":
            return JobRequeued(event_id, p["job_id"], p["operator"], p["reason"])
        case "JobRunRequested":
            return JobRunRequested(event_id, p["job_id"], p["operator"], p["reason"])
    return chain_fact_from_event(event_id, p["event"], p["args"])


class JobsProjection:
    name = "aivm_jobs"
    topics = (JOBS, CHAIN_EVENTS)

    def prepare(self, events: Sequence[Received], reject: Reject) -> list[Input] | None:
        inputs = []
        for received in events:
            try:
                item = read_input(received)
            except (KeyError, TypeError, ValueError) as exc:
                reject(received, f"invalid job input: {exc!r}")
                continue
            if item is not None:
                inputs.append(item)
        return inputs or None

    def write(self, conn: psycopg.Connection, inputs: list[Input]) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(
                """INSERT INTO aivm_job_inputs (event_id, kind, job_id, task_id, request_id, payload, occurred_at,
                                                removed)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (event_id) DO UPDATE SET removed = EXCLUDED.removed""",
                [(i.event_id, i.kind, i.job_id, i.task_id, i.request_id, Jsonb(i.payload),
                  datetime.fromtimestamp(i.occurred_at / 1000, UTC), i.removed) for i in inputs],
            )
        for job_id in _affected_jobs(conn, inputs):
            _rewrite_job(conn, job_id)


def _affected_jobs(conn: psycopg.Connection, inputs: list[Input]) -> list[str]:
    jobs = sorted({i.job_id for i in inputs if i.job_id})
    tasks = sorted({i.task_id for i in inputs if i.task_id})
    requests = sorted({i.request_id for i in inputs if i.request_id is not None})
    rows = conn.execute(
        """WITH tasks AS (
               SELECT unnest(%(tasks)s::text[]) AS task_id
               UNION SELECT task_id FROM aivm_job_inputs WHERE request_id = ANY(%(requests)s) AND task_id IS NOT NULL)
           SELECT DISTINCT job_id FROM aivm_job_inputs
           WHERE job_id IS NOT NULL AND (job_id = ANY(%(jobs)s) OR task_id IN (SELECT task_id FROM tasks))""",
        {"jobs": jobs, "tasks": tasks, "requests": requests},
    ).fetchall()
    return sorted(r[0] for r in rows)


def _rewrite_job(conn: psycopg.Connection, job_id: str) -> None:
    rows = conn.execute(
        """WITH tasks AS (SELECT DISTINCT task_id FROM aivm_job_inputs WHERE job_id = %(job)s AND task_id IS NOT NULL),
                requests AS (SELECT DISTINCT request_id FROM aivm_job_inputs
                             WHERE task_id IN (SELECT task_id FROM tasks) AND request_id IS NOT NULL)
           SELECT event_id, kind, payload, occurred_at FROM aivm_job_inputs
           WHERE NOT removed AND (job_id = %(job)s OR (job_id IS NULL AND (
                 task_id IN (SELECT task_id FROM tasks) OR request_id IN (SELECT request_id FROM requests))))
           ORDER BY seq""",
        {"job": job_id},
    ).fetchall()
    book, created_at, updated_at, operator_at = JobBook.empty(), None, None, None
    for event_id, kind, payload, occurred_at in rows:
        item = to_fold_input(kind, event_id, payload if isinstance(payload, dict) else json.loads(payload))
        if item is None:
            continue
        before = book.jobs.get(job_id)
        book = apply_to_book(book, item)
        after = book.jobs.get(job_id)
        if after is None or after is before:
            continue  # not this job's, a duplicate, or a fact still waiting for its task
        if before is None:
            created_at = occurred_at
        if before is None or len(after.ignored) == len(before.ignored):
            updated_at = max(updated_at or occurred_at, occurred_at)  # accepted (not an illegal transition)
        if after.operator_event_id == event_id:
            operator_at = occurred_at
    job = book.jobs.get(job_id)
    if job is None:
        return
    conn.execute(
        """INSERT INTO aivm_jobs (challenge_id, status, attempts, last_error, worker_address, created_at, updated_at,
                                  task_id, operator_command, operator_name, operator_reason, operator_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (challenge_id) DO UPDATE SET status = EXCLUDED.status, attempts = EXCLUDED.attempts,
               last_error = EXCLUDED.last_error, worker_address = EXCLUDED.worker_address,
               created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, task_id = EXCLUDED.task_id,
               operator_command = EXCLUDED.operator_command, operator_name = EXCLUDED.operator_name,
               operator_reason = EXCLUDED.operator_reason, operator_at = EXCLUDED.operator_at""",
        (job.challenge_id, job.status, job.attempts, job.last_error, job.worker_address, created_at,
         updated_at or created_at, job.task_id, job.operator_command, job.operator, job.operator_reason,
         operator_at if job.operator_event_id else None),
    )


JOB_STATES = (job_state.QUEUED, job_state.PROCESSING, job_state.SUBMITTED, job_state.COMMITTED, job_state.REVEALED,
              job_state.DONE, job_state.FAILED, job_state.DEAD, job_state.CANCELED)


def job_state_counts(dsn: str, schema: str = "public") -> list[tuple[tuple[str], float]]:
    """Jobs per state in `aivm_jobs` (every state listed, 0 when none): the `lc_jobs` metric's samples."""
    with psycopg.connect(dsn, connect_timeout=3, options=f"-c search_path={schema}") as conn:
        counts = dict(conn.execute("SELECT status, count(*) FROM aivm_jobs GROUP BY status").fetchall())
    return [((state,), float(counts.pop(state, 0))) for state in JOB_STATES] + [
        ((state,), float(n)) for state, n in sorted(counts.items())]
