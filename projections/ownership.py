"""What the pipeline owns in the database it shares with the web app, declared once.

The web app keeps its own tables in the same database and schema (`public`): achievement_mints,
reputation, models, challenge_templates, notifications, user_profiles, openid_nonces,
challenge_invites, the competition platform's tables, its own `schema_migrations`. The pipeline
touches only what is declared here:

- `PROJECTED`: the tables the projector derives from the topics, with every index and constraint
  index the migrations give them. `lc migrate` creates them (tests check the migrations create
  exactly these objects); `lc rebuild` builds fresh copies in a scratch schema and swaps each one in.
- `KEPT`: tables of the pipeline that a rebuild must not replace: the migration bookkeeping, and the
  ledger of notifications already delivered into the shared `notifications` table.
- `SHARED`: the web app's tables the pipeline adds rows to. Never created over an existing table,
  never swapped, never truncated (docs/webapp.md says how each is handled).
"""

from __future__ import annotations

LIVE_SCHEMA = "public"
BOOKKEEPING_TABLE = "lc_pipeline_migrations"
LEGACY_BOOKKEEPING_TABLE = "schema_migrations"  # ours until issue 12; the web app's runner uses the name

PROJECTED: dict[str, tuple[str, ...]] = {
    "evidence": ("evidence_pkey", "evidence_challenge_id_idx", "evidence_challenge_subject_idx",
                 "evidence_challenge_subject_provider_uq"),
    "projection_offsets": ("projection_offsets_pkey",),
    "chain_events": ("chain_events_pkey", "chain_events_challenge_idx", "chain_events_block_idx"),
    "challenge_registrations": ("challenge_registrations_pkey",),
    "challenges": ("challenges_pkey", "idx_challenges_status", "idx_challenges_status_created_at",
                   "idx_challenges_created_at", "idx_challenges_proof_backend", "idx_challenges_proof_task_id",
                   "idx_challenges_proof_request_id", "idx_challenges_aivm_started",
                   "idx_challenges_registry_status"),
    "participants": ("participants_pkey", "participants_challenge_subject_uq", "participants_subject_idx",
                     "participants_challenge_id_idx"),
    "claims": ("claims_pkey", "claims_challenge_subject_type_uq", "claims_subject_idx", "claims_challenge_id_idx",
               "claims_tx_hash_idx"),
    "indexer_state": ("indexer_state_pkey",),
    "challenge_registry_writes": ("challenge_registry_writes_pkey",),
    "verdicts": ("verdicts_pkey", "verdicts_challenge_subject_uq", "verdicts_challenge_id_idx",
                 "idx_verdicts_challenge_score"),
    "verdict_rankings": ("verdict_rankings_pkey",),
    "aivm_jobs": ("aivm_jobs_pkey", "aivm_jobs_challenge_id_key", "idx_aivm_jobs_status_created_at",
                  "idx_aivm_jobs_task_id"),
    "aivm_job_inputs": ("aivm_job_inputs_pkey", "aivm_job_inputs_event_id_key", "aivm_job_inputs_job_idx",
                        "aivm_job_inputs_task_idx", "aivm_job_inputs_request_idx"),
    "linked_accounts": ("linked_accounts_pkey", "linked_accounts_subject_provider_uq", "linked_accounts_subject_idx",
                        "linked_accounts_provider_idx"),
    "identity_bindings": ("identity_bindings_pkey", "identity_bindings_wallet_platform_uq",
                          "identity_bindings_wallet_idx", "identity_bindings_platform_id_idx"),
    "identity_unbindings": ("identity_unbindings_pkey",),
    "challenge_job_events": ("challenge_job_events_pkey", "challenge_job_events_challenge_idx"),
}

KEPT: dict[str, tuple[str, ...]] = {
    BOOKKEEPING_TABLE: ("lc_pipeline_migrations_pkey", "lc_pipeline_migrations_filename_key"),
    "notification_deliveries": ("notification_deliveries_pkey",),
}

SHARED: dict[str, str] = {
    "notifications": "the web app's (its migrations 021, 028, 034); created only where absent, with its definition; "
                     "the pipeline inserts its verdict notifications once each (ON CONFLICT DO NOTHING)",
}


def owned_tables() -> tuple[str, ...]:
    return (*PROJECTED, *KEPT)


def owned_indexes() -> frozenset[str]:
    return frozenset(name for indexes in (*PROJECTED.values(), *KEPT.values()) for name in indexes)
