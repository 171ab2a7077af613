"""Pure tests of the adaptive range, the event keys and the RPC error classification."""

from __future__ import annotations

from indexers.chain.keying import ChainKeyer
from indexers.chain.messages import chain_event
from indexers.chain.model import DecodedLog, RawLog
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.rpc import RangeTooLarge, RpcUnavailable, classify_error

CHALLENGE_PAY = "0x" + "01" * 20
TASK = "0x" + "ee" * 32
LOG = RawLog("0x", (), b"", 1, "0x", "0x", 0, 0)


def test_range_shrinks_on_refusal_and_grows_back_when_calm():
    ranges = AdaptiveRange(1000, calm_after=2)
    assert ranges.span(0, 5000) == (0, 999)
    ranges.shrink()
    ranges.shrink()
    assert ranges.span(1000, 5000) == (1000, 1249)
    ranges.succeeded(250)
    assert ranges.size == 250
    ranges.succeeded(250)
    assert ranges.size == 500
    for _ in range(10):
        ranges.succeeded(ranges.size)
    assert ranges.size == 1000


def test_a_log_budget_sizes_ranges_by_the_density_just_seen():
    ranges = AdaptiveRange(2000, log_budget=1000)
    assert ranges.span(0, 10**6) == (0, 0)  # density unknown: one block, then doubling
    ranges.succeeded(1, 0)
    assert ranges.span(1, 10**6) == (1, 2)
    ranges.succeeded(2, 100)  # far below the budget: doubles
    assert ranges.span(3, 10**6) == (3, 6)
    ranges.succeeded(4, 400)  # over a quarter of the budget: creeps up by a quarter
    assert ranges.span(7, 10**6) == (7, 11)
    ranges.succeeded(5, 5000)  # denser than the budget: sized to it
    assert ranges.span(12, 10**6) == (12, 12)
    for _ in range(20):
        ranges.succeeded(ranges.span(0, 10**6)[1] + 1, 0)  # empty ranges grow it back to the maximum
    assert ranges.span(0, 10**6) == (0, 1999)
    ranges.shrink()  # the node's limit still applies
    assert ranges.span(0, 10**6) == (0, 999)


def test_range_stops_at_the_safe_head_and_bottoms_out_at_one_block():
    ranges = AdaptiveRange(100)
    assert ranges.span(50, 49) is None
    assert ranges.span(40, 60) == (40, 60)
    ranges.succeeded(21)  # short range at the head: no growth signal
    for _ in range(20):
        ranges.shrink()
    assert ranges.size == 1 and ranges.at_minimum


def test_node_errors_are_classified():
    assert classify_error(-32005, "query returned more than 10000 results") is RangeTooLarge
    assert classify_error(-32000, "Log response size exceeded") is RangeTooLarge
    assert classify_error(-32602, "eth_getLogs block range is too large") is RangeTooLarge
    assert classify_error(-32000, "request timed out") is RangeTooLarge
    assert classify_error(-32603, "internal error: database locked") is RpcUnavailable


def aivm(event: str, **args) -> DecodedLog:
    return DecodedLog("AIVMInferenceV2", event, args, LOG)


def publish(keyer: ChainKeyer, contract: str, event: str, args: dict, block: int, log_index: int = 0):
    """Key a log like the engine does and let the keyer learn from the published message."""
    decoded = DecodedLog(contract, event, args,
                         RawLog("0x", (), b"", block, f"0x{block:064x}", f"0x{block:064x}", 0, log_index))
    key = keyer.key_for(decoded)
    message = chain_event(1, decoded, key.key, key.challenge_id, 1000)
    copies = keyer.rekeyed_copies(message) if event == "BindingRecorded" else []
    keyer.published(message)
    return message, copies


def binding(challenge: int, request: int) -> dict:
    return {"challengeId": str(challenge), "subject": "0x", "requestId": str(request), "taskId": TASK}


def test_aivm_events_are_keyed_by_task_until_bound_then_by_challenge():
    keyer = ChainKeyer(CHALLENGE_PAY)
    requested, _ = publish(keyer, "AIVMInferenceV2", "InferenceRequestedV2", {"requestId": "5", "taskId": TASK}, 10)
    assert (requested.key, requested.payload["challenge_id"]) == (f"task:{TASK}", None)
    committed, _ = publish(keyer, "AIVMInferenceV2", "InferenceCommitted", {"requestId": "5"}, 11)
    assert committed.key == f"task:{TASK}"
    assert keyer.key_for(aivm("InferenceCommitted", requestId="6")).key == "request:6"
    _, copies = publish(keyer, "ChallengeTaskRegistry", "BindingRecorded", binding(42, 5), 12)
    for event in (aivm("InferenceRevealed", requestId="5"), aivm("PoIAttested", taskId=TASK),
                  aivm("InferenceFinalized", requestId="5", taskId=TASK)):
        key = keyer.key_for(event)
        assert (key.key, key.challenge_id) == ("42", "42")


