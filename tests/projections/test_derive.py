"""The pure part of the challenge projection: rows from a registration and live chain facts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from domain.registration import validate_registration
from eventlog.consumer import Received
from eventlog.serde import Event
from projections.chain.derive import RegistryWrite, StoredRegistration, derive
from projections.chain.facts import ChainFact, UnreadableChainFact, newest_per_event_id, read_fact

T0 = 1_700_000_000
ALICE, BOB, CREATOR = "0x" + "a1" * 20, "0x" + "b0" * 20, "0x" + "c4" * 20


def fact(event: str, block: int, log_index: int = 0, *, contract: str = "ChallengePay", removed: bool = False,
         cid: int = 7, **args: Any) -> ChainFact:
    return ChainFact(
        event_id=f"31337:{block}:{log_index}", chain_id=31337, challenge_id=cid, contract=contract,
        address="0x" + "11" * 20, event=event, block_number=block, block_hash=f"0x{block:064x}",
        block_timestamp=T0 + block, tx_hash=f"0x{block:062x}{log_index:02x}", tx_index=log_index,
        log_index=log_index, args=args, removed=removed)


def registered(at_ms: int = 1_000) -> StoredRegistration:
    registration = validate_registration({
        "id": 7, "subject": CREATOR, "model_id": "fitness.steps@1", "title": "T", "params": {"rules": {}},
        "timeline": {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-02T00:00:00Z"}})
    return StoredRegistration(registration, at_ms, at_ms)


LIFECYCLE = [
    fact("ChallengeCreated", 10, id="7", creator=CREATOR, startTs=str(T0 + 100)),
    fact("Joined", 11, id="7", user=ALICE, amount="5"),
    fact("Joined", 12, id="7", user=BOB, amount="5"),
    fact("Joined", 13, id="7", user=ALICE, amount="5"),
    fact("Paused", 14, id="7", paused=True),
    fact("Finalized", 15, id="7", status=1, outcome=1),
    fact("Paused", 16, id="7", paused=False),  # after Finalized: ignored by the fold
    fact("WinnerClaimed", 17, id="7", user=ALICE, amount="15"),
    fact("ClaimedETH", 18, contract="Treasury", bucketId="7", to=ALICE, amount="10"),
    fact("ClaimedETH", 19, contract="Treasury", bucketId="7", to=ALICE, amount="5"),
    fact("MetadataSet", 20, contract="MetadataRegistry", challengeId="7"),
]


def test_rows_do_not_depend_on_the_order_facts_arrive_in() -> None:
    expected = derive(7, registered(), LIFECYCLE)
    shuffled = list(LIFECYCLE)
    for seed in range(20):
        random.Random(seed).shuffle(shuffled)
        assert derive(7, registered(), shuffled) == expected


def test_the_rows_of_a_lifecycle() -> None:
    d = derive(7, registered(), LIFECYCLE)
    assert d.challenge is not None
    c = d.challenge
    assert (c.status, c.chain_outcome, c.subject, c.title) == ("Finalized", 1, CREATOR, "T")
    assert (c.registry_status, c.registry_tx_hash) == ("success", LIFECYCLE[-1].tx_hash)
    assert (c.created_at, c.updated_at) == (1_000, (T0 + 20) * 1000)
    assert d.ignored == ("Paused after the challenge was Finalized",)
    assert [(p.subject, p.joined_at, p.updated_at, p.source) for p in d.participants] == [
        (CREATOR, (T0 + 10) * 1000, (T0 + 10) * 1000, "onchain_create"),  # the creator stakes at creation
        (ALICE, (T0 + 11) * 1000, (T0 + 13) * 1000, "onchain_join"),
        (BOB, (T0 + 12) * 1000, (T0 + 12) * 1000, "onchain_join")]
    claims = {(c.claim_type, c.subject): (c.amount_wei, c.block_number, c.metadata["claims"]) for c in d.claims}
    assert claims == {("winner", ALICE): (15, 17, 1), ("treasury_eth", ALICE): (15, 19, 2)}


def test_removed_facts_do_not_count() -> None:
    live = [f for f in LIFECYCLE if f.event not in ("Finalized", "ClaimedETH")]
    retracted = [f._replace(removed=True) if f.event in ("Finalized", "ClaimedETH") else f for f in LIFECYCLE]
    assert derive(7, registered(), retracted) == derive(7, registered(), live)
    d = derive(7, registered(), retracted)
    assert d.challenge is not None and d.challenge.status == "Active"  # Paused(false) applies again
    assert [c.claim_type for c in d.claims] == ["winner"]


def test_registry_status_follows_the_newest_metadata_fact() -> None:
    base = LIFECYCLE[:1]
    set_ = fact("MetadataSet", 20, contract="MetadataRegistry", challengeId="7")
    cleared = fact("MetadataCleared", 21, contract="MetadataRegistry", challengeId="7")
    forced = fact("MetadataForceSet", 22, contract="MetadataRegistry", challengeId="7")
    cleared_row = derive(7, None, [*base, set_, cleared]).challenge
    assert cleared_row is not None and (cleared_row.registry_status, cleared_row.registry_tx_hash) == ("pending", None)
    forced_row = derive(7, None, [*base, set_, cleared, forced]).challenge
    assert forced_row is not None and (forced_row.registry_status, forced_row.registry_tx_hash) == (
        "success", forced.tx_hash)


def test_which_challenges_have_a_row() -> None:
    assert derive(7, None, [fact("Finalized", 5, id="7", status=1, outcome=2)]).challenge is None
    unregistered = derive(7, None, LIFECYCLE[:1]).challenge
    assert unregistered is not None and (unregistered.subject, unregistered.created_at) == (CREATOR, (T0 + 10) * 1000)
    only_registered = derive(7, registered(5_000), []).challenge
    assert only_registered is not None and (only_registered.status, only_registered.created_at) == (None, 5_000)


def received(payload: dict[str, Any], event_type: str = "ChainEvent") -> Received:
    return Received("lc.chain.events", 0, 3, "7", Event(event_type, "id-1", 0, "test", 1, payload), b"", 0)


def payload(**changes: Any) -> dict[str, Any]:
    base = {"chain_id": 31337, "contract": "ChallengePay", "address": "0x" + "11" * 20, "event": "Joined",
            "block_number": 1, "block_hash": "0x01", "block_timestamp": T0, "tx_hash": "0x02", "tx_index": 0,
            "log_index": 0, "removed": False, "challenge_id": "7", "args": {"id": "7", "user": ALICE, "amount": "1"}}
    return {**base, **changes}


def test_read_fact_accepts_a_good_event_and_halts_on_a_bad_one() -> None:
    assert read_fact(received(payload())).challenge_id == 7
    for bad, reason in (
        (payload(args={"id": "7", "user": "bob", "amount": "1"}), "Joined.user"),
        (payload(args={"id": "7", "user": ALICE}), "amount"),
        (payload(challenge_id="seven"), "challenge_id"),
        (payload(challenge_id=None), "carries no challenge id"),
    ):
        with pytest.raises(UnreadableChainFact, match=reason):
            read_fact(received(bad))
    with pytest.raises(UnreadableChainFact, match="unexpected event type"):
        read_fact(received(payload(), "BlockConfirmed"))
    # a MetadataRegistry event of another contract has no challenge: stored, not consumed
    other = read_fact(received(payload(contract="MetadataRegistry", event="MetadataSet", challenge_id=None,
                                       args={"challengeContract": "0x" + "99" * 20, "challengeId": "7"})))
    assert not other.consumed
    # MetadataRegistry takes any uint256 id: beyond bigint it is a fact of no challenge; ChallengePay's are not
    huge = str(2**64)
    beyond = read_fact(received(payload(contract="MetadataRegistry", event="MetadataSet", challenge_id=huge,
                                        args={"challengeContract": "0x" + "c1" * 20, "challengeId": huge})))
    assert beyond.challenge_id is None and not beyond.consumed and beyond.args["challengeId"] == huge
    with pytest.raises(UnreadableChainFact, match="beyond the bigint range"):
        read_fact(received(payload(challenge_id=huge, args={"id": huge, "user": ALICE, "amount": "1"})))


def test_the_newest_message_of_an_event_id_decides() -> None:
    joined = fact("Joined", 11, id="7", user=ALICE, amount="5")
    assert newest_per_event_id([joined, joined._replace(removed=True)]) == [joined._replace(removed=True)]
    assert newest_per_event_id([joined._replace(removed=True), joined]) == [joined]


def test_registry_columns_prefer_the_chain_over_the_writer() -> None:
    created = LIFECYCLE[:1]
    failed = RegistryWrite("failed", None, "reverted", 2_000)
    row = derive(7, registered(), created, failed).challenge
    assert row is not None and (row.registry_status, row.registry_tx_hash, row.registry_error) == (
        "failed", None, "reverted")
    set_ = fact("MetadataSet", 20, contract="MetadataRegistry", challengeId="7")
    row = derive(7, registered(), [*created, set_], failed).challenge
    assert row is not None and (row.registry_status, row.registry_tx_hash, row.registry_error) == (
        "success", set_.tx_hash, None)
    cleared = fact("MetadataCleared", 21, contract="MetadataRegistry", challengeId="7")
    row = derive(7, registered(), [*created, set_, cleared], failed).challenge
    assert row is not None and (row.registry_status, row.registry_error) == ("pending", None)
