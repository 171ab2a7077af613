-- The newest IdentityUnbound per (wallet, platform) (lc.accounts): an unbinding removes the
-- identity_bindings row and keeps out any binding attested no later than it (ts), so a re-published
-- older binding cannot bring the row back. Written only by the accounts projection.
CREATE TABLE identity_unbindings (
    wallet     text        NOT NULL,
    platform   text        NOT NULL,
    ts         bigint      NOT NULL,
    event_id   text        NOT NULL,
    unbound_at timestamptz NOT NULL,
    PRIMARY KEY (wallet, platform)
);
