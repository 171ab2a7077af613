-- The newest operator fact accepted for each job (lc jobs requeue / run / cancel, issue 14): what,
-- who, why and when. Written only by the jobs projection (projections/jobs.py) from the job fold;
-- the facts themselves (JobRequeued, JobRunRequested, JobCanceled with an operator) are on lc.jobs.
ALTER TABLE aivm_jobs
    ADD COLUMN operator_command text,
    ADD COLUMN operator_name    text,
    ADD COLUMN operator_reason  text,
    ADD COLUMN operator_at      timestamptz;
