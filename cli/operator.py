"""Operator commands as events (issue 14 §2): `lc jobs requeue|run|cancel CHALLENGE` and
`lc registry retry [CHALLENGE | --failed [--batch N]]`.

The tables are projections, so an operator never UPDATEs them: each command publishes an operator
fact (who: LC_OPERATOR, else the OS user; why: the required --reason; when: the envelope's
occurred_at) that the stages act on and the projections show (aivm_jobs.operator_*, the registry
columns of challenges and challenge_registry_writes). A command reads the projected row it acts on
to refuse what cannot apply (requeue a running job, retry a write that did not give up) and derives
the event id from that row, so running it twice publishes the same fact, which every reader folds
once: the commands are idempotent. `--dry-run` prints what would be published and publishes nothing.
"""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from cli.settings import Settings
from domain import job_state as js
from eventlog.producer import EventProducer
from eventlog.topics import CHALLENGES_REGISTERED, JOBS
from streams.dispatch import job_id_for

PRODUCER = "lc-operator"
REGISTRY_BATCH = 50  # the original backfillRegistry.ts's BATCH_SIZE
# which job states each command applies to (the job fold is the arbiter; these refuse early)
JOB_COMMANDS: dict[str, tuple[str, frozenset[str]]] = {
    "requeue": ("JobRequeued", frozenset({js.DEAD, js.FAILED})),
    "run": ("JobRunRequested", frozenset({js.QUEUED, js.FAILED, js.SUBMITTED, js.COMMITTED, js.REVEALED})),
    "cancel": ("JobCanceled", frozenset({js.QUEUED, js.PROCESSING, js.FAILED, js.SUBMITTED, js.COMMITTED,
                                         js.REVEALED})),
}


class Refused(ValueError):
    """The command does not apply to what the projection shows; the message says why."""


@dataclass(frozen=True)
class OperatorFact:
    """One event an operator command publishes."""

    topic: str
    key: str
    event_type: str
    event_id: str
    payload: dict[str, Any]
    summary: str  # what it does, for the operator


@dataclass(frozen=True)
class JobRow:
    challenge_id: int
    status: str
    attempts: int
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class RegistryRow:
    challenge_id: int
    status: str
    attempt: int
    final: bool
    error: str | None


def operator_name(settings: Settings) -> str:
    return settings.operator or getpass.getuser()


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


# ---- jobs ------------------------------------------------------------------------------------------

def read_job(conn: psycopg.Connection, challenge_id: int) -> JobRow | None:
    row = conn.execute("SELECT challenge_id, status, attempts, last_error, updated_at FROM aivm_jobs "
                       "WHERE challenge_id = %s", (challenge_id,)).fetchone()
    return JobRow(*row) if row is not None else None


def job_fact(command: str, row: JobRow, operator: str, reason: str) -> OperatorFact:
    """The fact `lc jobs COMMAND` publishes for the job in `row`, or Refused."""
    event_type, applies_to = JOB_COMMANDS[command]
    if row.status not in applies_to:
        hint = " (use `lc jobs requeue` first)" if command == "run" and row.status == js.DEAD else ""
        raise Refused(f"challenge {row.challenge_id}: the job is {row.status}; `lc jobs {command}` applies to "
                      f"{', '.join(sorted(applies_to))} jobs{hint}")
    job_id = job_id_for(row.challenge_id)
    # the state acted on names the fact: the same command on the same state is the same event
    event_id = f"{job_id}:{command}:{_digest(row.status, row.attempts, row.updated_at.isoformat())}"
    payload = {"job_id": job_id, "challenge_id": row.challenge_id, "operator": operator, "reason": reason}
    state = f"{row.status} after {row.attempts} attempt(s)" + (f", last error: {row.last_error}"
                                                                 if row.last_error else "")
    effect = {"requeue": "back to queued with a fresh budget of attempts and requests",
              "run": "worked on now, without waiting for its backoff",
              "cancel": "canceled: the worker stops and the finalizer leaves the challenge alone"}[command]
    return OperatorFact(JOBS, str(row.challenge_id), event_type, event_id, payload,
                        f"challenge {row.challenge_id}: job {job_id[:12]} ({state}) {effect}")


