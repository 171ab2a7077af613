"""The bulk scenario's MetadataSet ids stay within `challenges.id` (a signed 64-bit bigint)."""

from __future__ import annotations

from devchain.scenario import metadata_id_base


def test_metadata_ids_stay_within_bigint() -> None:
    bases = {metadata_id_base() for _ in range(2_000)}
    assert len(bases) > 1_990  # random: a run gets fresh ids (ownerSet is write-once)
    assert max(bases) + 10_000_000 < 2**63 - 1
