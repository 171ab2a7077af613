-- Where each projector stands in each topic partition. Written in the same transaction as the
-- projected rows, so rows and offsets can never disagree (exactly-once into PostgreSQL).
CREATE TABLE projection_offsets (
    projector   text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, topic, partition)
);