def job_command(settings: Settings, command: str, challenge_id: int, reason: str) -> OperatorFact:
    with psycopg.connect(settings.pg_dsn) as conn:
        row = read_job(conn, challenge_id)
    if row is None:
        raise Refused(f"challenge {challenge_id}: no AIVM job in aivm_jobs (none queued yet, or the projector is "
                      "behind: see `lc lag`)")
    return job_fact(command, row, operator_name(settings), reason)


# ---- registry --------------------------------------------------------------------------------------

REGISTRY_COLUMNS = "challenge_id, status, attempt, final, error"


def read_registry_writes(conn: psycopg.Connection, challenge_id: int | None, batch: int) -> list[RegistryRow]:
    """The writer's newest outcome of one challenge, or the first `batch` writes that gave up."""
    if challenge_id is not None:
        rows = conn.execute(f"SELECT {REGISTRY_COLUMNS} FROM challenge_registry_writes WHERE challenge_id = %s",
                            (challenge_id,)).fetchall()
    else:
        rows = conn.execute(f"SELECT {REGISTRY_COLUMNS} FROM challenge_registry_writes "
                            "WHERE status = 'failed' AND final ORDER BY challenge_id LIMIT %s", (batch,)).fetchall()
    return [RegistryRow(*row) for row in rows]


def registry_fact(row: RegistryRow, operator: str, reason: str) -> OperatorFact:
    if row.status != "failed" or not row.final:
        state = "still being retried by the writer" if row.status == "failed" else row.status
        raise Refused(f"challenge {row.challenge_id}: the registry write is {state}; only a write that gave up "
                      "(failed, final) is retried")
    payload = {"challenge_id": row.challenge_id, "after_attempt": row.attempt, "operator": operator,
               "reason": reason}
    return OperatorFact(CHALLENGES_REGISTERED, str(row.challenge_id), "RegistryRetryRequested",
                        f"registry:{row.challenge_id}:retry:{row.attempt}", payload,
                        f"challenge {row.challenge_id}: registry write (gave up after attempt {row.attempt}: "
                        f"{row.error}) tried again with a fresh budget")


def registry_retry(settings: Settings, challenge_id: int | None, batch: int, reason: str) -> list[OperatorFact]:
    """The facts of `lc registry retry CHALLENGE` (one, or Refused) or `--failed` (up to `batch`)."""
    with psycopg.connect(settings.pg_dsn) as conn:
        rows = read_registry_writes(conn, challenge_id, batch)
    if challenge_id is not None and not rows:
        raise Refused(f"challenge {challenge_id}: no registry write recorded (the registry writer has not tried "
                      "it yet, or the projector is behind: see `lc lag`)")
    return [registry_fact(row, operator_name(settings), reason) for row in rows]


# ---- publishing ------------------------------------------------------------------------------------

def publish(settings: Settings, facts: Sequence[OperatorFact], *, dry_run: bool) -> list[str]:
    """Publish the facts (flushed) or, dry, only describe them; one line per fact."""
    lines = []
    producer = None if dry_run else EventProducer(settings, PRODUCER)
    try:
        for fact in facts:
            who = f'as {fact.payload["operator"]}: "{fact.payload["reason"]}"'
            if producer is None:
                lines.append(f"would publish {fact.event_type} {fact.event_id} to {settings.topic(fact.topic)}: "
                             f"{fact.summary} ({who})")
                continue
            producer.publish(fact.topic, fact.key, fact.event_type, fact.payload, event_id=fact.event_id)
            lines.append(f"published {fact.event_type} {fact.event_id} to {settings.topic(fact.topic)}: "
                         f"{fact.summary} ({who})")
    finally:
        if producer is not None:
            producer.close()
    return lines
