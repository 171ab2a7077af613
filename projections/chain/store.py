"""SQL of the challenge projection: stored facts in, derived rows replaced per touched challenge.

Everything goes through COPY into session-temporary stage tables and set-based statements; the
derived tables are only rewritten where a row really changes (IS DISTINCT FROM), so a redelivered
or unchanged fact costs no row versions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

import psycopg

from domain.compact_json import compact_json_encoder
from domain.registration import Registration
from projections.chain.aivm_proof import JobEventRow
from projections.chain.derive import (
    CREATOR_SOURCE,
    JOINER_SOURCE,
    DerivedChallenge,
    RegistryWrite,
    StoredRegistration,
)
from projections.chain.facts import DERIVING_CONTRACTS, ChainFact

T = TypeVar("T")

FACT_COLUMNS = ("event_id", "chain_id", "challenge_id", "contract", "address", "event", "block_number", "block_hash",
                "block_timestamp", "tx_hash", "tx_index", "log_index", "args", "removed")


class RegistrationUpsert(NamedTuple):
    """The net effect of a batch's registrations of one challenge (see projections.challenges)."""

    registration: Registration
    event_id: str
    first_seen_at: int  # epoch ms
    registered_at: int
    unconditional: bool  # the content changed within the batch


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _ts(column: str) -> str:
    return f"to_timestamp({column} / 1000.0)"


def _ms(column: str) -> str:
    return f"round(extract(epoch FROM {column}) * 1000)::bigint"


def lock_challenges(conn: psycopg.Connection, challenge_ids: Sequence[int]) -> None:
    """Hold each touched challenge until commit. A challenge's chain facts and its registrations come
    from two topics, which two projector instances may own: without the lock each could derive the
    challenge without the other's uncommitted input and the later commit would win with a stale row.
    With it, whoever derives second does so after the first committed, and sees both. Ascending order
    (unnest keeps the sorted list's order), so two batches never wait for each other in a cycle. Keyed
    by schema too: a rebuild's projector (another schema) does not wait for the live one."""
    if challenge_ids:
        conn.execute(
            "SELECT count(pg_advisory_xact_lock(hashtext(current_schema()), (id %% 2147483647)::int))"
            " FROM unnest(%s::bigint[]) AS id", (bigint_array(sorted(challenge_ids)),))


# ---- facts ------------------------------------------------------------------------------------------

_COPY_NULL = "\\N"
_COPY_BOOL = {False: "f", True: "t"}
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """`value` as a field of COPY's text format (backslash, tab, newline and carriage return escaped)."""
    return value if value.isprintable() and "\\" not in value else value.translate(_COPY_ESCAPES)


def fact_copy_line(f: ChainFact) -> str:
    """One `chain_events` row in COPY's text format (FACT_COLUMNS order), built on the consumer thread so
    the writer thread only streams bytes. Numbers are ints (the Avro schema's longs)."""
    args = _ARGS_JSON(f.args)
    event_id, contract, address, event, block_hash, tx_hash = f.event_id, f.contract, f.address, f.event, \
        f.block_hash, f.tx_hash
    texts = event_id + contract + address + event + block_hash + tx_hash + args
    if not texts.isprintable() or "\\" in texts:  # one look at all of them; escaping is the rare case
        event_id, contract, address, event, block_hash, tx_hash, args = map(
            copy_text, (event_id, contract, address, event, block_hash, tx_hash, args))
    challenge_id = _COPY_NULL if f.challenge_id is None else f"{f.challenge_id:d}"
    return (f"{event_id}\t{f.chain_id:d}\t{challenge_id}\t{contract}\t{address}\t{event}\t{f.block_number:d}"
            f"\t{block_hash}\t{f.block_timestamp:d}\t{tx_hash}\t{f.tx_index:d}\t{f.log_index:d}\t{args}"
            f"\t{_COPY_BOOL[f.removed]}\n")


_ARGS_JSON = compact_json_encoder(sort_keys=True)


