"""The topic catalogue: every topic of the pipeline, in one place."""

from __future__ import annotations

from dataclasses import dataclass

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

KEEP_FOREVER = -1
# A state topic is read whole on every assignment. Only closed segments are compacted, so the open one
# is read uncompacted: the smallest segment Kafka allows (1 MiB) bounds that tail, and a low dirty
# ratio bounds the share of superseded values in the rest, so a restore reads about the state's size.
STATE_CONFIG = {"segment.bytes": str(1024 * 1024), "min.cleanable.dirty.ratio": "0.2"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    what: str
    cleanup_policy: str = "delete"
    retention_ms: int = KEEP_FOREVER
    partitions: int | None = None  # None = Settings.topic_partitions
    extra_config: tuple[tuple[str, str], ...] = ()

    def config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy}
        if self.cleanup_policy == "delete":
            config["retention.ms"] = str(self.retention_ms)
        config.update(self.extra_config)
        return config


def state_topic(name: str, what: str, *, partitions: int | None = None) -> TopicSpec:
    return TopicSpec(name, "state key", what, cleanup_policy="compact", partitions=partitions,
                     extra_config=tuple(STATE_CONFIG.items()))


CATALOGUE: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(CHAIN_BLOCKS, "chain id", "canonical block headers and reverts after a reorg", partitions=1),
        TopicSpec(CHAIN_EVENTS, "challenge id (task id until bound)", "decoded contract logs and their retractions"),
        TopicSpec(CHALLENGES_REGISTERED, "challenge id", "off-chain challenge metadata: rule, model, mode, topN"),
        TopicSpec(ACCOUNTS, "subject:provider", "linked provider accounts, tokens encrypted", cleanup_policy="compact"),
        TopicSpec(EVIDENCE, "challenge id", "normalized evidence records with their evidence hash"),
        TopicSpec(VERDICTS, "challenge id", "verdicts and competitive rankings"),
        TopicSpec(JOBS, "challenge id", "AIVM job lifecycle events"),
        TopicSpec(DLQ, "source topic", "rejected input with the reason, the original bytes and its origin",
                  partitions=1),
        state_topic(STATE_EVALUATOR, "the evaluator's state: rules and per-subject evidence (compacted)"),
        state_topic(STATE_DISPATCHER, "the dispatcher's state: per-challenge dispatch state (compacted)"),
        state_topic(STATE_AIVM_WORKER, "the AIVM worker's per-challenge views (compacted)"),
        state_topic(STATE_FINALIZER, "the finalization bridge's per-challenge views (compacted)"),
        state_topic(STATE_REGISTRY_WRITER, "the registry writer's per-challenge views (compacted)"),
        state_topic(CHAIN_CHECKPOINTS, "the chain indexer's reorg window and keying facts, per chain (compacted)",
                    partitions=1),
    )
}
