-- The job events of lc.jobs that carry a challenge's AIVM progress (request, bindings, proofs,
-- finalization), stored as facts by the challenge projection; `challenges.proof` is derived from them
-- and the challenge's AIVM chain facts (projections/chain/derive.py).
CREATE TABLE challenge_job_events (
    event_id     text        PRIMARY KEY,
    challenge_id bigint      NOT NULL,
    kind         text        NOT NULL,
    payload      jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX challenge_job_events_challenge_idx ON challenge_job_events (challenge_id);
