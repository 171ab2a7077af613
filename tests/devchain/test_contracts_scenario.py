"""The scenario drivers produce every event type the chain indexer consumes, with real transactions."""

from __future__ import annotations

from eth_utils import keccak
from kits.contracts import args_of

from chain import aivm
from devchain.events import INDEXED_EVENTS
from devchain.scenario import (
    ETHER,
    Scenario,
    bulk_events,
    emit_every_event_type,
    full_lifecycle,
    missing_event_types,
)
from devchain.system import LightChallenge


def _decoded(system: LightChallenge, emitted: list[tuple[str, str, str]]) -> dict[tuple[str, str], list[dict]]:
    """(contract, event) -> args of each such log, decoded with web3 from the transactions' receipts."""
    decoded: dict[tuple[str, str], list[dict]] = {}
    for tx_hash in dict.fromkeys(tx for _, _, tx in emitted):
        receipt = system.client.w3.eth.get_transaction_receipt(tx_hash)
        for contract, names in INDEXED_EVENTS.items():
            events = system.contract(contract).events
            for name in names:
                decoded.setdefault((contract, name), []).extend(args_of(getattr(events, name), receipt))
    return decoded


def test_every_indexed_event_type_is_produced_and_decodes(system: LightChallenge):
    emitted = emit_every_event_type(system)

    assert missing_event_types(emitted) == []
    decoded = _decoded(system, emitted)
    assert sum(len(v) for v in decoded.values()) == len(emitted)
    assert {key for key, found in decoded.items() if found} == {
        (c, e) for c, names in INDEXED_EVENTS.items() for e in names}

    pay, token = system.pay.address, system.token.address
    created = decoded[("ChallengePay", "ChallengeCreated")]
    assert [c["id"] for c in created] == [2, 3, 4] and [c["currency"] for c in created] == [0, 0, 1]
    assert created[2]["token"] == token
    finalized = decoded[("ChallengePay", "Finalized")][0]
    assert (finalized["id"], finalized["status"], finalized["outcome"]) == (2, 1, 1)
    assert [p["ok"] for p in decoded[("ChallengePay", "ParticipantProofSubmitted")]] == [True, False]
    assert [p["paused"] for p in decoded[("ChallengePay", "Paused")]] == [True, False]
    assert decoded[("ChallengePay", "Canceled")] == [{"id": 3}, {"id": 4}]
    assert decoded[("ChallengePay", "AutoRefunded")][0]["count"] == 1
    winner = decoded[("ChallengePay", "WinnerClaimed")][0]
    assert decoded[("Treasury", "ClaimedETH")][0]["amount"] == winner["amount"] > ETHER
    assert decoded[("Treasury", "ClaimedERC20")][0]["token"] == token
    assert decoded[("Treasury", "ClaimedERC20")][0]["amount"] == ETHER
    final = decoded[("AIVMInferenceV2", "InferenceFinalized")][0]
    assert final["resultHash"] == aivm.response_hash(aivm.canonical_response(2))
    requested = decoded[("AIVMInferenceV2", "InferenceRequestedV2")][0]
    assert (requested["requestId"], requested["taskId"]) == (final["requestId"], final["taskId"])
    bound = decoded[("ChallengeTaskRegistry", "BindingRecorded")][0]
    assert (bound["challengeId"], bound["taskId"], bound["schemaVersion"]) == (2, final["taskId"], 1)
    assert decoded[("MetadataRegistry", "MetadataSet")][0]["challengeContract"] == pay
    assert decoded[("MetadataRegistry", "MetadataForceSet")][0]["previousUri"].endswith("/meta/2")


def test_dispatcher_set_comes_from_two_addresses_with_one_topic0(system: LightChallenge):
    emitted = emit_every_event_type(system)
    hashes = [tx for contract, event, tx in emitted if event == "DispatcherSet"]
    logs = [log for tx in hashes for log in system.client.w3.eth.get_transaction_receipt(tx)["logs"]]
    assert {log["address"] for log in logs} == {system.pay.address, system.task_registry.address}
    assert len({bytes(log["topics"][0]) for log in logs}) == 1


def test_full_lifecycle_with_two_winners(system: LightChallenge):
    result = full_lifecycle(system, winners=2, losers=2)
    names = [e.event for e in result.events]
    assert names.count("WinnerMarked") == 2 and names.count("WinnerClaimed") == 2
    assert names.count("LoserClaimed") == 2 and names.count("ClaimedETH") == 4
    assert names.count("InferenceFinalized") == 2 and names.index("Finalized") > names.index("WinnerMarked")
    view = system.client.call(system.pay, "getChallenge", result.challenge.id)
    assert (view[2], view[3], view[16]) == (1, 1, 2)  # Finalized, Success, two winners
    for address in result.winners:
        assert system.client.call(system.pay, "isWinner", result.challenge.id, address)


def test_bulk_events_produce_the_reported_number_of_indexed_logs(system: LightChallenge):
    gas_limit = system.client.w3.eth.get_block("latest")["gasLimit"]
    result = bulk_events(system, 1_000, join_share=0.2, metadata_batch=100)

    topics = ["0x" + keccak(text=s).hex() for s in (
        "Joined(uint256,address,uint256)", "MetadataSet(address,uint256,address,string)",
        "ChallengeCreated(uint256,address,uint8,uint8,address,uint256,bytes32)")]
    logs = system.client.w3.eth.get_logs({
        "fromBlock": result.first_block, "toBlock": result.last_block,
        "address": [system.pay.address, system.metadata.address], "topics": [topics]})
    assert len(logs) == result.indexed_events >= 1_000
    assert sum(1 for log in logs if log["topics"][0].hex().removeprefix("0x") == topics[0][2:]) == 200
    # the node is left as it was: automine on, the block gas limit back
    drive = Scenario(system)
    receipt = drive.metadata_set(1, "after the bulk load")
    assert system.client.w3.eth.get_block(receipt["blockNumber"])["gasLimit"] == gas_limit
    assert system.client.automine() is True


def test_scenario_records_only_our_contracts_events(system: LightChallenge):
    drive = Scenario(system)
    challenge = drive.create_challenge(stake=ETHER)
    assert [(e.contract, e.event) for e in drive.events] == [("Treasury", "BucketCreditedETH"),
                                                            ("ChallengePay", "ChallengeCreated")]
    assert drive.events[1].tx_hash == challenge.tx_hash
