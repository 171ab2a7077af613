"""`lc run dispatcher`: verdicts + lifecycle facts + registrations + chain time → lc.jobs (and rankings
on lc.verdicts).

Plain confluent-kafka (`MergedStage`), consumer group `lc-dispatcher`. Inputs lc.verdicts,
lc.chain.events and lc.challenges.registered are co-partitioned; lc.chain.blocks is read whole by
every instance (`BlockClock`). Each partition's inputs and the blocks are merged by Kafka timestamp
and folded per challenge by `streams.dispatch.decide`, whose decision ids depend only on the inputs,
so a replay or a redelivery gives the same ids. Outputs carry the Kafka timestamp of their input.

State in lc.state.dispatcher (statecodec JSON): `c/<challenge>` -> its DispatchState, stored without
chain time; the partition's chain time (every challenge of a partition has seen the same blocks, so
has the same chain time) is in the partition's meta entry, with its place in lc.chain.blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from domain.chain_time import ChainTime
from domain.challenge_state import ChallengeFact
from eventlog.consumer import Received, Reject, StopFlag
from eventlog.processing.clock import BlockClock
from eventlog.processing.inputs import challenge_fact, registration
from eventlog.processing.merge import BLOCKS, Timed
from eventlog.processing.stage import MergedStage
from eventlog.processing.statecodec import StateCodec
from eventlog.producer import EventProducer
from eventlog.topics import CHAIN_EVENTS, CHALLENGES_REGISTERED, JOBS, STATE_DISPATCHER, VERDICTS
from streams.dispatch import (
    AddParticipants,
    CancelJob,
    Decision,
    DispatchInput,
    DispatchPolicy,
    DispatchState,
    PublishRanking,
    QueueJob,
    VerdictFact,
    decide,
)
from streams.settings import StreamSettings

log = logging.getLogger(__name__)

GROUP = "lc-dispatcher"
INPUTS = (VERDICTS, CHAIN_EVENTS, CHALLENGES_REGISTERED)
STATES = StateCodec(DispatchState)


def verdict_fact(received: Received) -> VerdictFact:
    p = received.event.payload
    evidence_at = p.get("evidence_at")
    return VerdictFact(
        challenge_id=p["challenge_id"], subject=p["subject"], pass_=p["pass"], score=p.get("score"),
        evidence_at=evidence_at // 1000 if evidence_at is not None else None,
    )


@dataclass(frozen=True)
class Fact:
    fact: VerdictFact | ChallengeFact
    occurred_at: int  # epoch ms of the input event


@dataclass
class PartitionState:
    challenges: dict[int, DispatchState] = field(default_factory=dict)
    chain_time: int | None = None  # the newest block time seen: every challenge's chain time


@dataclass(frozen=True)
class Output:
    decision: Decision
    occurred_at: int
    timestamp: int


def policy_from(settings: StreamSettings) -> DispatchPolicy:
    if settings.dispatch_rank_at not in ("ends_at", "proof_deadline"):
        raise ValueError(f"LC_DISPATCH_RANK_AT must be ends_at or proof_deadline, not {settings.dispatch_rank_at!r}")
    rank_at = cast(Literal["ends_at", "proof_deadline"], settings.dispatch_rank_at)
    return DispatchPolicy(rank_at=rank_at, grace_seconds=settings.dispatch_grace_seconds)


def read_fact(received: Received, reject: Reject) -> Fact | None:
    """The dispatch input of a consumed event; None when the dispatcher does not read it."""
    event = received.event
    fact: VerdictFact | ChallengeFact | None = None
    if received.topic == VERDICTS and event.event_type == "VerdictIssued":
        fact = verdict_fact(received)
    elif received.topic == CHAIN_EVENTS and event.event_type == "ChainEvent":
        try:
            fact = challenge_fact(received)
        except (KeyError, TypeError, ValueError) as exc:  # an ordered chain fact: `reject` halts the stage
            reject(received, f"unreadable chain fact: {exc!r}")
    elif received.topic == CHALLENGES_REGISTERED and event.event_type == "ChallengeRegistered":
        try:
            fact = registration(received)
        except ValueError as exc:
            reject(received, f"invalid challenge registration: {exc}")
    return Fact(fact, event.occurred_at) if fact is not None else None


def step(partition: PartitionState, entry: Timed[Fact | ChainTime], policy: DispatchPolicy) -> list[Output]:
    """Fold one merged input into its challenge(s); a block reaches every challenge of the partition."""
    if entry.source == BLOCKS:
        tick = cast(ChainTime, entry.item)
        # as each challenge's own fold does: chain time never moves back (a replacing block may be older)
        partition.chain_time = tick.timestamp if partition.chain_time is None else max(partition.chain_time,
                                                                                       tick.timestamp)
        targets: Iterable[int] = sorted(partition.challenges)
        fact: DispatchInput = tick
        occurred_at = tick.timestamp * 1000
    else:
        item = cast(Fact, entry.item)
        fact, occurred_at = item.fact, item.occurred_at
        targets = (item.fact.challenge_id,)
    outputs = []
    for challenge_id in targets:
        state = partition.challenges.get(challenge_id)
        if state is None:
            state = replace(DispatchState.initial(challenge_id), chain_time=partition.chain_time)
        state, decisions = decide(state, fact, policy)
        partition.challenges[challenge_id] = state
        outputs.extend(Output(d, occurred_at, entry.timestamp) for d in decisions)
    return outputs


def publish(producer: EventProducer, output: Output) -> None:
    d, at, ts = output.decision, output.occurred_at, output.timestamp
    key = str(d.challenge_id)
    if isinstance(d, PublishRanking):
        outcomes = [{"subject": o.subject, "rank": o.rank, "pass": o.pass_,
                     "score": float(o.score) if o.score is not None else None, "reason": o.reason}
                    for o in d.outcomes]
        payload = {"challenge_id": d.challenge_id, "top_n": d.top_n, "chain_time": at // 1000, "outcomes": outcomes}
        producer.publish(VERDICTS, key, "RankingPublished", payload, event_id=d.decision_id, occurred_at=at,
                         timestamp_ms=ts)
    elif isinstance(d, QueueJob):
        producer.publish(JOBS, key, "JobQueued", {"job_id": d.job_id, "challenge_id": d.challenge_id, "mode": d.mode,
                                                  "participants": list(d.participants)},
                         event_id=d.decision_id, occurred_at=at, timestamp_ms=ts)
    elif isinstance(d, AddParticipants):
        producer.publish(JOBS, key, "JobParticipantsAdded",
                         {"job_id": d.job_id, "challenge_id": d.challenge_id, "participants": list(d.participants)},
                         event_id=d.decision_id, occurred_at=at, timestamp_ms=ts)
    elif isinstance(d, CancelJob):
        producer.publish(JOBS, key, "JobCanceled", {"job_id": d.job_id, "challenge_id": d.challenge_id,
                                                    "reason": d.reason},
                         event_id=d.decision_id, occurred_at=at, timestamp_ms=ts)


class Dispatcher(MergedStage[Fact]):
    group = GROUP
    inputs = INPUTS
    changelog_topic = STATE_DISPATCHER

    def __init__(self, settings: StreamSettings, *, stop: StopFlag | None = None, batch_size: int = 1000) -> None:
        super().__init__(settings, stop=stop, batch_size=batch_size, clock=BlockClock(settings, GROUP))
        self.policy = policy_from(settings)
        self.partitions: dict[int, PartitionState] = {}

    def read(self, received: Received, reject: Reject) -> Fact | None:
        return read_fact(received, reject)

    def apply(self, partition: int, entry: Timed[Fact | ChainTime], emit: bool) -> None:
        state = self.partitions.setdefault(partition, PartitionState())
        outputs = step(state, entry, self.policy)
        if entry.source != BLOCKS:
            self.changelog.changed(partition, f"c/{cast(Fact, entry.item).fact.challenge_id}")
        for output in outputs:
            # a block changes a challenge beyond its chain time only when it decides something
            self.changelog.changed(partition, f"c/{output.decision.challenge_id}")
            if emit:
                publish(self.producer, output)

    def forget(self, partition: int) -> None:
        self.partitions.pop(partition, None)

    # --- the state in lc.state.dispatcher -----------------------------------------------------------

    def state_keys(self, partition: int) -> Iterator[str]:
        state = self.partitions.get(partition)
        return (f"c/{challenge_id}" for challenge_id in (state.challenges if state is not None else ()))

    def encode_state(self, partition: int, key: str) -> bytes | None:
        state = self.partitions.get(partition)
        found = state.challenges.get(int(key[2:])) if state is not None else None
        return STATES.encode(replace(found, chain_time=None)) if found is not None else None

    def load_state(self, partition: int, key: str, value: bytes) -> None:
        state = self.partitions.setdefault(partition, PartitionState())
        state.challenges[int(key[2:])] = STATES.decode(value)

    def partition_extra(self, partition: int) -> dict[str, Any]:
        state = self.partitions.get(partition)
        return {"chain_time": state.chain_time if state is not None else None}

    def load_partition_extra(self, partition: int, extra: dict[str, Any]) -> None:
        state = self.partitions.setdefault(partition, PartitionState())
        state.chain_time = extra.get("chain_time")
        state.challenges = {cid: replace(s, chain_time=state.chain_time) for cid, s in state.challenges.items()}


def run_dispatcher(settings: StreamSettings, stop: StopFlag) -> None:
    Dispatcher(settings, stop=stop).run()
