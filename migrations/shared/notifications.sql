-- The web app's `notifications` (its migrations 021, 028 and 034; spec/schema.md §3.15), shared: the web
-- app writes its own alerts here and the pipeline adds the evaluator's verdict notifications. Not a
-- numbered migration and not tracked: `lc migrate` runs this on the live schema every time, and every
-- statement is IF NOT EXISTS, so a database where the web app created the table keeps its own.
-- Never part of a rebuild (projections/ownership.py SHARED).
CREATE TABLE IF NOT EXISTS notifications (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    wallet     text        NOT NULL,
    type       text        NOT NULL CHECK (type IN ('match_upcoming', 'match_result', 'competition_started',
                                                    'competition_completed', 'registration_confirmed',
                                                    'dispute_filed', 'dispute_resolved', 'achievement_earned',
                                                    'challenge_finalized', 'funds_received', 'refund_received')),
    title      text        NOT NULL,
    body       text,
    data       jsonb       NOT NULL DEFAULT '{}',
    read       boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_notifications_wallet ON notifications (wallet, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_notifications_unread ON notifications (wallet) WHERE read = false;
CREATE UNIQUE INDEX IF NOT EXISTS idx_notifications_challenge_alert_unique
    ON notifications (wallet, (data->>'challengeId'), (data->>'tier'))
    WHERE type IN ('challenge_behind_pace', 'challenge_final_push', 'challenge_goal_reached', 'claim_available',
                   'claim_reminder', 'challenge_joined', 'proof_submitted', 'challenge_starting',
                   'proof_window_open', 'challenge_finalized');
