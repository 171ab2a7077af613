-- The newest operator retry of each challenge's registry write (`lc registry retry`,
-- RegistryRetryRequested on lc.challenges.registered): who, why and when. It stays after the
-- writer's next outcome; while the retry is the newest fact the write shows `pending`.
ALTER TABLE challenge_registry_writes
    ADD COLUMN retry_by     text,
    ADD COLUMN retry_reason text,
    ADD COLUMN retry_at     timestamptz;
