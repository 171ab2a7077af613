-- Verdict notifications the pipeline has put into the shared `notifications` table, one per
-- (challenge, wallet, tier). Kept across rebuilds (projections/ownership.py KEPT): a notification the
-- web app deleted or marked read is never delivered again by a replay.
CREATE TABLE notification_deliveries (
    notification_id  uuid        PRIMARY KEY,
    challenge_id     bigint      NOT NULL,
    wallet           text        NOT NULL,
    tier             text        NOT NULL,
    verdict_event_id text        NOT NULL,
    delivered_at     timestamptz NOT NULL
);
