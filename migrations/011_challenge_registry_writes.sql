-- The registry writer's newest outcome per challenge (RegistryWriteRecorded on
-- lc.challenges.registered): one input of challenges.registry_status / registry_tx_hash /
-- registry_error, next to the MetadataRegistry chain facts (projections/chain/derive.py).
CREATE TABLE challenge_registry_writes (
    challenge_id bigint      PRIMARY KEY,
    event_id     text        NOT NULL,
    status       text        NOT NULL,
    tx_hash      text,
    error        text,
    attempt      integer     NOT NULL,
    final        boolean     NOT NULL,
    recorded_at  timestamptz NOT NULL
);
