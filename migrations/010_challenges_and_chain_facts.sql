-- Chain facts and challenge registrations as stored facts, and the original system's tables derived
-- from them (spec/schema.md §3.4, §3.6, §3.7, §3.10). Written only by the chain projection
-- (projections/chain/): `challenges`, `participants` and `claims` rows of a challenge are recomputed
-- from its registration and its non-retracted chain facts whenever one of them changes.

-- Every decoded contract log ever published, with its current standing: removed = true once a
-- retraction (same event_id) arrived after a reorg; a re-publish of the same id sets it back.
CREATE TABLE chain_events (
    event_id        text        PRIMARY KEY,
    chain_id        bigint      NOT NULL,
    challenge_id    bigint,
    contract        text        NOT NULL,
    address         text        NOT NULL,
    event           text        NOT NULL,
    block_number    bigint      NOT NULL,
    block_hash      text        NOT NULL,
    block_timestamp bigint      NOT NULL,
    tx_hash         text        NOT NULL,
    tx_index        bigint      NOT NULL,
    log_index       bigint      NOT NULL,
    args            jsonb       NOT NULL,
    removed         boolean     NOT NULL
);
CREATE INDEX chain_events_challenge_idx ON chain_events (challenge_id, block_number, tx_index, log_index);
CREATE INDEX chain_events_block_idx ON chain_events (block_number);

-- The newest registration (lc.challenges.registered) of each challenge.
CREATE TABLE challenge_registrations (
    challenge_id        bigint      PRIMARY KEY,
    event_id            text        NOT NULL,
    content_hash        text        NOT NULL,
    registration        jsonb       NOT NULL,
    first_registered_at timestamptz NOT NULL,
    registered_at       timestamptz NOT NULL
);

CREATE TABLE challenges (
    id                      bigint      PRIMARY KEY,
    title                   text,
    description             text,
    subject                 text,
    tx_hash                 text,
    model_id                text,
    model_hash              text,
    params                  jsonb,
    proof                   jsonb,
    timeline                jsonb,
    funds                   jsonb,
    options                 jsonb,
    status                  text,
    created_at              timestamptz DEFAULT now(),
    updated_at              timestamptz DEFAULT now(),
    aivm_request_started    boolean     DEFAULT false,
    aivm_request_started_at timestamptz,
    chain_outcome           smallint    DEFAULT NULL,
    registry_status         text        DEFAULT 'pending',
    registry_tx_hash        text,
    registry_error          text,
    auto_distributed        boolean     NOT NULL DEFAULT false,
    auto_distributed_at     timestamptz,
    auto_distributed_tx     text
);
CREATE INDEX idx_challenges_status ON challenges (status);
CREATE INDEX idx_challenges_status_created_at ON challenges (lower(COALESCE(status, '')), created_at);
CREATE INDEX idx_challenges_created_at ON challenges (created_at DESC);
CREATE INDEX idx_challenges_proof_backend ON challenges (lower(COALESCE(proof->>'backend', '')));
CREATE INDEX idx_challenges_proof_task_id ON challenges ((proof->'taskBinding'->>'taskId'));
CREATE INDEX idx_challenges_proof_request_id ON challenges ((proof->'taskBinding'->>'requestId'));
CREATE INDEX idx_challenges_aivm_started ON challenges (aivm_request_started);
CREATE INDEX idx_challenges_registry_status ON challenges (registry_status)
    WHERE registry_status IN ('pending', 'failed');

CREATE TABLE participants (
    id           bigserial   PRIMARY KEY,
    challenge_id bigint      NOT NULL,
    subject      text        NOT NULL,
    tx_hash      text,
    joined_at    timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    source       text        NOT NULL DEFAULT 'unknown'
);
CREATE UNIQUE INDEX participants_challenge_subject_uq ON participants (challenge_id, lower(subject));
CREATE INDEX participants_subject_idx ON participants (lower(subject));
CREATE INDEX participants_challenge_id_idx ON participants (challenge_id);

CREATE TABLE claims (
    id           bigserial     PRIMARY KEY,
    challenge_id bigint        NOT NULL,
    subject      text          NOT NULL,
    claim_type   text          NOT NULL,
    amount_wei   numeric(78,0) NOT NULL DEFAULT 0,
    bucket_id    bigint,
    tx_hash      text,
    block_number bigint,
    source       text          NOT NULL DEFAULT 'ui',
    metadata     jsonb,
    claimed_at   timestamptz   NOT NULL DEFAULT now(),
    created_at   timestamptz   NOT NULL DEFAULT now(),
    updated_at   timestamptz   NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX claims_challenge_subject_type_uq ON claims (challenge_id, lower(subject), claim_type);
CREATE INDEX claims_subject_idx ON claims (lower(subject));
CREATE INDEX claims_challenge_id_idx ON claims (challenge_id);
CREATE INDEX claims_tx_hash_idx ON claims (tx_hash) WHERE tx_hash IS NOT NULL;

CREATE TABLE indexer_state (
    key   text PRIMARY KEY,
    value text
);
INSERT INTO indexer_state (key, value) VALUES
    ('last_aivm_block', '0'), ('last_claims_block', '0'), ('last_status_block', '0')
ON CONFLICT (key) DO NOTHING;
