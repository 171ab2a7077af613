"""`challenges`, `participants`, `claims`: challenge state from registrations and chain facts.

Two inputs, both stored as facts first: lc.chain.events into `chain_events` (a retraction flips
`removed` on the same event id) and lc.challenges.registered into `challenge_registrations` (the
newest registration per challenge). Then every challenge the batch touched is derived again from its
registration and its live facts (`projections.chain.derive`) and its rows replaced. Rows therefore
depend only on which facts hold, never on the order the topics were read in or on what was retracted
on the way, so the live projector and `lc rebuild` end at the same rows.

A chain fact that cannot be read halts the projector; a registration that fails validation (the topic
is only as trusted as whoever writes to it) goes to lc.dlq with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import psycopg

from eventlog.consumer import Received, Reject
from eventlog.topics import CHAIN_EVENTS, CHALLENGES_REGISTERED
from indexers.registrations.intake import EVENT_TYPE as REGISTERED
from indexers.registrations.intake import registration_from_payload
from indexers.registrations.registration import InvalidRegistration, Registration
from projections.chain.derive import derive
from projections.chain.facts import ChainFact, newest_per_event_id, read_fact
from projections.chain.store import (
    RegistrationUpsert,
    load_live_facts,
    load_registrations,
    lock_challenges,
    store_facts,
    store_registrations,
    write_derived,
)

log = logging.getLogger(__name__)


class RegistrationFact(NamedTuple):
    registration: Registration
    event_id: str
    occurred_at: int  # epoch ms


class PreparedBatch(NamedTuple):
    facts: list[ChainFact]
    registrations: list[RegistrationUpsert]

    @property
    def touched(self) -> list[int]:
        ids = {f.challenge_id for f in self.facts if f.consumed and f.challenge_id is not None}
        ids.update(u.registration.challenge_id for u in self.registrations)
        return sorted(ids)


def reduce_registrations(facts: Sequence[RegistrationFact]) -> list[RegistrationUpsert]:
    """Per challenge, in topic order: the first registration's time, and the last one whose content
    differs from the one before it (an equal re-registration changes nothing)."""
    state: dict[int, RegistrationUpsert] = {}
    for fact in facts:
        challenge_id = fact.registration.challenge_id
        entry = state.get(challenge_id)
        if entry is None:
            state[challenge_id] = RegistrationUpsert(fact.registration, fact.event_id, fact.occurred_at,
                                                     fact.occurred_at, False)
        elif fact.registration.content_hash != entry.registration.content_hash:
            state[challenge_id] = entry._replace(registration=fact.registration, event_id=fact.event_id,
                                                 registered_at=fact.occurred_at, unconditional=True)
    return list(state.values())


class ChallengesProjection:
    name = "challenges"
    topics = (CHAIN_EVENTS, CHALLENGES_REGISTERED)

    def prepare(self, events: Sequence[Received], reject: Reject) -> PreparedBatch | None:
        facts: list[ChainFact] = []
        registrations: list[RegistrationFact] = []
        for received in events:
            if received.topic == CHAIN_EVENTS:
                facts.append(read_fact(received))
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
        if not facts and not registrations:
            return None
        return PreparedBatch(newest_per_event_id(facts), reduce_registrations(registrations))

    def write(self, conn: psycopg.Connection, prepared: PreparedBatch) -> None:
        touched = prepared.touched
        lock_challenges(conn, touched)
        if prepared.facts:
            store_facts(conn, prepared.facts)
        if prepared.registrations:
            store_registrations(conn, prepared.registrations)
        if not touched:
            return
        registrations = load_registrations(conn, touched)
        facts = load_live_facts(conn, touched)
        derived = [derive(cid, registrations.get(cid), facts.get(cid, ())) for cid in touched]
        for d in derived:
            for reason in d.ignored:
                log.warning("challenge %d: fact ignored by the state fold: %s", d.challenge_id, reason)
        write_derived(conn, touched, derived)
