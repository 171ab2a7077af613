-- Wallet-to-platform identity bindings, columns and indexes as the original system's
-- `identity_bindings` (spec/schema.md §3.8). Written only by the accounts projection
-- (projections/accounts.py) from the IdentityBound events on lc.accounts.
CREATE TABLE identity_bindings (
    id          bigserial   PRIMARY KEY,
    wallet      text        NOT NULL,
    platform    text        NOT NULL,
    platform_id text        NOT NULL,
    handle      text,
    signed_by   text,
    signature   text,
    ts          bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT identity_bindings_wallet_platform_uq UNIQUE (wallet, platform)
);
CREATE INDEX identity_bindings_wallet_idx ON identity_bindings (wallet);
CREATE INDEX identity_bindings_platform_id_idx ON identity_bindings (platform, platform_id);