def store_facts(conn: psycopg.Connection, lines: str, *, all_new: bool, meanwhile: Callable[[], T]) -> T:
    """`lines`: the batch's facts as `fact_copy_line`s, one per event id (the newest message decides).
    `meanwhile`: the batch's work that needs no query, run (once) while PostgreSQL takes the rows in;
    its result is returned. The rows are sent before it runs, so the server's part and the caller's
    overlap instead of adding up.

    A stored fact changes only in `removed` (a retraction, or a re-publish after one). When the batch
    carries no retraction its facts are normally all new: they are COPYed straight into the table
    (bulk inserts, several times cheaper for PostgreSQL than an upsert per row) under a savepoint, and
    only if one of them is there already does the batch fall back to the stage table and the upsert.
    Either way the table ends the same."""
    done: list[T] = []  # meanwhile's result, once it has run
    if all_new:
        try:
            with conn.transaction(), conn.cursor().copy(
                    f"COPY chain_events ({', '.join(FACT_COLUMNS)}) FROM STDIN") as copy:
                copy.write(lines)
                done.append(meanwhile())
            return done[0]
        except psycopg.errors.UniqueViolation:
            pass  # a fact published again without a retraction in this batch: upsert them all
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS chain_events_stage (LIKE chain_events) ON COMMIT DELETE ROWS")
    with conn.cursor().copy(f"COPY chain_events_stage ({', '.join(FACT_COLUMNS)}) FROM STDIN") as copy:
        copy.write(lines)
        if not done:
            done.append(meanwhile())
    conn.execute(
        """INSERT INTO chain_events AS e SELECT * FROM chain_events_stage
           ON CONFLICT (event_id) DO UPDATE SET removed = EXCLUDED.removed
           WHERE e.removed IS DISTINCT FROM EXCLUDED.removed""")
    return done[0]


def bigint_array(values: Iterable[int]) -> str:
    """A bigint[] parameter as its text literal: psycopg's list dumper costs ~1 us per element."""
    return "{" + ",".join(map(str, values)) + "}"


def load_live_facts(conn: psycopg.Connection, challenge_ids: Sequence[int]) -> dict[int, list[ChainFact]]:
    rows = conn.execute(
        f"""SELECT {', '.join(FACT_COLUMNS)} FROM chain_events
            WHERE challenge_id = ANY(%s::bigint[]) AND NOT removed AND contract = ANY(%s)""",
        (bigint_array(challenge_ids), list(DERIVING_CONTRACTS)),
    ).fetchall()
    facts: dict[int, list[ChainFact]] = {}
    for row in rows:
        fact = ChainFact(*row)
        facts.setdefault(fact.challenge_id or 0, []).append(fact)
    return facts


# ---- registrations ---------------------------------------------------------------------------------

def registration_json(registration: Registration) -> str:
    return json.dumps({**registration.content(), "mode": registration.mode, "top_n": registration.top_n},
                      separators=(",", ":"), sort_keys=True)


def registration_from_row(document: dict[str, Any]) -> Registration:
    return Registration(
        challenge_id=document["id"], subject=document["subject"], model_id=document["model_id"],
        params=document["params"], timeline=document["timeline"], mode=document["mode"], top_n=document["top_n"],
        model_hash=document["model_hash"], title=document["title"], description=document["description"],
        tx_hash=document["tx_hash"], proof=document["proof"], funds=document["funds"], options=document["options"],
    )


REGISTRATION_UPSERT = """INSERT INTO challenge_registrations AS r
        (challenge_id, event_id, content_hash, registration, first_registered_at, registered_at)
    SELECT challenge_id, event_id, content_hash, registration::jsonb, {first}, {registered}
    FROM challenge_registrations_stage WHERE unconditional = {unconditional}
    ON CONFLICT (challenge_id) DO UPDATE SET
        event_id = EXCLUDED.event_id, content_hash = EXCLUDED.content_hash, registration = EXCLUDED.registration,
        registered_at = EXCLUDED.registered_at,
        first_registered_at = least(r.first_registered_at, EXCLUDED.first_registered_at)
    {condition}"""


