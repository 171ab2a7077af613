-- Why a challenge's registration is not applied to its row: the registered subject is not the
-- creator named by the chain's ChallengeCreated (projections/chain/derive.py); NULL when there is
-- no conflict. Set and cleared only by the challenges projection.
ALTER TABLE challenges ADD COLUMN registration_conflict text;
