-- Verdicts: one row per (challenge, subject), columns as the original system's `verdicts` table
-- (migrations 001 and 018 there). Written only by the verdicts projection (projections/verdicts.py)
-- from VerdictIssued and RankingPublished on lc.verdicts; times are event times.
CREATE TABLE verdicts (
    id            bigserial   PRIMARY KEY,
    challenge_id  bigint      NOT NULL,
    subject       text        NOT NULL,
    pass          boolean     NOT NULL,
    reasons       text[]      NOT NULL DEFAULT '{}',
    evidence_hash text        NOT NULL,
    evaluator     text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    score         numeric,
    metadata      jsonb,
    CONSTRAINT verdicts_challenge_subject_uq UNIQUE (challenge_id, subject)
);
CREATE INDEX verdicts_challenge_id_idx ON verdicts (challenge_id);
CREATE INDEX idx_verdicts_challenge_score ON verdicts (challenge_id, score DESC NULLS LAST);

-- The newest competitive ranking of each challenge, per lower-cased subject: once a challenge is
-- ranked, its verdicts' pass/reasons are the ranking's (a later re-evaluation cannot undo the cut).
CREATE TABLE verdict_rankings (
    challenge_id  bigint      NOT NULL,
    subject_lower text        NOT NULL,
    rank          integer     NOT NULL,
    pass          boolean     NOT NULL,
    reason        text,
    event_id      text        NOT NULL,
    ranked_at     timestamptz NOT NULL,
    PRIMARY KEY (challenge_id, subject_lower)
);
