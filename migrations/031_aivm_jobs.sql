-- AIVM jobs: columns as the original system's `aivm_jobs` (migration 009 there). Written only by
-- the jobs projection (projections/jobs.py): a job's row is the job fold (streams/job_state.py)
-- over its stored inputs, recomputed whenever one of them arrives or is retracted.
CREATE TABLE aivm_jobs (
    id             bigserial   PRIMARY KEY,
    challenge_id   bigint      NOT NULL UNIQUE,
    status         text        NOT NULL DEFAULT 'queued',
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text,
    worker_address text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    task_id        text
);
CREATE INDEX idx_aivm_jobs_status_created_at ON aivm_jobs (status, created_at);
CREATE INDEX idx_aivm_jobs_task_id ON aivm_jobs (task_id);

-- Every input of the job fold, in arrival order: job events (lc.jobs) and AIVM chain facts
-- (lc.chain.events, contract AIVMInferenceV2). A retraction after a reorg marks its fact removed.
CREATE TABLE aivm_job_inputs (
    seq         bigserial   PRIMARY KEY,
    event_id    text        NOT NULL UNIQUE,
    kind        text        NOT NULL,
    job_id      text,
    task_id     text,
    request_id  numeric,
    payload     jsonb       NOT NULL,
    occurred_at timestamptz NOT NULL,
    removed     boolean     NOT NULL DEFAULT false
);
CREATE INDEX aivm_job_inputs_job_idx ON aivm_job_inputs (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX aivm_job_inputs_task_idx ON aivm_job_inputs (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX aivm_job_inputs_request_idx ON aivm_job_inputs (request_id) WHERE request_id IS NOT NULL;
