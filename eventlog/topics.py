"""The topic catalogue: every topic of the pipeline, in one place, with what may be on it.

Each topic names the event types it carries (a consuming stage refuses any other), whether its
messages are ordered facts whose loss would corrupt every later state (the chain topics: a message a
stage cannot read or apply halts the stage instead of going to lc.dlq), and the largest message it
takes when that is more than the broker's default of 1 MiB. The state topics (lc.state.*,
lc.chain.checkpoints) carry no events: they are the stages' compacted changelogs
(eventlog/processing/changelog.py), read back only by the stage that writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.evidence import MAX_EVENT_BYTES as MAX_EVIDENCE_EVENT_BYTES

CHAIN_BLOCKS = "lc.chain.blocks"
CHAIN_EVENTS = "lc.chain.events"
CHALLENGES_REGISTERED = "lc.challenges.registered"
ACCOUNTS = "lc.accounts"
EVIDENCE = "lc.evidence"
VERDICTS = "lc.verdicts"
JOBS = "lc.jobs"
DLQ = "lc.dlq"
# compacted state of the stateful stages (changelogs: partition p holds the state of input partition p)
STATE_EVALUATOR = "lc.state.evaluator"
STATE_DISPATCHER = "lc.state.dispatcher"
STATE_AIVM_WORKER = "lc.state.aivm-worker"
STATE_FINALIZER = "lc.state.finalizer"
STATE_REGISTRY_WRITER = "lc.state.registry-writer"
CHAIN_CHECKPOINTS = "lc.chain.checkpoints"
STATE_TOPICS = (STATE_EVALUATOR, STATE_DISPATCHER, STATE_AIVM_WORKER, STATE_FINALIZER, STATE_REGISTRY_WRITER,
                CHAIN_CHECKPOINTS)

KEEP_FOREVER = -1
BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's message.max.bytes default (1 MiB + record batch overhead)
RECORD_BATCH_OVERHEAD = 64 * 1024  # batch header, record header, key and message headers, with room to spare
# A state topic is read whole on every assignment. Only closed segments are compacted, so the open one
# is read uncompacted: the smallest segment Kafka allows (1 MiB) bounds that tail, and a low dirty
# ratio bounds the share of superseded values in the rest, so a restore reads about the state's size.
STATE_CONFIG = {"segment.bytes": str(1024 * 1024), "min.cleanable.dirty.ratio": "0.2"}

JOB_EVENT_TYPES = (
    "JobQueued", "JobParticipantsAdded", "JobProcessing", "JobSubmitted", "JobFailed", "JobDead", "JobCanceled",
    "AivmRequestSent", "TaskBindingRecorded", "TaskBindingFailed", "ProofSubmitted", "ProofFailed", "FinalizeSent",
    "FinalizeFailed", "JobExpired", "JobRequeued", "JobRunRequested",
)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    what: str
    event_types: tuple[str, ...]
    ordered_facts: bool = False  # a message no stage can read or apply halts the stage (not lc.dlq)
    cleanup_policy: str = "delete"
    retention_ms: int = KEEP_FOREVER
    partitions: int | None = None  # None = Settings.topic_partitions
    max_message_bytes: int | None = None  # None = the broker's default
    extra_config: tuple[tuple[str, str], ...] = ()

    def config(self, min_insync_replicas: int = 1) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy, "min.insync.replicas": str(min_insync_replicas)}
        if self.cleanup_policy == "delete":
            config["retention.ms"] = str(self.retention_ms)
        if self.max_message_bytes is not None:
            config["max.message.bytes"] = str(self.max_message_bytes)
        config.update(self.extra_config)
        return config

    @property
    def message_limit(self) -> int:
        return self.max_message_bytes or BROKER_DEFAULT_MAX_MESSAGE_BYTES


def state_topic(name: str, what: str, *, partitions: int | None = None) -> TopicSpec:
    """A compacted topic of state entries (statecodec JSON, not events: no stage consumes it as input).
    Its records stay within the broker's default message size: a longer value is stored in pieces
    (eventlog/processing/changelog.py), as a record batch larger than a segment is refused."""
    return TopicSpec(name, "state key", what, (), cleanup_policy="compact", partitions=partitions,
                     extra_config=tuple(STATE_CONFIG.items()))


CATALOGUE: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(CHAIN_BLOCKS, "chain id", "canonical block headers and reverts after a reorg",
                  ("BlockConfirmed", "BlockReverted"), ordered_facts=True, partitions=1),
        TopicSpec(CHAIN_EVENTS, "challenge id (task id until bound)", "decoded contract logs and their retractions",
                  ("ChainEvent",), ordered_facts=True),
        TopicSpec(CHALLENGES_REGISTERED, "challenge id", "off-chain challenge metadata: rule, model, mode, topN",
                  ("ChallengeRegistered", "RegistryWriteRecorded", "RegistryRetryRequested")),
        TopicSpec(ACCOUNTS, "subject:provider", "linked provider accounts (tokens encrypted), identity bindings, "
                  "and their removals", ("LinkedAccount", "AccountUnlinked", "IdentityBound", "IdentityUnbound"),
                  cleanup_policy="compact"),
        TopicSpec(EVIDENCE, "challenge id", "normalized evidence records with their evidence hash",
                  ("EvidenceSubmitted",), max_message_bytes=MAX_EVIDENCE_EVENT_BYTES + RECORD_BATCH_OVERHEAD),
        TopicSpec(VERDICTS, "challenge id", "verdicts and competitive rankings", ("VerdictIssued", "RankingPublished")),
        TopicSpec(JOBS, "challenge id", "AIVM job lifecycle events", JOB_EVENT_TYPES),
        TopicSpec(DLQ, "source topic", "rejected input with the reason, a bounded excerpt of its bytes and its origin",
                  ("DeadLetter",), partitions=1),
        state_topic(STATE_EVALUATOR, "the evaluator's state: rules and per-subject evidence (compacted)"),
        state_topic(STATE_DISPATCHER, "the dispatcher's state: per-challenge dispatch state (compacted)"),
        state_topic(STATE_AIVM_WORKER, "the AIVM worker's per-challenge views (compacted)"),
        state_topic(STATE_FINALIZER, "the finalization bridge's per-challenge views (compacted)"),
        state_topic(STATE_REGISTRY_WRITER, "the registry writer's per-challenge views (compacted)"),
        state_topic(CHAIN_CHECKPOINTS, "the chain indexer's reorg window and keying facts, per chain (compacted)",
                    partitions=1),
    )
}
# what a producer must let through: the largest message any topic takes
LARGEST_MESSAGE_BYTES = max(spec.message_limit for spec in CATALOGUE.values())


def ordered_facts(topic: str) -> bool:
    """Whether a message of this catalogue topic that cannot be read or applied halts its stage."""
    spec = CATALOGUE.get(topic)
    return spec is not None and spec.ordered_facts
