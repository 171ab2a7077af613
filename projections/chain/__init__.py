"""Projections of chain facts (lc.chain.events, lc.chain.blocks) and challenge registrations.

- `facts`: a ChainEvent message as a stored fact (`chain_events`), validated; retractions included.
- `derive`: pure; a challenge's `challenges`, `participants` and `claims` rows from its registration
  and its live (non-retracted) chain facts, through the challenge-state fold of `streams`.
- `store`: the SQL: facts and registrations in, derived rows replaced per touched challenge.
- `indexer_state`: the original checkpoint keys, following lc.chain.blocks.
"""
