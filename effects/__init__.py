"""Chain writers: the only stages that send transactions (DESIGN.md principle 6).

- `aivm_worker` (`lc run aivm-worker`): queued jobs -> requestInferenceV2 + a task binding per participant.
- `finalizer` (`lc run finalizer`): InferenceFinalized -> submitProofFor per participant -> finalize.

Each writes what it did (transaction hashes) or failed to do (the reason) back to lc.jobs as events with
deterministic ids, and checks the chain before sending, so a restart after a crash never sends twice.
Pure decisions live in `request_plan`, `worker_state` and `finalizer_state`; web3 in `chain`.
"""
