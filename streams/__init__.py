"""Stream processors' pure logic: evaluation, ranking, dispatch decisions and state folds.

No I/O, no wall clock: time arrives as chain time in the inputs.

- `streams.evaluation`: `parse_challenge_rule(params, proof, timeline) -> ChallengeRule` and
  `evaluate(rule, evidence_by_provider) -> Verdict`.
- `streams.ranking`: `rank(entries, top_n) -> tuple[RankedOutcome, ...]`.
- `domain.challenge_state`: `apply_challenge_fact(state, fact) -> ChallengeState`.
- `streams.dispatch`: `decide(state, input, policy) -> (DispatchState, list[Decision])`, per challenge.
- `domain.job_state`: `apply_to_job(job, event)` / `apply_to_book(book, event)`.
"""