def test_a_binding_re_emits_the_facts_published_before_it_under_the_challenge():
    keyer = ChainKeyer(CHALLENGE_PAY)
    requested, _ = publish(keyer, "AIVMInferenceV2", "InferenceRequestedV2", {"requestId": "5", "taskId": TASK}, 10)
    attested, _ = publish(keyer, "AIVMInferenceV2", "PoIAttested", {"taskId": TASK}, 11)
    publish(keyer, "AIVMInferenceV2", "PoIAttested", {"taskId": "0x" + "77" * 32}, 11, 1)  # another task
    binding_message, copies = publish(keyer, "ChallengeTaskRegistry", "BindingRecorded", binding(42, 5), 12)
    assert [c.event_id for c in copies] == [f"{requested.event_id}@42", f"{attested.event_id}@42"]
    assert all(c.key == "42" and c.payload["challenge_id"] == "42" for c in copies)
    assert [c.payload["rekeyed_from"] for c in copies] == [f"task:{TASK}"] * 2
    assert all(c.headers["lc-block-hash"] == binding_message.payload["block_hash"] for c in copies)
    assert requested.payload["rekeyed_from"] is None and binding_message.payload["rekeyed_from"] is None
    # a second binding of the same task (the first one orphaned and recorded again) copies them again
    keyer.retracted(binding_message)
    _, again = publish(keyer, "ChallengeTaskRegistry", "BindingRecorded", binding(42, 5), 13)
    assert [c.event_id for c in again] == [c.event_id for c in copies]
    keyer.retracted(requested)
    assert keyer.unbound_facts == 2


def test_a_retracted_binding_no_longer_keys():
    keyer = ChainKeyer(CHALLENGE_PAY)
    first, _ = publish(keyer, "ChallengeTaskRegistry", "BindingRecorded", binding(42, 5), 11)
    second, _ = publish(keyer, "ChallengeTaskRegistry", "BindingRecorded", binding(43, 5), 12)
    assert keyer.key_for(aivm("PoIAttested", taskId=TASK)).key == "43"
    keyer.retracted(second)
    assert keyer.key_for(aivm("PoIAttested", taskId=TASK)).key == "42"
    keyer.retracted(first)
    assert keyer.key_for(aivm("PoIAttested", taskId=TASK)).key == f"task:{TASK}"


def test_keys_do_not_depend_on_the_order_facts_are_read_back_in():
    source = ChainKeyer(CHALLENGE_PAY)
    facts = [publish(source, "ChallengeTaskRegistry", "BindingRecorded", binding(42, 5), 11)[0],
             publish(source, "ChallengeTaskRegistry", "BindingRecorded", binding(43, 5), 12)[0]]
    forward, backward = ChainKeyer(CHALLENGE_PAY), ChainKeyer(CHALLENGE_PAY)
    for message in facts:
        forward.published(message)
    for message in reversed(facts):
        backward.published(message)
    event = aivm("PoIAttested", taskId=TASK)
    assert forward.key_for(event) == backward.key_for(event) == source.key_for(event)


def test_contract_events_are_keyed_by_their_challenge():
    keyer = ChainKeyer(CHALLENGE_PAY)
    assert keyer.key_for(DecodedLog("ChallengePay", "Joined", {"id": "7"}, LOG)).key == "7"
    assert keyer.key_for(DecodedLog("Treasury", "ClaimedETH", {"bucketId": "7"}, LOG)).key == "7"
    ours = {"challengeContract": CHALLENGE_PAY, "challengeId": "7"}
    assert keyer.key_for(DecodedLog("MetadataRegistry", "MetadataSet", ours, LOG)).key == "7"
    other = {"challengeContract": "0x" + "02" * 20, "challengeId": "7"}
    foreign = keyer.key_for(DecodedLog("MetadataRegistry", "MetadataSet", other, LOG))
    assert foreign.key == f"{'0x' + '02' * 20}:7" and foreign.challenge_id is None
    registry_log = RawLog("0x" + "03" * 20, (), b"", 1, "0x", "0x", 0, 0)
    dispatcher = keyer.key_for(DecodedLog("ChallengeTaskRegistry", "DispatcherSet", {"dispatcher": "0x"}, registry_log))
    assert (dispatcher.key, dispatcher.challenge_id) == ("0x" + "03" * 20, None)


def test_a_dense_range_is_prepared_in_chunks_of_whole_blocks():
    from indexers.chain.prepare import _chunk_bounds

    logs = [LOG._replace(block_number=block, log_index=i) for block, count in ((10, 3), (11, 1), (14, 4), (15, 1))
            for i in range(count)]
    assert _chunk_bounds(logs, 8, 20, None) == [(8, 20)]
    assert _chunk_bounds(logs, 8, 20, 9) == [(8, 20)]
    # a chunk closes at the first block boundary at or over the budget; the last one ends at the range's end
    assert _chunk_bounds(logs, 8, 20, 3) == [(8, 10), (11, 14), (15, 20)]
    assert _chunk_bounds(logs, 8, 20, 1) == [(8, 10), (11, 11), (12, 14), (15, 20)]
