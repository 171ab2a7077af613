-- Evidence: one row per (challenge, lower(subject), provider), columns as the original system's
-- `evidence` table (migrations 001 and 025 there). Written only by the evidence projection.
CREATE TABLE evidence (
    id            bigserial PRIMARY KEY,
    challenge_id  bigint      NOT NULL,
    subject       text        NOT NULL,
    provider      text        NOT NULL,
    data          jsonb       NOT NULL,
    evidence_hash text        NOT NULL,
    raw_ref       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evidence_challenge_id_idx ON evidence (challenge_id);
CREATE INDEX evidence_challenge_subject_idx ON evidence (challenge_id, lower(subject));
CREATE UNIQUE INDEX evidence_challenge_subject_provider_uq ON evidence (challenge_id, lower(subject), provider);