def store_registrations(conn: psycopg.Connection, upserts: Sequence[RegistrationUpsert]) -> None:
    conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS challenge_registrations_stage (
               challenge_id bigint, event_id text, content_hash text, registration text, first_ms bigint,
               registered_ms bigint, unconditional boolean) ON COMMIT DELETE ROWS""")
    with conn.cursor().copy("COPY challenge_registrations_stage FROM STDIN") as copy:
        for u in upserts:
            r = u.registration
            copy.write_row((r.challenge_id, u.event_id, r.content_hash, registration_json(r), u.first_seen_at,
                            u.registered_at, u.unconditional))
    for unconditional, condition in (("true", ""), ("false", "WHERE r.content_hash <> EXCLUDED.content_hash")):
        conn.execute(REGISTRATION_UPSERT.format(first=_ts("first_ms"), registered=_ts("registered_ms"),
                                                unconditional=unconditional, condition=condition))


def load_registrations(conn: psycopg.Connection, challenge_ids: Sequence[int]) -> dict[int, StoredRegistration]:
    rows = conn.execute(
        f"""SELECT challenge_id, registration, {_ms('first_registered_at')}, {_ms('registered_at')}
            FROM challenge_registrations WHERE challenge_id = ANY(%s::bigint[])""", (bigint_array(challenge_ids),)).fetchall()
    return {cid: StoredRegistration(registration_from_row(doc), first, last) for cid, doc, first, last in rows}


# ---- registry writer outcomes ---------------------------------------------------------------------

class RegistryRetry(NamedTuple):
    """An operator's retry of the write (RegistryRetryRequested): who, why, when (epoch ms)."""

    operator: str
    reason: str
    at: int


class RegistryWriteFact(NamedTuple):
    """The writer's outcome, or an operator's retry (status `pending`, `retry` set)."""

    challenge_id: int
    event_id: str
    write: RegistryWrite
    attempt: int
    final: bool
    retry: RegistryRetry | None = None


