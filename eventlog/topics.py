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

KEEP_FOREVER = -1


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    what: str
    cleanup_policy: str = "delete"
    retention_ms: int = KEEP_FOREVER
    partitions: int | None = None  # None = Settings.topic_partitions

    def config(self, min_insync_replicas: int = 1) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy, "min.insync.replicas": str(min_insync_replicas)}
        if self.cleanup_policy == "delete":
            config["retention.ms"] = str(self.retention_ms)
        return config


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
    )
}
