"""`challenges`, `participants`, `claims`: challenge state from registrations and chain facts.

Inputs, all stored as facts first: lc.chain.events into `chain_events` (a retraction flips
`removed` on the same event id); from lc.challenges.registered, ChallengeRegistered into
`challenge_registrations` (the newest registration per challenge) and the registry writer's
RegistryWriteRecorded into `challenge_registry_writes` (its newest outcome per challenge; an operator's
RegistryRetryRequested is stored there too, as `pending` until the writer's next outcome, with who, why
and when kept); from lc.jobs, the job events that carry AIVM progress into `challenge_job_events` (for
the AIVM keys of `challenges.proof`). Then every challenge the batch touched is derived again from its
registration, its live facts and its job events (`projections.chain.derive`) and its rows replaced. Rows therefore
depend only on which facts hold, never on the order the topics were read in or on what was retracted
on the way, so the live projector and `lc rebuild` end at the same rows.

A chain fact that cannot be read halts the projector; a registration that fails validation (the topic
is only as trusted as whoever writes to it) goes to lc.dlq with the reason. A registration the id's
owner rule refuses (`domain.registration.check_update`: another subject, or a change of what the first
registration fixed) is not applied and is logged as a WARNING naming its event: the intakes refuse
these at the door, so only a race between two API instances or another writer can put one on the
topic, and the first registration stands, as in every reader of the topic. A challenge whose on-chain
creator is not the registered subject gets no content from that registration and says why in
`challenges.registration_conflict` (projections/chain/derive.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import psycopg

from domain.registration import EVENT_TYPE as REGISTERED
from domain.registration import InvalidRegistration, Registration, check_update, registration_from_payload
from eventlog.consumer import Received, Reject
from eventlog.topics import CHAIN_EVENTS, CHALLENGES_REGISTERED, JOBS
from projections.chain.aivm_proof import PROOF_JOB_EVENTS, JobEventRow
from projections.chain.derive import RegistryWrite, derive
from projections.chain.facts import DERIVING_CONTRACTS, ChainFact, newest_per_event_id, read_fact
from projections.chain.store import (
    DerivedRows,
    JobEventFact,
    RegistrationUpsert,
    RegistryRetry,
    RegistryWriteFact,
    derived_rows,
    fact_copy_line,
    load_job_events,
    load_live_facts,
    load_registrations,
    load_registry_writes,
    lock_challenges,
    store_facts,
    store_job_events,
    store_registrations,
    store_registry_writes,
    write_derived,
)

log = logging.getLogger(__name__)


class RegistrationFact(NamedTuple):
    registration: Registration
    event_id: str
    occurred_at: int  # epoch ms


REGISTRY_WRITE = "RegistryWriteRecorded"
REGISTRY_RETRY = "RegistryRetryRequested"
REGISTRY_WRITE_STATUSES = ("success", "failed", "skipped")


class PreparedBatch(NamedTuple):
    facts: list[ChainFact]  # the newest message per event id
    fact_lines: str  # the same facts as `chain_events` rows in COPY's text format
    registrations: list[RegistrationFact]  # in topic order; folded against the stored ones when written
    registry_writes: list[RegistryWriteFact]
    job_events: list[JobEventFact]

    @property
    def touched(self) -> list[int]:
        ids = {f.challenge_id for f in self.facts if f.consumed and f.challenge_id is not None}
        ids.update(r.registration.challenge_id for r in self.registrations)
        ids.update(w.challenge_id for w in self.registry_writes)
        ids.update(e.challenge_id for e in self.job_events)
        return sorted(ids)


def read_registry_write(received: Received) -> RegistryWriteFact:
    """A RegistryWriteRecorded, or ValueError with the reason it is refused."""
    p = received.event.payload
    challenge_id = _challenge_of(received)
    if p["status"] not in REGISTRY_WRITE_STATUSES:
        raise ValueError(f"status {p['status']!r} is not one of {', '.join(REGISTRY_WRITE_STATUSES)}")
    error = p.get("error")
    write = RegistryWrite(p["status"], p.get("tx_hash"), error[:500] if error else None, received.event.occurred_at)
    return RegistryWriteFact(challenge_id, received.event.event_id, write, p["attempt"], p["final"])


def read_registry_retry(received: Received) -> RegistryWriteFact:
    """An operator's RegistryRetryRequested as the write's newest fact: `pending` until the writer tries
    again. ValueError with the reason it is refused."""
    p = received.event.payload
    challenge_id = _challenge_of(received)
    at = received.event.occurred_at
    retry = RegistryRetry(str(p["operator"])[:200], str(p["reason"])[:500], at)
    return RegistryWriteFact(challenge_id, received.event.event_id, RegistryWrite("pending", None, None, at),
                             p["after_attempt"], False, retry)


def read_job_event(received: Received) -> JobEventFact:
    """A job event of the AIVM progress, or ValueError with the reason it is refused."""
    event = received.event
    return JobEventFact(_challenge_of(received), JobEventRow(event.event_id, event.event_type, event.payload,
                                                             event.occurred_at))


def _challenge_of(received: Received) -> int:
    challenge_id = received.event.payload["challenge_id"]
    if not isinstance(challenge_id, int) or challenge_id <= 0 or received.key != str(challenge_id):
        raise ValueError(f"challenge_id {challenge_id!r} is not a positive id matching the key {received.key!r}")
    return challenge_id


def newest_per_challenge(writes: Sequence[RegistryWriteFact]) -> list[RegistryWriteFact]:
    """The newest fact per challenge, carrying the newest retry of the batch if a later outcome followed it."""
    newest: dict[int, RegistryWriteFact] = {}
    for w in writes:
        before = newest.get(w.challenge_id)
        if w.retry is None and before is not None and before.retry is not None:
            w = w._replace(retry=before.retry)
        newest[w.challenge_id] = w
    return list(newest.values())


def reduce_registrations(facts: Sequence[RegistrationFact],
                         stored: Mapping[int, Registration] | None = None) -> list[RegistrationUpsert]:
    """Per challenge, in topic order: the first registration's time, and the last one whose content
    differs from the one before it (an equal re-registration changes nothing). A registration the owner
    rule refuses against the one that stands (`stored`, then the batch's own) is left out, logged."""
    state: dict[int, RegistrationUpsert] = {}
    for fact in facts:
        challenge_id = fact.registration.challenge_id
        entry = state.get(challenge_id)
        try:
            check_update(entry.registration if entry else (stored or {}).get(challenge_id), fact.registration)
        except InvalidRegistration as exc:
            log.warning("registration %s not applied: %s", fact.event_id, exc)
            continue
        if entry is None:
            state[challenge_id] = RegistrationUpsert(fact.registration, fact.event_id, fact.occurred_at,
                                                     fact.occurred_at, False)
        elif fact.registration.content_hash != entry.registration.content_hash:
            state[challenge_id] = entry._replace(registration=fact.registration, event_id=fact.event_id,
                                                 registered_at=fact.occurred_at, unconditional=True)
    return list(state.values())


class ChallengesProjection:
    name = "challenges"
    topics = (CHAIN_EVENTS, CHALLENGES_REGISTERED, JOBS)

    def prepare(self, events: Sequence[Received], reject: Reject) -> PreparedBatch | None:
        facts: list[ChainFact] = []
        registrations: list[RegistrationFact] = []
        registry_writes: list[RegistryWriteFact] = []
        job_events: list[JobEventFact] = []
        for received in events:
            if received.topic == CHAIN_EVENTS:
                facts.append(read_fact(received))
                continue
            if received.topic == JOBS:
                if received.event.event_type in PROOF_JOB_EVENTS:
                    try:
                        job_events.append(read_job_event(received))
                    except (ValueError, KeyError) as exc:
                        reject(received, f"invalid job event: {exc}")
                continue
            if received.event.event_type in (REGISTRY_WRITE, REGISTRY_RETRY):
                write = received.event.event_type == REGISTRY_WRITE
                try:
                    registry_writes.append(read_registry_write(received) if write else read_registry_retry(received))
                except (ValueError, KeyError) as exc:
                    reject(received, f"invalid registry {'write' if write else 'retry'}: {exc}")
                continue
            if received.event.event_type != REGISTERED:
                reject(received, f"unexpected event type {received.event.event_type} on {CHALLENGES_REGISTERED}")
                continue
            try:
                registration = registration_from_payload(received.event.payload)
            except (InvalidRegistration, KeyError) as exc:
                reject(received, f"invalid registration: {exc}")
                continue
            if received.key != str(registration.challenge_id):
                reject(received, f"key {received.key!r} is not the challenge id {registration.challenge_id}")
                continue
            registrations.append(RegistrationFact(registration, received.event.event_id,
                                                  received.event.occurred_at))
        if not facts and not registrations and not registry_writes and not job_events:
            return None
        newest = newest_per_event_id(facts)
        return PreparedBatch(newest, "".join(map(fact_copy_line, newest)), registrations,
                             newest_per_challenge(registry_writes), job_events)

    def write(self, conn: psycopg.Connection, prepared: PreparedBatch) -> None:
        touched = prepared.touched
        lock_challenges(conn, touched)
        # the live facts stored before this batch, read before it is stored: the batch's own facts are in
        # hand already and need not come back from the table
        facts_before = load_live_facts(conn, touched) if touched else {}
        if prepared.registrations:
            ids = sorted({r.registration.challenge_id for r in prepared.registrations})
            standing = {cid: stored.registration for cid, stored in load_registrations(conn, ids).items()}
            upserts = reduce_registrations(prepared.registrations, standing)
            if upserts:
                store_registrations(conn, upserts)
        if prepared.registry_writes:
            store_registry_writes(conn, prepared.registry_writes)
        if prepared.job_events:
            store_job_events(conn, prepared.job_events)
        all_new = not any(f.removed for f in prepared.facts)
        if not touched:  # only facts no challenge derives from: stored, nothing to derive
            if prepared.facts:
                store_facts(conn, prepared.fact_lines, all_new=all_new, meanwhile=lambda: None)
            return
        registrations = load_registrations(conn, touched)
        writes = load_registry_writes(conn, touched)
        jobs = load_job_events(conn, touched)

        def derive_touched() -> DerivedRows:
            facts = with_batch(facts_before, prepared.facts)
            derived = [derive(cid, registrations.get(cid), facts.get(cid, {}).values(), writes.get(cid),
                              jobs.get(cid, ())) for cid in touched]
            for d in derived:
                for reason in d.ignored:
                    log.warning("challenge %d: fact ignored by the state fold: %s", d.challenge_id, reason)
            return derived_rows(derived)

        # every input is read by now: the challenges are derived while PostgreSQL stores the batch's facts
        rows = (store_facts(conn, prepared.fact_lines, all_new=all_new, meanwhile=derive_touched)
                if prepared.facts else derive_touched())
        write_derived(conn, touched, rows)


def with_batch(stored: dict[int, list[ChainFact]], batch: Sequence[ChainFact]) -> dict[int, dict[str, ChainFact]]:
    """Per challenge, its facts by event id once the batch is stored: what `load_live_facts` would read
    after `store_facts` (derive drops the removed ones). A stored fact's message is published again only
    with the same content, `removed` aside (its event id names the log), and the store keeps the first
    message's columns but the newest `removed`: so a batch message replaces the stored fact."""
    facts = {cid: {f.event_id: f for f in stored_facts} for cid, stored_facts in stored.items()}
    for fact in batch:
        if fact.challenge_id is not None and fact.contract in DERIVING_CONTRACTS:
            facts.setdefault(fact.challenge_id, {})[fact.event_id] = fact
    return facts
