-- Linked provider accounts, columns and indexes as the original system's `linked_accounts`
-- (spec/schema.md §3.9). Written only by the accounts projection (projections/accounts.py) from
-- lc.accounts. Tokens are AES-256-GCM ciphertext (`enc:...`); unlike the original, plain text is
-- refused by the table itself, not only by the code that writes it.
CREATE TABLE linked_accounts (
    id               bigserial   PRIMARY KEY,
    subject          text        NOT NULL,
    provider         text        NOT NULL,
    external_id      text,
    access_token     text,
    refresh_token    text,
    token_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT linked_accounts_access_token_encrypted CHECK (access_token IS NULL OR access_token LIKE 'enc:%'),
    CONSTRAINT linked_accounts_refresh_token_encrypted CHECK (refresh_token IS NULL OR refresh_token LIKE 'enc:%')
);
CREATE UNIQUE INDEX linked_accounts_subject_provider_uq ON linked_accounts (lower(subject), provider);
CREATE INDEX linked_accounts_subject_idx ON linked_accounts (lower(subject));
CREATE INDEX linked_accounts_provider_idx ON linked_accounts (provider);