def store_registry_writes(conn: psycopg.Connection, writes: Sequence[RegistryWriteFact]) -> None:
    """The newest outcome per challenge wins (the writer publishes them in order, under the challenge's key);
    the newest retry's who, why and when stay until a newer retry."""
    conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS challenge_registry_writes_stage (
               challenge_id bigint, event_id text, status text, tx_hash text, error text, attempt integer,
               final boolean, recorded_ms bigint, retry_by text, retry_reason text, retry_ms bigint)
           ON COMMIT DELETE ROWS""")
    with conn.cursor().copy("COPY challenge_registry_writes_stage FROM STDIN") as copy:
        for w in writes:
            retry = (w.retry.operator, w.retry.reason, w.retry.at) if w.retry else (None, None, None)
            copy.write_row((w.challenge_id, w.event_id, w.write.status, w.write.tx_hash, w.write.error, w.attempt,
                            w.final, w.write.recorded_at, *retry))
    conn.execute(
        f"""INSERT INTO challenge_registry_writes AS r
                (challenge_id, event_id, status, tx_hash, error, attempt, final, recorded_at, retry_by, retry_reason,
                 retry_at)
            SELECT challenge_id, event_id, status, tx_hash, error, attempt, final, {_ts('recorded_ms')}, retry_by,
                   retry_reason, {_ts('retry_ms')}
            FROM challenge_registry_writes_stage
            ON CONFLICT (challenge_id) DO UPDATE SET event_id = EXCLUDED.event_id, status = EXCLUDED.status,
                tx_hash = EXCLUDED.tx_hash, error = EXCLUDED.error, attempt = EXCLUDED.attempt,
                final = EXCLUDED.final, recorded_at = EXCLUDED.recorded_at,
                retry_by = COALESCE(EXCLUDED.retry_by, r.retry_by),
                retry_reason = COALESCE(EXCLUDED.retry_reason, r.retry_reason),
                retry_at = COALESCE(EXCLUDED.retry_at, r.retry_at)""")


def load_registry_writes(conn: psycopg.Connection, challenge_ids: Sequence[int]) -> dict[int, RegistryWrite]:
    rows = conn.execute(
        f"""SELECT challenge_id, status, tx_hash, error, {_ms('recorded_at')}
            FROM challenge_registry_writes WHERE challenge_id = ANY(%s::bigint[])""", (bigint_array(challenge_ids),)).fetchall()
    return {cid: RegistryWrite(status, tx, error, at) for cid, status, tx, error, at in rows}


# ---- job events (AIVM progress of challenges.proof) ---------------------------------------------

class JobEventFact(NamedTuple):
    challenge_id: int
    row: JobEventRow


def store_job_events(conn: psycopg.Connection, events: Sequence[JobEventFact]) -> None:
    """Each job event once (by event id); a redelivery changes nothing."""
    with conn.cursor() as cursor:
        cursor.executemany(
            f"""INSERT INTO challenge_job_events (event_id, challenge_id, kind, payload, occurred_at)
                VALUES (%s, %s, %s, %s::jsonb, {_ts('%s')}) ON CONFLICT (event_id) DO NOTHING""",
            [(e.row.event_id, e.challenge_id, e.row.kind, _json(dict(e.row.payload)), e.row.occurred_at)
             for e in events])


def load_job_events(conn: psycopg.Connection, challenge_ids: Sequence[int]) -> dict[int, list[JobEventRow]]:
    rows = conn.execute(
        f"""SELECT challenge_id, event_id, kind, payload, {_ms('occurred_at')}
            FROM challenge_job_events WHERE challenge_id = ANY(%s::bigint[])""", (bigint_array(challenge_ids),)).fetchall()
    events: dict[int, list[JobEventRow]] = {}
    for cid, event_id, kind, payload, at in rows:
        events.setdefault(cid, []).append(JobEventRow(event_id, kind, payload, at))
    return events


# ---- derived rows ----------------------------------------------------------------------------------

CHALLENGE_COLUMNS = ("title", "description", "subject", "tx_hash", "model_id", "model_hash", "params", "proof",
                     "timeline", "funds", "options", "status", "chain_outcome", "registry_status",
                     "registry_tx_hash", "registry_error", "created_at", "updated_at", "registration_conflict")
JSON_COLUMNS = {"params", "proof", "timeline", "funds", "options"}
TIME_COLUMNS = {"created_at", "updated_at", "joined_at", "claimed_at"}


def _select(columns: Iterable[str]) -> str:
    exprs = []
    for column in columns:
        if column in JSON_COLUMNS or column == "metadata":
            exprs.append(f"{column}::jsonb")
        elif column in TIME_COLUMNS:
            exprs.append(_ts(column))
        else:
            exprs.append(column)
    return ", ".join(exprs)


def _changed(alias: str, columns: Sequence[str]) -> str:
    return (f"({', '.join(f'{alias}.{c}' for c in columns)}) IS DISTINCT FROM "
            f"({', '.join(f'EXCLUDED.{c}' for c in columns)})")


class DerivedRows(NamedTuple):
    """The rows of the stage tables for a batch's derived challenges (built without the connection)."""

    challenges: list[tuple[Any, ...]]
    participants: list[tuple[Any, ...]]
    claims: list[tuple[Any, ...]]


def derived_rows(derived: Sequence[DerivedChallenge]) -> DerivedRows:
    rows = DerivedRows([], [], [])
    for d in derived:
        if d.challenge is not None:
            c = d.challenge
            rows.challenges.append((
                c.id, c.title, c.description, c.subject, c.tx_hash, c.model_id, c.model_hash, _json(c.params),
                _json(c.proof), _json(c.timeline), _json(c.funds), _json(c.options), c.status, c.chain_outcome,
                c.registry_status, c.registry_tx_hash, c.registry_error, c.created_at, c.updated_at,
                c.registration_conflict))
        rows.participants.extend(d.participants)
        rows.claims.extend((k.challenge_id, k.subject, k.claim_type, k.amount_wei, k.tx_hash, k.block_number,
                            _json(k.metadata), k.created_at, k.claimed_at) for k in d.claims)
    return rows


def write_derived(conn: psycopg.Connection, touched: Sequence[int], rows: DerivedRows) -> None:
    """Replace the touched challenges' rows in `challenges`, `participants` and `claims` with `rows`."""
    conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS challenges_stage (
               id bigint, title text, description text, subject text, tx_hash text, model_id text, model_hash text,
               params text, proof text, timeline text, funds text, options text, status text, chain_outcome smallint,
               registry_status text, registry_tx_hash text, registry_error text, created_at bigint,
               updated_at bigint, registration_conflict text)
           ON COMMIT DELETE ROWS""")
    conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS participants_stage (
               challenge_id bigint, subject text, tx_hash text, joined_at bigint, updated_at bigint, source text)
           ON COMMIT DELETE ROWS""")
    conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS claims_stage (
               challenge_id bigint, subject text, claim_type text, amount_wei numeric(78,0), tx_hash text,
               block_number bigint, metadata text, created_at bigint, claimed_at bigint)
           ON COMMIT DELETE ROWS""")
    cursor = conn.cursor()
    for table, table_rows in (("challenges_stage", rows.challenges), ("participants_stage", rows.participants),
                              ("claims_stage", rows.claims)):
        with cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in table_rows:
                copy.write_row(row)
    ids = bigint_array(touched)
    _write_challenges(conn, ids)
    _write_participants(conn, ids)
    _write_claims(conn, ids)


def _write_challenges(conn: psycopg.Connection, ids: str) -> None:
    conn.execute("DELETE FROM challenges c WHERE c.id = ANY(%s::bigint[]) AND NOT EXISTS "
                 "(SELECT 1 FROM challenges_stage s WHERE s.id = c.id)", (ids,))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in CHALLENGE_COLUMNS)
    conn.execute(
        f"""INSERT INTO challenges AS c (id, {', '.join(CHALLENGE_COLUMNS)})
            SELECT id, {_select(CHALLENGE_COLUMNS)} FROM challenges_stage
            ON CONFLICT (id) DO UPDATE SET {updates}
            WHERE {_changed('c', CHALLENGE_COLUMNS)}""")


def _write_participants(conn: psycopg.Connection, ids: str) -> None:
    # only rows this projection writes (sources onchain_create, onchain_join) disappear with their facts
    conn.execute(
        """DELETE FROM participants p WHERE p.challenge_id = ANY(%s::bigint[]) AND p.source = ANY(%s)
           AND NOT EXISTS (SELECT 1 FROM participants_stage s
                           WHERE s.challenge_id = p.challenge_id AND s.subject = lower(p.subject))""",
        (ids, [CREATOR_SOURCE, JOINER_SOURCE]))
    columns = ("subject", "tx_hash", "joined_at", "source", "created_at", "updated_at")
    conn.execute(
        f"""INSERT INTO participants AS p (challenge_id, {', '.join(columns)})
            SELECT challenge_id, subject, tx_hash, {_ts('joined_at')}, source, {_ts('joined_at')},
                   {_ts('updated_at')}
            FROM participants_stage
            ON CONFLICT (challenge_id, lower(subject)) DO UPDATE SET
                {', '.join(f'{c} = EXCLUDED.{c}' for c in columns)}
            WHERE {_changed('p', columns)}""")


def _write_claims(conn: psycopg.Connection, ids: str) -> None:
    conn.execute(
        """DELETE FROM claims c WHERE c.challenge_id = ANY(%s::bigint[]) AND c.source = 'indexer'
           AND NOT EXISTS (SELECT 1 FROM claims_stage s WHERE s.challenge_id = c.challenge_id
                           AND s.subject = lower(c.subject) AND s.claim_type = c.claim_type)""", (ids,))
    columns = ("subject", "amount_wei", "bucket_id", "tx_hash", "block_number", "source", "metadata", "claimed_at",
               "created_at", "updated_at")
    conn.execute(
        f"""INSERT INTO claims AS c (challenge_id, claim_type, {', '.join(columns)})
            SELECT challenge_id, claim_type, subject, amount_wei, challenge_id, tx_hash, block_number, 'indexer',
                   metadata::jsonb, {_ts('claimed_at')}, {_ts('created_at')}, {_ts('claimed_at')}
            FROM claims_stage
            ON CONFLICT (challenge_id, lower(subject), claim_type) DO UPDATE SET
                {', '.join(f'{c} = EXCLUDED.{c}' for c in columns)}
            WHERE {_changed('c', columns)}""")
